"""Recording an order's changes once, whichever path saw them first.

Polls, trade-history recovery and private streams all report order changes as an
:class:`~services.venues.privatews.OrderUpdate`. services.executor.fills decides what an
update is (a fill, a fill already counted, a final state, nothing); the news is written to
the order's KV record by compare-and-swap before its event is published, and the event id
names the change (``<client_order_id>.<status>.<filled>``), so a poll and a stream frame
reporting the same fill publish it once, and a late frame never walks an order backwards.

Updates wait here, and are applied at the tracker's next round, when
- the order is still being placed (its record is not done yet);
- they name the order only by the venue's id and that id is not known yet (Korbit
  ``myTrade`` before ``myOrder``; a Bitfinex, OKX or Kraken fill pushed before the placing
  replica recorded the venue's id);
- they report quantity ahead of fills the venue sends separately (``fills_follow``:
  Bitfinex ``ou`` before ``tu``); if the fills have not come by then, the totals count.

The first two are applied as soon as the record they wait for is written
(:meth:`OrderChanges.recorded`, fed by the tracker's watch of the order records), the rest
at the tracker's next round.
"""

from __future__ import annotations

import time
from collections import Counter

import msgspec
from typing import Literal

import schemas
from schemas.orders import OrderEvent
from schemas.queries import OrderInfo
from schemas.subjects import SubjectError, orders_event
from services.executor.fills import Step, advance, apply_step
from services.executor.state import OrderRecord, OrderStates, order_key
from services.executor.worker import CommandWorker
from services.logs import get_logger
from services.venues.privatews import OrderUpdate

log = get_logger("tracker")
Source = Literal["poll", "stream", "trades"]
EARLY_TTL_S = 300.0
"""How long an update for an order still being placed waits for its record."""
HOLD_S = 0.5
"""How long a total ahead of its separately reported fills waits for them."""
MAX_WAITING = 100_000
"""Orders whose waiting updates are indexed for :meth:`OrderChanges.recorded` (oldest dropped)."""


def update_of(venue: str, info: OrderInfo) -> OrderUpdate:
    """A polled order status as an update (no per-fill details: polls see totals only)."""
    return OrderUpdate(venue=venue, client_order_id=info.client_order_id, venue_order_id=info.venue_order_id,
                       state=info.state, filled_quantity=info.filled_quantity,
                       ts_event=info.ts_updated or schemas.now_ns(), symbol=info.symbol, side=info.side,
                       order_type=info.order_type, price=info.price, quantity=info.quantity,
                       average_price=info.average_price)


class OrderChanges:
    """Writes news to KV ``orders`` and publishes its event; shared by poll and stream."""

    def __init__(self, worker: CommandWorker, states: OrderStates) -> None:
        self.worker = worker
        self.states = states
        self.published: Counter[str] = Counter()
        """Events published, by the path that saw the change first (``poll``, ``stream``, ``trades``)."""
        self._early: dict[str, tuple[float, float, str, str, OrderUpdate]] = {}
        """key -> (first held, not before, venue, account, update)."""
        self._owners: dict[tuple[str, str, str], str] = {}
        """(venue, account, venue order id) -> client order id, as learnt from records and updates."""
        self._waiting: dict[str, dict[str, None]] = {}
        """Record key, or ``<venue>.<account>.#<venue order id>`` -> the ``_early`` keys held
        under it, in the order they came."""

    def learn(self, venue: str, account: str, venue_order_id: str | None, client_order_id: str) -> None:
        """Remember whose order a venue order id is (fills that name only the venue's id)."""
        if venue_order_id:
            self._owners[(venue, account, venue_order_id)] = client_order_id
            if len(self._owners) > 100_000:
                del self._owners[next(iter(self._owners))]

    async def recorded(self, key: str, record: OrderRecord) -> int:
        """A replica wrote ``record`` at ``key``: learn its venue order id, and apply at once
        the updates that waited for the record to be done or for that id (see the module);
        returns how many were published."""
        if not (record.tracking and record.phase == "done"):
            return 0
        venue, account, client_order_id = key.split(".", 2)
        bases = [key]
        if record.venue_order_id:
            self.learn(venue, account, record.venue_order_id, client_order_id)
            bases.append(f"{venue}.{account}.#{record.venue_order_id}")
        now = time.monotonic()
        waiting = []
        for base in bases:
            for early in self._waiting.pop(base, ()):
                held = self._early.get(early)
                if held is not None and held[1] <= now:  # a total waiting for its fills keeps waiting
                    del self._early[early]
                    waiting.append(held)
        published = 0
        for _, _, venue, account, update in sorted(waiting, key=lambda h: h[4].ts_event):
            published += await self.apply(venue, account, update)
        return published

    async def record(self, key: str, record: OrderRecord, revision: int, update: OrderUpdate,
                     source: Source) -> bool | None:
        """Record and publish ``update`` of the order at ``key`` read at ``revision``:
        True when published, False when it is no news, None when the record changed since."""
        step = advance(record, update)
        if step is None:
            return False
        apply_step(record, step, update.venue_order_id)
        if await self.states.update(key, record, revision) is None:
            return None
        if not step.publish:
            return False
        await self._publish(key, record, update, step)
        self.published[source] += 1
        return True

    async def _publish(self, key: str, record: OrderRecord, update: OrderUpdate, step: Step) -> None:
        venue, account, client_order_id = key.split(".", 2)
        now = schemas.now_ns()
        fill = step.fill
        await self.worker.publish(OrderEvent(
            event_id=f"{client_order_id}.{step.status}.{step.filled}", command_id=record.command_id,
            venue=venue, account=account, symbol=record.symbol, client_order_id=client_order_id,  # type: ignore[arg-type]
            status=step.status, ts_event=update.ts_event or now, ts=now,  # type: ignore[arg-type]
            venue_order_id=update.venue_order_id or record.venue_order_id,
            side=update.side, order_type=update.order_type, price=update.price, quantity=update.quantity,
            filled_quantity=step.filled, average_price=step.average_price,
            last_fill_price=fill.price if fill else None, last_fill_quantity=fill.quantity if fill else None,
            fee=fill.fee if fill else None, fee_asset=fill.fee_asset if fill else None,
            trade_id=fill.trade_id if fill else None,
        ))

    def owner(self, venue: str, account: str, update: OrderUpdate) -> str | None:
        """The client order id ``update`` belongs to: its own, else the one learnt for its
        venue order id (None: not known yet)."""
        if update.client_order_id:
            self.learn(venue, account, update.venue_order_id, update.client_order_id)
            return update.client_order_id
        return self._owners.get((venue, account, update.venue_order_id))

    async def apply(self, venue: str, account: str, update: OrderUpdate, source: Source = "stream",
                    *, held: bool = False) -> bool:
        """Apply an update of one of exbus's orders; True when published. Orders exbus did
        not place are ignored; updates that cannot be applied yet wait (see the module)."""
        client_order_id = self.owner(venue, account, update)
        if client_order_id is None:
            if not update.client_order_id and update.venue_order_id:
                self._hold(f"{venue}.{account}.#{update.venue_order_id}", venue, account, update)
            return False
        try:
            orders_event(venue, account, client_order_id)
        except SubjectError:
            return False  # not an id exbus could have placed
        if update.client_order_id != client_order_id:
            update = msgspec.structs.replace(update, client_order_id=client_order_id)
        key = order_key(venue, account, client_order_id)
        for _ in range(10):
            record, revision = await self.states.get(key)
            if record is None or revision is None:
                return False
            if not record.tracking:
                if record.phase != "done":
                    self._hold(key, venue, account, update)
                return False
            if (update.fills_follow and not held and update.cumulative
                    and update.filled_quantity > record.filled_quantity):
                self._hold(key, venue, account, update, wait=True)  # its fills are on their way
                return False
            outcome = await self.record(key, record, revision, update, source)
            if outcome is not None:
                return outcome
        log.warning("order record kept changing; update left to the next poll", key=key)
        return False

    def _hold(self, base: str, venue: str, account: str, update: OrderUpdate, wait: bool = False) -> None:
        """Keep ``update`` under ``base`` (a record key, or a venue order id's) for later."""
        now = time.monotonic()
        key = base
        kept = self._early.get(key)
        if kept is not None:
            if _total_only(update) and _total_only(kept[4]):
                if update.filled_quantity < kept[4].filled_quantity:
                    return  # an older total than the one held
            else:  # fills (and a fill and a total) wait side by side, each to be published
                key = f"{key}@{update.trade_id or id(update)}"
                kept = self._early.get(key)
        self._early[key] = (kept[0] if kept else now, now + HOLD_S if wait else 0.0, venue, account, update)
        if base not in self._waiting and len(self._waiting) >= MAX_WAITING:
            del self._waiting[next(iter(self._waiting))]  # its updates still wait for the next round
        self._waiting.setdefault(base, {})[key] = None

    async def apply_early(self) -> int:
        """Apply the updates that were waiting (see the module); returns how many were
        published. Those older than EARLY_TTL_S are dropped."""
        published = 0
        now = time.monotonic()
        for key, held in sorted(self._early.items(), key=lambda kv: kv[1][4].ts_event):
            since, not_before, venue, account, update = held
            if now < not_before:
                continue
            if self._early.get(key) is held:
                del self._early[key]
            if now - since <= EARLY_TTL_S:
                published += await self.apply(venue, account, update, held=True)
        return published


def _total_only(update: OrderUpdate) -> bool:
    """An order's totals that name no fill (a newer one supersedes it while both wait)."""
    return update.cumulative and update.trade_id is None
