"""Keeping open orders current: one replica at a time (a lease in KV) polls the venue for
every order still open, under the shared rate limits, and publishes partially_filled,
filled, canceled and expired events as they happen. Each change is written to the
order's KV record by compare-and-swap before its event is published, and the event id
names the change, so a change is published once whatever replicas come and go.

Private WebSocket streams (Binance user data, Upbit myOrder) would report fills sooner;
polling works the same for every venue and is what exbus does today.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import msgspec

import schemas
from schemas.orders import OrderEvent
from schemas.queries import OrderInfo, OrderStatusQuery
from services.executor.state import OrderStates
from services.executor.worker import STATUS_OF_STATE, CommandWorker
from services.logs import get_logger
from services.venues.errors import VenueError

log = get_logger("tracker")
NS = 1_000_000_000


class Lease(msgspec.Struct):
    owner: str
    expires: int


class OrderTracker:
    """Polls open orders while this replica holds the tracker lease."""

    def __init__(self, worker: CommandWorker, states: OrderStates, lease_kv: Any, *, interval_s: float = 1.0,
                 lease_s: float = 5.0) -> None:
        self.worker = worker
        self.states = states
        self.lease_kv = lease_kv
        self.interval_s = interval_s
        self.lease_s = lease_s
        self.owner = uuid.uuid4().hex
        self.published = 0

    async def _hold_lease(self) -> bool:
        key = "executor.tracker.lease"
        now = time.time_ns()
        mine = msgspec.json.encode(Lease(owner=self.owner, expires=now + int(self.lease_s * NS)))
        try:
            entry = await self.lease_kv.get(key)
            lease = msgspec.json.decode(entry.value, type=Lease) if entry.value else None
            if lease is not None and lease.owner != self.owner and lease.expires > now:
                return False
            await self.lease_kv.update(key, mine, last=entry.revision)
            return True
        except Exception as e:
            if "not found" in str(e).lower():
                try:
                    await self.lease_kv.create(key, mine)
                    return True
                except Exception:
                    return False
            return False

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if await self._hold_lease():
                    await self.poll_once()
            except Exception as e:  # keep tracking through transient bus or venue trouble
                log.warning("tracking round failed", error=repr(e))
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval_s)
            except asyncio.TimeoutError:
                pass

    async def poll_once(self) -> int:
        """One pass over the open orders; returns how many events it published."""
        published = 0
        for key, record, rev in await self.states.tracked():
            venue, account, client_order_id = key.split(".", 2)
            query = OrderStatusQuery(symbol=record.symbol, client_order_id=client_order_id,
                                     venue_order_id=record.venue_order_id)
            try:
                info = await self.worker.gateway.call(venue, account, "order_status", query)
            except VenueError as e:
                log.info("order status unavailable", key=key, error=str(e))
                continue
            if not isinstance(info, OrderInfo):
                continue
            status = STATUS_OF_STATE[info.state]
            if status == "accepted" or (status == record.status and info.filled_quantity == record.filled_quantity):
                continue
            record.status, record.filled_quantity = status, info.filled_quantity
            record.tracking = info.state in ("open", "partially_filled")
            if await self.states.update(key, record, rev) is None:
                continue  # someone else recorded a newer state first
            now = schemas.now_ns()
            event = OrderEvent(
                event_id=f"{client_order_id}.{status}.{info.filled_quantity}", command_id=record.command_id,
                venue=venue, account=account, symbol=record.symbol, client_order_id=client_order_id,  # type: ignore[arg-type]
                status=status, ts_event=info.ts_updated or now, ts=now, venue_order_id=info.venue_order_id,  # type: ignore[arg-type]
                side=info.side, order_type=info.order_type, price=info.price, quantity=info.quantity,
                filled_quantity=info.filled_quantity, average_price=info.average_price,
            )
            await self.worker.publish(event)
            published += 1
        self.published += published
        return published
