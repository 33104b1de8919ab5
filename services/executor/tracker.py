"""Keeping open orders current: one replica at a time (a lease in KV) follows every order
still open and publishes partially_filled, filled, canceled and expired events as they
happen. The leader runs each account's private stream (services.executor.order_streams);
for orders a stream does not follow yet (or while it is down, or for a venue or key
without one) it polls under the shared rate limits. A poll that finds fills no event
reported asks the venue's trade history for them, so each is published with its trade id
and fee.
Both paths record a change once (services.executor.order_changes): written to the
order's KV record by compare-and-swap before its event is published, the event id naming
the change, so a change is published once whatever replicas or paths come and go.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from typing import Any

import msgspec

from schemas.queries import OrderInfo, OrderStatusQuery, TradeHistoryQuery
from services.executor.order_changes import OrderChanges, update_of
from services.executor.order_streams import OrderStreams
from services.executor.state import OrderRecord, OrderStates
from services.executor.worker import CommandWorker
from services.logs import get_logger
from services.venues.errors import VenueError
from services.venues.privatews import OrderUpdate

log = get_logger("tracker")
NS = 1_000_000_000
POLL_SHARE = 0.5
"""At most this share of a venue's request budget goes to status polls, so commands (and the
reconciliation of lost replies) keep the rest: on Kraken's 15 calls per 45 s, at the
default margin of 0.9, one open order is polled every 6.7 s, not every round."""


HISTORY_MARGIN_S = 30.0
"""Trade history is asked from this long before the order's last recorded change (clock skew)."""
HISTORY_LIMIT = 500


class Lease(msgspec.Struct):
    owner: str
    expires: int


class OrderTracker:
    """Follows open orders (private streams, else polls) while this replica holds the tracker lease."""

    def __init__(self, worker: CommandWorker, states: OrderStates, lease_kv: Any, *, interval_s: float = 1.0,
                 lease_s: float = 5.0, poll_only: list[str] | None = None) -> None:
        self.worker = worker
        self.states = states
        self.lease_kv = lease_kv
        self.interval_s = interval_s
        self.lease_s = lease_s
        self.owner = uuid.uuid4().hex
        self.published = 0
        self.changes = OrderChanges(worker, states)
        self.streams = OrderStreams(worker.gateway, self.changes, poll_only=poll_only)
        self._next_poll: dict[tuple[str, str], float] = {}
        """(venue, account) -> monotonic time before which its orders are not polled again."""
        self._follower: asyncio.Task[None] | None = None
        """While leading: the watch of the order records (see :meth:`_follow_records`)."""

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
        try:
            while not stop.is_set():
                try:
                    if await self._hold_lease():
                        if self._follower is None or self._follower.done():
                            self._follower = asyncio.create_task(self._follow_records())
                        await self.poll_once()
                    else:
                        await self._stop_following()
                        await self.streams.close()  # another replica leads now
                except Exception as e:  # keep tracking through transient bus or venue trouble
                    log.warning("tracking round failed", error=repr(e))
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.interval_s)
                except asyncio.TimeoutError:
                    pass
        finally:
            await self._stop_following()
            await self.streams.close()

    async def _follow_records(self) -> None:
        """Every record a replica writes, as it is written: a stream update that came before
        the record was done, or that names only the venue's order id (Bitfinex, OKX, Kraken),
        is applied then, not at the next round. Ends on a bus error; the next round starts
        it again."""
        watcher = await self.states.kv.watchall(ignore_deletes=True)
        try:
            async for entry in watcher:
                if entry is None or not entry.value:
                    continue
                try:
                    record = msgspec.json.decode(entry.value, type=OrderRecord)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    continue
                self.published += await self.changes.recorded(entry.key, record)
        except Exception as e:  # noqa: BLE001 - logged; the tracker's next round restarts the watch
            log.info("order record watch ended", error=repr(e))
        finally:
            try:
                await asyncio.shield(watcher.stop())
            except Exception:  # noqa: BLE001 - the connection is gone; so is the watch
                pass

    async def _stop_following(self) -> None:
        task, self._follower = self._follower, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def poll_once(self) -> int:
        """One pass over the open orders: streams for the accounts that have one, a poll of
        every order no ready stream follows; returns how many events it published."""
        started = time.monotonic()
        published = await self.changes.apply_early()
        tracked = await self.states.tracked()
        open_orders: dict[tuple[str, str], set[str]] = {}
        for key, record, _ in tracked:
            venue, account, client_order_id = key.split(".", 2)
            open_orders.setdefault((venue, account), set()).add(client_order_id)
            self.changes.learn(venue, account, record.venue_order_id, client_order_id)
        self.streams.sync(open_orders)
        polled: dict[tuple[str, str], set[str]] = {}
        for key, record, rev in tracked:
            venue, account, client_order_id = key.split(".", 2)
            if self.streams.covers(venue, account, client_order_id):
                continue
            wait = self._next_poll.get((venue, account), 0.0) - time.monotonic()
            if wait > self.interval_s:
                continue  # this account's share of the venue's budget is spent for this round
            if wait > 0:
                await asyncio.sleep(wait)
            query = OrderStatusQuery(symbol=record.symbol, client_order_id=client_order_id,
                                     venue_order_id=record.venue_order_id)
            try:
                info = await self.worker.gateway.call(venue, account, "order_status", query)
            except VenueError as e:
                log.info("order status unavailable", key=key, error=str(e))
                continue
            finally:
                self._next_poll[(venue, account)] = time.monotonic() + self._poll_cost_s(venue)
            if not isinstance(info, OrderInfo):
                continue
            update = update_of(venue, info)
            if info.filled_quantity > record.filled_quantity:  # fills since the last event
                update = msgspec.structs.replace(update, client_order_id=client_order_id)
                published += await self._recover_fills(venue, account, client_order_id, record, info, update.state)
                if await self.changes.apply(venue, account, update, "poll", held=True):
                    published += 1
            elif await self.changes.record(key, record, rev, update, "poll"):
                published += 1
            polled.setdefault((venue, account), set()).add(client_order_id)
        for (venue, account), client_order_ids in polled.items():
            self.streams.reconciled(venue, account, started, client_order_ids)
        self.published += published
        return published

    async def _recover_fills(self, venue: str, account: str, client_order_id: str, record: OrderRecord,
                             info: OrderInfo, state: str) -> int:
        """The fills a poll found but no event reported yet, one event each with its trade
        id and fee, from the venue's trade history since the order's last event; returns
        how many were published. When they account for all of the poll's difference, the
        last carries the poll's ``state`` (an order filled by them ends with its last fill). Venues without a trade history (Upbit, Bithumb), and a
        history that cannot be had now, leave the poll's totals to count the difference."""
        adapter = self.worker.gateway.adapter(venue)
        if "trade_history" not in adapter.endpoints:
            return 0
        since = record.ts - int(HISTORY_MARGIN_S * NS) if record.ts else None
        query = TradeHistoryQuery(symbol=record.symbol, since=since, limit=HISTORY_LIMIT)
        try:
            fills = await self.worker.gateway.call(venue, account, "trade_history", query)
        except (VenueError, ValueError) as e:
            log.info("trade history unavailable; the totals count", venue=venue, account=account, error=str(e))
            return 0
        unseen = sorted((f for f in fills if f.venue_order_id == info.venue_order_id and f.trade_id not in record.fill_ids),
                        key=lambda f: f.ts_event)
        # the missing quantity is the newest fills': never more than the poll's difference
        # (a venue whose history names a fill otherwise than its stream did cannot count it twice)
        missing, mine = info.filled_quantity - record.filled_quantity, []
        for f in reversed(unseen):
            if f.quantity > missing:
                break
            mine.insert(0, f)
            missing -= f.quantity
        # cumulative from the record: these fills are beyond every total published before,
        # so none is taken for one counted earlier without an id
        published, filled = 0, record.filled_quantity
        for n, f in enumerate(mine, 1):
            last = n == len(mine) and missing == 0
            filled += f.quantity
            update = OrderUpdate(venue=venue, client_order_id=client_order_id, venue_order_id=info.venue_order_id,
                                 state=state if last else "partially_filled",  # type: ignore[arg-type]
                                 filled_quantity=filled,
                                 ts_event=f.ts_event, symbol=info.symbol, side=info.side, order_type=info.order_type,
                                 price=info.price, quantity=info.quantity, last_fill_price=f.price,
                                 last_fill_quantity=f.quantity, fee=f.fee, fee_asset=f.fee_asset, trade_id=f.trade_id)
            published += await self.changes.apply(venue, account, update, "trades", held=True)
        return published

    def _poll_cost_s(self, venue: str) -> float:
        """Seconds of the venue's budget one status poll takes (the share of each limit the
        fleet may use: the rate-limit margin), divided by POLL_SHARE: the spacing of polls
        (per account) that leaves the rest of the budget to commands."""
        try:
            adapter = self.worker.gateway.adapter(venue)
            cost = adapter.cost("order_status", None)
        except (ValueError, KeyError):
            return 0.0
        margin = self.worker.gateway.limiter.margin
        spacing = [units * limit.period_s / (limit.capacity * margin)
                   for limit in adapter.rate_limits if (units := cost.get(limit.name))]
        return max(spacing, default=0.0) / POLL_SHARE
