"""Recording an order's changes once, whichever path saw them first.

Polls and private streams both report order changes as an
:class:`~services.venues.privatews.OrderUpdate`. A change is news only when it moves the
order forward (more filled, or a final state reached); it is written to the order's KV
record by compare-and-swap before its event is published, and the event id names the
change (``<client_order_id>.<status>.<filled>``), so a poll and a stream frame reporting
the same fill publish it once, and a late frame never walks an order backwards.

A stream may report a change before the command's own outcome is recorded (the order is
still being placed); such updates wait here and are applied once the record is done.
"""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal
from typing import Literal

import schemas
from schemas.orders import TERMINAL_STATUSES, OrderEvent
from schemas.queries import OrderInfo
from schemas.subjects import SubjectError, orders_event
from services.executor.state import OrderRecord, OrderStates, order_key
from services.executor.worker import STATUS_OF_STATE, CommandWorker
from services.logs import get_logger
from services.venues.privatews import OrderUpdate

log = get_logger("tracker")
Source = Literal["poll", "stream"]
EARLY_TTL_S = 300.0
"""How long an update for an order still being placed waits for its record."""


def update_of(venue: str, info: OrderInfo) -> OrderUpdate:
    """A polled order status as an update (no per-fill details: polls see totals only)."""
    return OrderUpdate(venue=venue, client_order_id=info.client_order_id, venue_order_id=info.venue_order_id,
                       state=info.state, filled_quantity=info.filled_quantity,
                       ts_event=info.ts_updated or schemas.now_ns(), symbol=info.symbol, side=info.side,
                       order_type=info.order_type, price=info.price, quantity=info.quantity,
                       average_price=info.average_price)


def is_news(record: OrderRecord, status: str, filled: Decimal) -> bool:
    """True when (status, filled) moves the recorded order forward."""
    if record.status in TERMINAL_STATUSES or status == "accepted" and filled == 0:
        return False
    if filled != record.filled_quantity:
        return filled > record.filled_quantity
    return status != record.status and status in TERMINAL_STATUSES


class OrderChanges:
    """Writes news to KV ``orders`` and publishes its event; shared by poll and stream."""

    def __init__(self, worker: CommandWorker, states: OrderStates) -> None:
        self.worker = worker
        self.states = states
        self.published: Counter[str] = Counter()
        """Events published, by the path that saw the change first (``poll``, ``stream``)."""
        self._early: dict[str, tuple[float, str, str, OrderUpdate]] = {}

    async def record(self, key: str, record: OrderRecord, revision: int, update: OrderUpdate,
                     source: Source) -> bool | None:
        """Record and publish ``update`` of the order at ``key`` read at ``revision``:
        True when published, False when it is no news, None when the record changed since."""
        status = STATUS_OF_STATE[update.state]
        if status == "accepted" and update.filled_quantity > 0:
            status = "partially_filled"  # open with fills (Binance PENDING_CANCEL)
        if not is_news(record, status, update.filled_quantity):
            return False
        record.status, record.filled_quantity = status, update.filled_quantity
        record.venue_order_id = record.venue_order_id or update.venue_order_id
        record.tracking = update.state in ("open", "partially_filled")
        if await self.states.update(key, record, revision) is None:
            return None
        venue, account, client_order_id = key.split(".", 2)
        now = schemas.now_ns()
        await self.worker.publish(OrderEvent(
            event_id=f"{client_order_id}.{status}.{update.filled_quantity}", command_id=record.command_id,
            venue=venue, account=account, symbol=record.symbol, client_order_id=client_order_id,  # type: ignore[arg-type]
            status=status, ts_event=update.ts_event or now, ts=now, venue_order_id=update.venue_order_id,  # type: ignore[arg-type]
            side=update.side, order_type=update.order_type, price=update.price, quantity=update.quantity,
            filled_quantity=update.filled_quantity, average_price=update.average_price,
            last_fill_price=update.last_fill_price, last_fill_quantity=update.last_fill_quantity,
            fee=update.fee, fee_asset=update.fee_asset,
        ))
        self.published[source] += 1
        return True

    async def apply(self, venue: str, account: str, update: OrderUpdate, source: Source = "stream") -> bool:
        """Apply an update that names its order by client order id; True when published.
        Orders exbus did not place are ignored; orders still being placed wait."""
        if not update.client_order_id:
            return False
        try:
            orders_event(venue, account, update.client_order_id)
        except SubjectError:
            return False  # not an id exbus could have placed
        key = order_key(venue, account, update.client_order_id)
        for _ in range(10):
            record, revision = await self.states.get(key)
            if record is None or revision is None:
                return False
            if not record.tracking:
                if record.phase != "done":
                    self._keep_early(key, venue, account, update)
                return False
            outcome = await self.record(key, record, revision, update, source)
            if outcome is not None:
                return outcome
        log.warning("order record kept changing; update left to the next poll", key=key)
        return False

    def _keep_early(self, key: str, venue: str, account: str, update: OrderUpdate) -> None:
        held = self._early.get(key)
        if held is None or update.filled_quantity >= held[3].filled_quantity:
            self._early[key] = (held[0] if held else time.monotonic(), venue, account, update)

    async def apply_early(self) -> int:
        """Apply the updates that arrived before their order's outcome was recorded;
        returns how many were published. Those older than EARLY_TTL_S are dropped."""
        published = 0
        now = time.monotonic()
        for key, held in list(self._early.items()):
            since, venue, account, update = held
            if now - since <= EARLY_TTL_S:
                published += await self.apply(venue, account, update)
            if self._early.get(key) is held:  # applied, moot, or expired; a pending one was kept anew
                del self._early[key]
        return published
