"""Rate-limit leases shared by every executor replica, in KV bucket ``ratelimits``.

Each limit of a venue (``services.venues.<venue>.rest`` ``rate_limits``) is a GCRA
(generic cell rate algorithm) state per key ``<venue>.<scope>.<limit>``: the theoretical
arrival time (TAT) of the next unit. A lease of ``cost`` units is granted when
``tat + cost*T - period <= now`` and written with compare-and-swap on the entry's
revision, so two replicas can never both spend the same budget. The emission interval is
``T = period / C`` and the burst tolerance ``tau = BURST * period``, with
``C = floor(capacity * margin / (1 + BURST))``: then no window of one period ever holds
more than ``capacity * margin`` units, whether the venue counts in fixed windows
(Binance) or sliding ones. A venue's usage headers push the TAT forward
when the venue counted more than we did; a 429/418 writes a fleet-wide block key that
every acquire honours until the venue's Retry-After.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Awaitable, Callable, Mapping

import msgspec
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from services.observability.catalog import EXECUTOR as METRICS
from services.venues.base import RateLimit

NS = 1_000_000_000
BURST = 0.1
"""Burst tolerance as a share of the period."""


class GcraState(msgspec.Struct):
    tat: int = 0
    """Theoretical arrival time of the next unit (ns since the epoch)."""


class Block(msgspec.Struct):
    until: int
    reason: str


class LeaseTimeout(TimeoutError):
    """A lease could not be granted within the caller's deadline."""


def scope_id(limit: RateLimit, account: str, egress: str = "default") -> str:
    """The key token a limit is counted under: the egress IP for per-IP limits, the
    account otherwise (Binance weight per IP, order counts per account)."""
    return f"ip-{egress}" if limit.scope == "ip" else f"acct-{account}"


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

    def _key(self, venue: str, limit: RateLimit, account: str) -> str:
        return f"{venue}.{scope_id(limit, account, self.egress)}.{limit.name}"

    def _interval(self, limit: RateLimit) -> int:
        capacity = max(1, math.floor(limit.capacity * self.margin / (1 + BURST)))
        return int(limit.period_s * NS / capacity)

    @staticmethod
    def _tolerance(limit: RateLimit) -> int:
        return int(limit.period_s * NS * BURST)

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

    async def blocked_until(self, venue: str, account: str) -> int:
        """ns until which the fleet must not call this venue for this account/IP (0: free)."""
        until = 0
        for key in (f"{venue}.ip-{self.egress}.block", f"{venue}.acct-{account}.block"):
            block, _ = await self._get(key, Block)
            if block is not None:
                until = max(until, block.until)  # type: ignore[attr-defined]
        return until

    async def block(self, venue: str, account: str, seconds: float, reason: str, scope: str = "ip") -> None:
        """Stop every replica from calling ``venue`` until now + ``seconds`` (429/418)."""
        key = f"{venue}.{'ip-' + self.egress if scope == 'ip' else 'acct-' + account}.block"
        METRICS.blocks.labels(venue).inc()
        until = self.clock() + int(seconds * NS)
        while True:
            current, rev = await self._get(key, Block)
            if current is not None and current.until >= until:  # type: ignore[attr-defined]
                return
            if await self._put(key, Block(until=until, reason=reason), rev):
                return

    async def acquire(self, venue: str, account: str, limits: tuple[RateLimit, ...],
                      costs: Mapping[str, int], *, deadline_s: float = 60.0) -> float:
        """Wait until every limit in ``costs`` has room and take it; returns seconds waited.
        Raises LeaseTimeout after ``deadline_s``."""
        start = self.clock()
        deadline = start + int(deadline_s * NS)
        by_name = {lim.name: lim for lim in limits}
        for name, cost in costs.items():
            if cost <= 0 or name not in by_name:
                continue
            await self._acquire_one(venue, account, by_name[name], cost, deadline)
        waited = (self.clock() - start) / NS
        self.granted += 1
        self.waited_s += waited
        return waited

    async def _acquire_one(self, venue: str, account: str, limit: RateLimit, cost: int, deadline: int) -> None:
        key = self._key(venue, limit, account)
        interval, tau = self._interval(limit), self._tolerance(limit)
        while True:
            now = self.clock()
            blocked = await self.blocked_until(venue, account)
            if blocked > now:
                await self._wait(blocked - now, deadline)
                continue
            state, rev = await self._get(key, GcraState)
            tat = max(state.tat if state is not None else 0, now)  # type: ignore[attr-defined]
            allow_at = tat - tau
            if allow_at > now:
                await self._wait(allow_at - now, deadline)
                continue
            if await self._put(key, GcraState(tat=tat + cost * interval), rev):
                METRICS.lease(venue, limit.name, tat + cost * interval, tau)
                return
            # another replica took budget first: re-read and try again

    async def _wait(self, ns: int, deadline: int) -> None:
        if self.clock() + ns > deadline:
            raise LeaseTimeout(f"rate-limit lease not granted within the deadline (needs {ns / NS:.3f}s more)")
        await self.sleep(ns / NS)

    async def observe(self, venue: str, account: str, limits: tuple[RateLimit, ...], headers: Mapping[str, str]) -> None:
        """Correct the shared state from a reply's usage headers (lower-cased keys): when the
        venue counted more than exbus did, push the TAT forward so the fleet slows down."""
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
            while True:
                state, rev = await self._get(key, GcraState)
                if state is not None and state.tat >= floor_tat:  # type: ignore[attr-defined]
                    break
                if await self._put(key, GcraState(tat=floor_tat), rev):
                    break


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
