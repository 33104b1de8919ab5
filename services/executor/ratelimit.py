"""Rate-limit leases shared by every executor replica, in KV bucket ``ratelimits``.

Each limit of a venue (``services.venues.<venue>.rest`` ``rate_limits``) is a GCRA
(generic cell rate algorithm) state per key ``<venue>.<scope>.<limit>``: the theoretical
arrival time (TAT) of the next unit. Every unit owns a slot, a TAT value spaced by the
emission interval ``T = period / C``; a group of ``cost`` units with first slot ``s`` may
be handed out (sent to the venue) only at a time ``t`` with ``s - tau <= t <= s``, where
``tau = BURST * period`` and ``C = floor(capacity * margin / (1 + BURST))``. Hand-outs
in any window of one period then have slots in a span of ``period + tau``, so no window
ever holds more than ``capacity * margin`` units, whether the venue counts in fixed
windows (Binance) or sliding ones.

Lease batching: slots are taken from the shared state by compare-and-swap on the entry's
revision, a slice at a time: the units this replica expects to need in the next
``HORIZON_S`` (its recent demand and the acquires waiting now, at most a quarter of the
burst tolerance). Local acquires are served from the slice without a round trip. Reserved
units count as spent in the shared state, and a unit whose slot has passed is never
handed out (it simply expires), so the fleet can never exceed a window however the
slices are used.

A venue's usage headers push the TAT forward when the venue counted more than the shared
state holds (checked against the last TAT this replica saw, which can only be lower than
the shared one: agreeing headers cost no round trip). A 429/418 writes a fleet-wide block
key; every replica follows the block keys with a KV watcher, honours them before every
hand-out and voids its slices when one arrives.
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from typing import Awaitable, Callable, Mapping

import msgspec
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from services.logs import get_logger
from services.observability.catalog import EXECUTOR as METRICS
from services.venues.base import RateLimit

log = get_logger("executor")

NS = 1_000_000_000
BURST = 0.1
"""Burst tolerance as a share of the period."""
HORIZON_S = 0.1
"""A slice holds the units expected in this time, and only units usable within it."""
GRACE_S = 0.1
"""When the budget is idle, a slice's first slot lies this far ahead (at most tau / 2), so
its units stay usable while the reservation's round trip and the other limits complete."""
MAX_SLICE = 256
BLOCK_KEYS = "*.*.block"


class GcraState(msgspec.Struct):
    tat: int = 0
    """Theoretical arrival time of the next unit (ns since the epoch)."""


class Block(msgspec.Struct):
    until: int
    reason: str


class Lease(msgspec.Struct, frozen=True):
    """What ``acquire`` handed out: at ``at`` (ns), the units whose first slot per limit is
    in ``slots``; ``slot - tau <= at <= slot`` holds for each."""

    at: int
    waited_s: float
    slots: dict[str, int]


class LeaseTimeout(TimeoutError):
    """A lease could not be granted within the caller's deadline."""


def scope_id(limit: RateLimit, account: str, egress: str = "default") -> str:
    """The key token a limit is counted under: the egress IP for per-IP limits, the
    account otherwise (Binance weight per IP, order counts per account)."""
    return f"ip-{egress}" if limit.scope == "ip" else f"acct-{account}"


class _Slice:
    """Slots of one limit reserved by this replica: ``next`` up to ``end`` (exclusive)."""

    def __init__(self) -> None:
        self.next = 0
        self.end = 0
        self.known_tat = 0
        """The highest shared TAT this replica saw (the shared one is never lower)."""
        self.lock = asyncio.Lock()
        self.waiting = 0
        self.window_start = 0
        self.taken = 0
        self.taken_before = 0

    def demand(self, now: int) -> int:
        """Units taken in the last horizon (two fixed buckets of ``HORIZON_S``)."""
        horizon = int(HORIZON_S * NS)
        if now - self.window_start >= horizon:
            self.taken_before = self.taken if now - self.window_start < 2 * horizon else 0
            self.taken, self.window_start = 0, now
        return max(self.taken, self.taken_before)

    def void(self) -> None:
        self.next = self.end


class RateLimiter:
    """Leases against a venue's limits, shared through a KV bucket.

    ``kv`` is a nats-py KeyValue; ``clock`` returns ns (injectable for tests).
    """

    def __init__(self, kv, *, margin: float = 0.9, egress: str = "default",
                 clock: Callable[[], int] = time.time_ns,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.kv = kv
        self.margin = margin
        self.egress = egress
        self.clock = clock
        self.sleep = sleep
        self.granted = 0
        self.waited_s = 0.0
        self.reservations = 0
        """Compare-and-swaps that took a slice (round trips saved: ``granted`` minus these)."""
        self._slices: dict[str, _Slice] = {}
        self._blocks: dict[str, int] = {}
        self._watch_started = asyncio.Lock()
        self._watch: asyncio.Future[None] | None = None
        self._watcher = None

    def _key(self, venue: str, limit: RateLimit, account: str) -> str:
        return f"{venue}.{scope_id(limit, account, self.egress)}.{limit.name}"

    def _interval(self, limit: RateLimit) -> int:
        capacity = max(1, math.floor(limit.capacity * self.margin / (1 + BURST)))
        return int(limit.period_s * NS / capacity)

    @staticmethod
    def _tolerance(limit: RateLimit) -> int:
        return int(limit.period_s * NS * BURST)

    def _block_keys(self, venue: str, account: str) -> tuple[str, str]:
        return f"{venue}.ip-{self.egress}.block", f"{venue}.acct-{account}.block"

    async def _get(self, key: str, tp: type) -> tuple[object | None, int | None]:
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return None, None
        if entry.value is None or not entry.value:
            return None, entry.revision
        return msgspec.json.decode(entry.value, type=tp), entry.revision

    async def _put(self, key: str, value: object, revision: int | None) -> bool:
        data = msgspec.json.encode(value)
        try:
            if revision is None:
                await self.kv.create(key, data)
            else:
                await self.kv.update(key, data, last=revision)
            return True
        except KeyWrongLastSequenceError:
            return False
        except Exception as e:  # create on an existing key raises a "wrong last sequence" API error too
            if "wrong last sequence" in str(e).lower():
                return False
            raise

    # --- fleet-wide blocks ----------------------------------------------------------------
    def _blocked(self, key: str, until: int) -> None:
        """Record a block seen (watcher, read or own write); a new one voids the venue's slices."""
        if until > self._blocks.get(key, 0):
            self._blocks[key] = until
            if until > self.clock():
                venue = key.split(".", 1)[0] + "."
                for name, piece in self._slices.items():
                    if name.startswith(venue):
                        piece.void()

    async def _follow_blocks(self) -> None:
        """Start the watcher of every block key once; returns when its current values are in."""
        if self._watch is not None:
            return
        async with self._watch_started:
            if self._watch is not None:
                return
            try:
                watcher = await self.kv.watch(BLOCK_KEYS)
                while (entry := await watcher.updates(timeout=10)) is not None:
                    self._apply_block(entry)
            except Exception as e:  # not allowed or not answered: read the block keys per lease instead
                log.warning("rate-limit blocks not watchable, reading them per lease", error=repr(e))
                self._watch = asyncio.get_running_loop().create_future()
                self._watch.set_result(None)
                return
            self._watcher = watcher
            self._watch = asyncio.create_task(_watch_blocks(weakref.ref(self), watcher))

    def _apply_block(self, entry) -> None:
        if entry.value:
            self._blocked(entry.key, msgspec.json.decode(entry.value, type=Block).until)

    def known_block(self, venue: str, account: str) -> int:
        """ns until which this replica knows the venue is blocked (watcher, reads, own blocks)."""
        return max(self._blocks.get(k, 0) for k in self._block_keys(venue, account))

    async def _local_block(self, venue: str, account: str) -> int:
        """The block as this replica knows it: from the watcher while it runs, else read."""
        if self._watch is None or self._watch.done():
            return await self.blocked_until(venue, account)
        return self.known_block(venue, account)

    async def blocked_until(self, venue: str, account: str) -> int:
        """ns until which the fleet must not call this venue for this account/IP (0: free),
        read from the bucket."""
        until = 0
        for key in self._block_keys(venue, account):
            block, _ = await self._get(key, Block)
            if block is not None:
                self._blocked(key, block.until)  # type: ignore[attr-defined]
                until = max(until, block.until)  # type: ignore[attr-defined]
        return until

    async def block(self, venue: str, account: str, seconds: float, reason: str, scope: str = "ip") -> None:
        """Stop every replica from calling ``venue`` until now + ``seconds`` (429/418)."""
        key = f"{venue}.{'ip-' + self.egress if scope == 'ip' else 'acct-' + account}.block"
        METRICS.blocks.labels(venue).inc()
        until = self.clock() + int(seconds * NS)
        self._blocked(key, until)
        while True:
            current, rev = await self._get(key, Block)
            if current is not None and current.until >= until:  # type: ignore[attr-defined]
                return
            if await self._put(key, Block(until=until, reason=reason), rev):
                return

    async def close(self) -> None:
        """Stop following the block keys."""
        if self._watcher is not None:
            await self._watcher.stop()
        if self._watch is not None:
            await asyncio.gather(self._watch, return_exceptions=True)

    # --- leases ---------------------------------------------------------------------------
    async def acquire(self, venue: str, account: str, limits: tuple[RateLimit, ...],
                      costs: Mapping[str, int], *, deadline_s: float = 60.0) -> Lease:
        """Wait until every limit in ``costs`` has room and take it. Raises LeaseTimeout
        after ``deadline_s``."""
        start = self.clock()
        deadline = start + int(deadline_s * NS)
        by_name = {lim.name: lim for lim in limits}
        wanted = [(by_name[name], cost) for name, cost in costs.items() if cost > 0 and name in by_name]
        await self._follow_blocks()
        slots: dict[str, int] = {}
        while True:
            for limit, cost in wanted:
                if limit.name not in slots:
                    slots[limit.name] = await self._take(venue, account, limit, cost, deadline)
            now = self.clock()
            blocked = await self._local_block(venue, account)
            if blocked > now:  # a block arrived meanwhile: these units are void
                slots.clear()
                await self._wait(blocked - now, deadline)
                continue
            expired = [name for name, slot in slots.items() if slot < now]
            if not expired:
                break
            for name in expired:  # waiting for another limit outlasted this one's slot
                del slots[name]
        waited = (now - start) / NS
        self.granted += 1
        self.waited_s += waited
        return Lease(at=now, waited_s=waited, slots=slots)

    async def _take(self, venue: str, account: str, limit: RateLimit, cost: int, deadline: int) -> int:
        """The first slot of ``cost`` units of ``limit``, once its window has opened."""
        key = self._key(venue, limit, account)
        piece = self._slices.get(key)
        if piece is None:
            piece = self._slices[key] = _Slice()
        interval, tau = self._interval(limit), self._tolerance(limit)
        piece.waiting += 1
        try:
            if piece.lock.locked():  # other acquires of this replica are ahead: queue behind them
                try:
                    await asyncio.wait_for(piece.lock.acquire(), max(0.0, (deadline - self.clock()) / NS))
                except asyncio.TimeoutError:
                    raise LeaseTimeout("rate-limit lease not granted within the deadline (queued locally)") from None
            else:
                await piece.lock.acquire()
            try:
                while True:
                    now = self.clock()
                    blocked = await self._local_block(venue, account)
                    if blocked > now:
                        await self._wait(blocked - now, deadline)
                        continue
                    if piece.next < now:  # slots already passed expire unused
                        piece.next += -(-(now - piece.next) // interval) * interval
                    if piece.next + cost * interval <= piece.end:
                        slot = piece.next
                        piece.next += cost * interval
                        piece.demand(now)
                        piece.taken += cost
                        break
                    await self._reserve(key, limit, piece, cost, deadline)
            finally:
                piece.lock.release()
        finally:
            piece.waiting -= 1
        opens = slot - tau
        now = self.clock()
        if opens > now:
            await self._wait(opens - now, deadline)
        return slot

    async def _reserve(self, key: str, limit: RateLimit, piece: _Slice, cost: int, deadline: int) -> None:
        """Take a new slice from the shared state (compare-and-swap), waiting until its
        first unit becomes usable within the horizon."""
        interval, tau = self._interval(limit), self._tolerance(limit)
        grace = min(tau // 2, int(GRACE_S * NS))
        horizon = int(HORIZON_S * NS)
        cap = max(cost, min(MAX_SLICE, tau // interval // 4))
        while True:
            now = self.clock()
            want = min(cap, max(cost * piece.waiting, piece.demand(now)))
            state, rev = await self._get(key, GcraState)
            tat = state.tat if state is not None else 0  # type: ignore[attr-defined]
            piece.known_tat = max(piece.known_tat, tat)
            first = max(tat, now + grace)
            opens = first - tau
            if opens > now + horizon:
                await self._wait(opens - horizon - now, deadline)
                continue
            usable = (now + horizon - opens) // interval + 1  # units whose window opens within the horizon
            units = max(cost, min(want, usable))
            end = first + units * interval
            if await self._put(key, GcraState(tat=end), rev):
                piece.next, piece.end, piece.known_tat = first, end, end
                self.reservations += 1
                METRICS.lease(key.split(".", 1)[0], limit.name, end, tau)
                return
            # another replica took budget first: re-read and try again

    async def _wait(self, ns: int, deadline: int) -> None:
        if self.clock() + ns > deadline:
            raise LeaseTimeout(f"rate-limit lease not granted within the deadline (needs {ns / NS:.3f}s more)")
        await self.sleep(ns / NS)

    # --- usage headers ----------------------------------------------------------------------
    async def observe(self, venue: str, account: str, limits: tuple[RateLimit, ...], headers: Mapping[str, str]) -> None:
        """Correct the shared state from a reply's usage headers (lower-cased keys): when the
        venue counted more than exbus did, push the TAT forward so the fleet slows down.
        A header the last TAT seen here already covers needs no round trip."""
        now = self.clock()
        for limit in limits:
            if not limit.usage_header or limit.usage_header not in headers:
                continue
            used = _used_units(limit, headers[limit.usage_header])
            if used is None:
                continue
            key = self._key(venue, limit, account)
            interval = self._interval(limit)
            period = int(limit.period_s * NS)
            # ``used`` counts units since the venue's current window began (windows are
            # clock-aligned: "between 12:34:00 and 12:34:10"), not units spent just now
            floor_tat = now - now % period + used * interval
            piece = self._slices.get(key)
            if piece is not None and piece.known_tat >= floor_tat:
                continue  # the shared TAT only moves forward: it is at least this far already
            while True:
                state, rev = await self._get(key, GcraState)
                tat = state.tat if state is not None else 0  # type: ignore[attr-defined]
                if tat >= floor_tat or await self._put(key, GcraState(tat=floor_tat), rev):
                    if piece is not None:
                        piece.known_tat = max(piece.known_tat, tat, floor_tat)
                    break


async def _watch_blocks(limiter: "weakref.ref[RateLimiter]", watcher) -> None:
    """Apply every block written to the bucket until the watcher stops or its limiter is gone
    (the timeout keeps this task referenced by the loop and lets it notice)."""
    try:
        while (owner := limiter()) is not None:
            del owner
            try:
                entry = await watcher.updates(timeout=1.0)
            except NatsTimeout:
                continue
            if entry is watcher.STOP_ITER:
                return
            if entry is not None and (owner := limiter()) is not None:
                owner._apply_block(entry)
                del owner
    except Exception as e:  # the connection is gone: acquire falls back to reading the keys
        log.warning("rate-limit block watcher stopped", error=repr(e))


def _used_units(limit: RateLimit, value: str) -> int | None:
    """Units used in the current window from a usage header value."""
    try:
        if limit.usage_reports == "used":
            return int(value.strip())
        # "group=order; min=1800; sec=29" (Upbit) or "limit=50, remaining=48, reset=1" (Korbit)
        fields = dict(part.strip().split("=", 1) for part in value.replace(",", ";").split(";") if "=" in part)
        if limit.group and fields.get("group") not in (None, limit.group):
            return None
        remaining = int(fields.get("sec", fields.get("remaining", "")))
        return max(0, limit.capacity - remaining)
    except ValueError:
        return None
