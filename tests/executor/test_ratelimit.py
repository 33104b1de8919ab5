"""Rate-limit leases shared through KV by several replicas (separate connections to a
real nats-server): the budget holds in every window, blocks stop the whole fleet,
usage headers slow the fleet down."""

from __future__ import annotations

import asyncio
import time

import nats
import pytest

from services.bus.streams import KV_RATELIMITS, ensure_streams
from services.config import StreamSettings
from services.executor.ratelimit import BURST, Lease, LeaseTimeout, RateLimiter
from services.venues.base import RateLimit

LIMIT = RateLimit("weight", 10, 1.0, "ip", usage_header="x-mbx-used-weight-1m")


@pytest.fixture
async def limiters(nats_url: str):
    conns = [await nats.connect(nats_url) for _ in range(4)]
    await ensure_streams(conns[0].jetstream(), StreamSettings())
    out = [RateLimiter(await nc.jetstream().key_value(KV_RATELIMITS), margin=1.0) for nc in conns]
    yield out
    for lim in out:
        await lim.close()
    for nc in conns:
        await nc.close()


async def test_four_replicas_never_exceed_the_limit_in_any_window(limiters) -> None:
    """The hand-out times the limiters report (each checked against its slot right before
    acquire returns), not wall time after return, which a busy machine bunches together."""
    leases: list[Lease] = []

    async def lessee(limiter: RateLimiter) -> None:
        for _ in range(6):
            leases.append(await limiter.acquire("binance", "main", (LIMIT,), {"weight": 1}))

    await asyncio.gather(*(lessee(lim) for lim in limiters))
    assert len(leases) == 24
    tau = int(LIMIT.period_s * 1e9 * BURST)
    assert all(lease.slots["weight"] - tau <= lease.at <= lease.slots["weight"] for lease in leases)
    assert len({lease.slots["weight"] for lease in leases}) == 24, "two replicas were given the same slot"
    grants = sorted(lease.at for lease in leases)
    period = int(LIMIT.period_s * 1e9)
    worst = max(sum(1 for g in grants if t <= g < t + period) for t in grants)
    assert worst <= LIMIT.capacity, f"{worst} grants in one {LIMIT.period_s}s window"


async def test_slices_serve_most_leases_without_a_round_trip(limiters) -> None:
    """Lease batching: under load a replica reserves a slice of slots per compare-and-swap;
    every unit handed out still owns a distinct slot of the shared state."""
    roomy = RateLimit("weight", 100_000, 1.0, "ip")
    leases: list[Lease] = []

    async def lessee(limiter: RateLimiter) -> None:
        for _ in range(25):
            leases.append(await limiter.acquire("binance", "main", (roomy,), {"weight": 1}))

    await asyncio.gather(*(lessee(lim) for lim in limiters for _ in range(8)))  # 8 concurrent acquires each
    assert len(leases) == 800
    reservations = sum(lim.reservations for lim in limiters)
    assert reservations <= len(leases) / 4, f"{reservations} compare-and-swaps for {len(leases)} leases"
    slots = sorted(lease.slots["weight"] for lease in leases)
    interval = limiters[0]._interval(roomy)
    assert all(b - a >= interval for a, b in zip(slots, slots[1:])), "a slot was handed out twice"
    assert all(lease.at <= lease.slots["weight"] for lease in leases)


async def test_a_block_voids_every_replicas_reserved_slices(limiters) -> None:
    roomy = RateLimit("weight", 100_000, 1.0, "ip")
    a, b = limiters[0], limiters[1]
    await asyncio.gather(*(a.acquire("binance", "main", (roomy,), {"weight": 1}) for _ in range(20)))
    taken = a.reservations
    await b.block("binance", "main", 0.5, reason="HTTP 429 Retry-After")
    until = await b.blocked_until("binance", "main")

    async def seen_by_a() -> None:  # a follows the block keys with a watcher
        while a.known_block("binance", "main") < until:
            await asyncio.sleep(0.005)

    await asyncio.wait_for(seen_by_a(), 10)
    lease = await a.acquire("binance", "main", (roomy,), {"weight": 1})
    assert lease.at >= until
    assert a.reservations > taken, "a unit reserved before the block was handed out after it"


async def test_a_usage_header_the_shared_state_already_covers_costs_no_write(limiters) -> None:
    lim = limiters[0]
    await lim.acquire("binance", "main", (LIMIT,), {"weight": 1})
    before = (await lim.kv.get("binance.ip-default.weight")).revision
    await lim.observe("binance", "main", (LIMIT,), {"x-mbx-used-weight-1m": "1"})
    assert (await lim.kv.get("binance.ip-default.weight")).revision == before


async def test_a_block_stops_every_replica_until_it_ends(limiters) -> None:
    a, b = limiters[0], limiters[1]
    await a.block("binance", "main", 0.6, reason="HTTP 429 Retry-After")
    until = await b.blocked_until("binance", "main")
    assert until > time.time_ns()
    await b.acquire("binance", "main", (LIMIT,), {"weight": 1})
    assert time.time_ns() >= until  # granted only once the block ended
    await b.block("binance", "main", 30, reason="418")
    with pytest.raises(LeaseTimeout):
        await a.acquire("binance", "main", (LIMIT,), {"weight": 1}, deadline_s=0.2)


async def test_usage_header_pushes_the_shared_budget(limiters) -> None:
    window_start = time.time_ns() // 1_000_000_000 * 1_000_000_000 + 1_000_000_000  # venue windows are clock-aligned
    a, b = (RateLimiter(lim.kv, margin=1.0, clock=lambda: window_start + 1_000_000) for lim in limiters[:2])
    await a.observe("binance", "main", (LIMIT,), {"x-mbx-used-weight-1m": "10"})  # the venue saw the budget spent
    with pytest.raises(LeaseTimeout):
        await b.acquire("binance", "main", (LIMIT,), {"weight": 1}, deadline_s=0.3)


async def test_account_and_ip_scopes_are_separate_budgets(limiters) -> None:
    orders = RateLimit("orders_10s", 1, 10.0, "account")
    lim = limiters[0]
    await lim.acquire("binance", "acct-a", (orders,), {"orders_10s": 1})
    await lim.acquire("binance", "acct-b", (orders,), {"orders_10s": 1}, deadline_s=0.2)  # another account: free
    with pytest.raises(LeaseTimeout):
        await lim.acquire("binance", "acct-a", (orders,), {"orders_10s": 1}, deadline_s=0.2)
