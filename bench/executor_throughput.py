"""Executor benchmark: what exbus's executor fleet does per second and per command, and
what shared rate-limit leases change against per-process throttling (ccxt's way).

Everything runs as real processes: nats-server (embedded), the venue simulator
(`exbus sim`), executor replicas (`exbus execute`, one process each). Orders are Binance
IOC limit buys priced under the book: each reaches the venue and ends at once (``expired``),
so every command is one venue call and one outcome event, with nothing left to track.

1. ``scaling``: 1, 2 and 4 replicas, simulator and exbus limits lifted. Throughput from a
   backlog of N commands (first publish -> last outcome event), latency command ->
   outcome event (event ``ts`` minus publish time) p50/p99 under that backlog and at a
   fixed offered rate.
   ``scaling_with_venue_latency``: the same with every order answered after
   ``--venue-latency-ms`` (a real venue's round trip): replicas then wait on the venue, not
   on this machine's two cores, and their in-flight capacity adds up.
2. ``overhead``: one replica, one command at a time: p50 command -> outcome minus p50 of
   the same signed POST /api/v3/order sent straight to the simulator.
3. ``fleet_vs_ccxt``: the venue's real order limit (100 per 10 s per account), 4 processes
   offered 10 orders/s each (the full limit each): 4 processes each throttled by ccxt's
   own async Throttler at the full limit, then 4 exbus replicas sharing leases (default
   margin). For each: the simulator's 10 s windows over the limit, 429s, accepted orders/s.

    .venv/bin/python bench/executor_throughput.py [--orders N] [--out bench/results/executor.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nats  # noqa: E402

import schemas  # noqa: E402
from schemas import PlaceOrder, subjects  # noqa: E402
from schemas.vault import Credentials  # noqa: E402
from services.bus.embedded import EmbeddedNats  # noqa: E402
from services.bus.streams import ORDERS, ensure_streams  # noqa: E402
from services.config import StreamSettings  # noqa: E402
from services.executor.service import DURABLE  # noqa: E402
from services.simulator.config import sim_config  # noqa: E402
from services.venues import rest_adapter  # noqa: E402
from services.venues.http import HttpTransport  # noqa: E402
from tests.executor.processes import (  # noqa: E402
    LIFTED_MARGIN, LIFTED_SIM_LIMITS, ExecutorProcess, SimProcess, executor_env,
)

NS = 1_000_000_000
ORDER_LIMIT, ORDER_PERIOD_S = 100, 10
"""Binance ORDERS_10S per account: the simulator's default and exbus's table."""
FULL_LIMIT_MS = ORDER_PERIOD_S * 1000 / ORDER_LIMIT
"""ccxt ``rateLimit`` (ms between requests) that spends the whole order limit."""


def order(tag: str, i: int) -> PlaceOrder:
    return PlaceOrder(command_id=f"{tag}-{i}", venue="binance", account="demo", symbol="NKN-USDT",
                      client_order_id=f"{tag}-{i}", side="buy", order_type="limit", time_in_force="ioc",
                      quantity=Decimal("100"), price=Decimal("0.30"))


def ms(ns_values: list[int], p: float) -> float:
    values = sorted(ns_values)
    return round(values[min(len(values) - 1, int(p / 100 * len(values)))] / 1e6, 3)


class Bench:
    """The bus connection, publish times and outcome events of every command."""

    def __init__(self, nc) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.published: dict[str, int] = {}
        self.outcome: dict[str, schemas.OrderEvent] = {}
        self._changed = asyncio.Event()

    async def start(self) -> "Bench":
        async def on_event(msg) -> None:
            event = schemas.decode(msg.data, schemas.OrderEvent)
            if event.command_id and event.command_id not in self.outcome:
                self.outcome[event.command_id] = event
                self._changed.set()
        await self.nc.subscribe(subjects.orders_events_of(), cb=on_event)
        return self

    async def submit(self, command: PlaceOrder) -> None:
        self.published[command.command_id] = time.time_ns()
        await self.js.publish(subjects.orders_submit(command.venue, command.account), schemas.encode(command),
                              headers={"Nats-Msg-Id": command.command_id})

    async def until_done(self, ids: list[str], timeout_s: float = 300.0) -> None:
        async def wait() -> None:
            while not all(i in self.outcome for i in ids):
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(wait(), timeout_s)

    def latencies(self, ids: list[str]) -> list[int]:
        return [self.outcome[i].ts - self.published[i] for i in ids]

    async def consumers_waiting(self, n: int, timeout_s: float = 90.0) -> None:
        """Until ``n`` replicas have a pull request pending on ORDERS (they are up)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if (await self.js.consumer_info(ORDERS, DURABLE)).num_waiting >= n:
                    return
            except Exception:  # the first replica has not created the consumer yet
                pass
            await asyncio.sleep(0.2)
        raise TimeoutError(f"{n} executor replicas not consuming after {timeout_s}s")


async def start_fleet(n: int, workdir: Path, nats_url: str, sim: SimProcess, bench: Bench, **settings) -> list[ExecutorProcess]:
    env = executor_env(nats_url, sim.venue_urls, **settings)
    fleet = [ExecutorProcess(f"executor-{n}-{i}", workdir, env) for i in range(n)]
    for ex in fleet:
        await ex.start()
    await bench.consumers_waiting(n)
    return fleet


async def stop_fleet(fleet: list[ExecutorProcess]) -> None:
    await asyncio.gather(*(ex.stop() for ex in fleet))


async def scaling_run(n: int, backlog: int, paced_rate: float, paced_s: float, *, bench: Bench, workdir: Path,
                      nats_url: str, sim: SimProcess) -> dict:
    fleet = await start_fleet(n, workdir, nats_url, sim, bench, rate_limit_margin=LIFTED_MARGIN)
    try:
        warm = [order(f"warm{n}", i) for i in range(20 * n)]  # every replica loads market rules, pools connections
        for c in warm:
            await bench.submit(c)
        await bench.until_done([c.command_id for c in warm])
        burst = [order(f"burst{n}", i) for i in range(backlog)]
        for c in burst:
            await bench.submit(c)
        ids = [c.command_id for c in burst]
        await bench.until_done(ids)
        seconds = (max(bench.outcome[i].ts for i in ids) - bench.published[ids[0]]) / NS
        lat = bench.latencies(ids)
        paced = [order(f"paced{n}", i) for i in range(int(paced_rate * paced_s))]
        start = time.monotonic()
        for k, c in enumerate(paced):
            await asyncio.sleep(max(0.0, start + k / paced_rate - time.monotonic()))
            await bench.submit(c)
        await bench.until_done([c.command_id for c in paced])
        paced_lat = bench.latencies([c.command_id for c in paced])
    finally:
        await stop_fleet(fleet)
    statuses = {bench.outcome[i].status for i in ids}
    return {"replicas": n, "commands": backlog, "seconds": round(seconds, 3),
            "commands_per_s": round(backlog / seconds, 1), "outcomes": sorted(statuses),
            "backlog_latency_ms": {"p50": ms(lat, 50), "p99": ms(lat, 99)},
            "paced": {"offered_per_s": paced_rate, "commands": len(paced),
                      "latency_ms": {"p50": ms(paced_lat, 50), "p99": ms(paced_lat, 99)}}}


async def direct_request_ns(sim: SimProcess, count: int) -> list[int]:
    """Round trips of signed POST /api/v3/order straight to the simulator, one at a time."""
    venue = rest_adapter("binance", sim.venue_urls["binance"])
    account = sim_config({}).binance.accounts[0]
    creds = Credentials(api_key=account.api_key, secret=account.secret)
    out = []
    async with HttpTransport() as http:
        for i in range(count):
            request = venue.build_request("place_order", order("direct", i), creds, time.time_ns() // 1_000_000)
            start = time.perf_counter_ns()
            response = await http.send(request, idempotent=False)
            out.append(time.perf_counter_ns() - start)
            assert response.status == 200, response.body[:200]
    return out


async def overhead_run(count: int, *, bench: Bench, workdir: Path, nats_url: str, sim: SimProcess) -> dict:
    fleet = await start_fleet(1, workdir, nats_url, sim, bench, rate_limit_margin=LIFTED_MARGIN)
    try:
        for i in range(20):  # warm-up
            c = order("owarm", i)
            await bench.submit(c)
            await bench.until_done([c.command_id])
        ids = []
        for i in range(count):
            c = order("serial", i)
            await bench.submit(c)
            await bench.until_done([c.command_id])
            ids.append(c.command_id)
    finally:
        await stop_fleet(fleet)
    venue_ns = await direct_request_ns(sim, count)
    lat = bench.latencies(ids)
    return {"commands": count, "command_to_outcome_ms": {"p50": ms(lat, 50), "p99": ms(lat, 99)},
            "venue_request_ms": {"p50": ms(venue_ns, 50), "p99": ms(venue_ns, 99)},
            "overhead_p50_ms": round(statistics.median(lat) / 1e6 - statistics.median(venue_ns) / 1e6, 3)}


# --- 4 processes at the full limit each: ccxt's throttling against exbus's leases -------------------------

async def ccxt_worker(url: str, seconds: float, tag: str) -> dict:
    """One bot process: ccxt's async Throttler at ``rateLimit`` = the full order limit, an
    order placed as soon as it lets one through (ccxt's Exchange builds its throttler the
    same way: leaky bucket, capacity 1, refillRate 1/rateLimit)."""
    from ccxt.async_support.base.throttler import Throttler

    throttle = Throttler({"delay": 0.001, "capacity": 1, "cost": 1, "refillRate": 1 / FULL_LIMIT_MS,
                          "algorithm": "leakyBucket", "rateLimit": FULL_LIMIT_MS})
    venue = rest_adapter("binance", url)
    account = sim_config({}).binance.accounts[0]
    creds = Credentials(api_key=account.api_key, secret=account.secret)
    statuses: dict[int, int] = {}

    async def place(i: int, http: HttpTransport) -> None:
        request = venue.build_request("place_order", order(tag, i), creds, time.time_ns() // 1_000_000)
        response = await http.send(request, idempotent=False)
        statuses[response.status] = statuses.get(response.status, 0) + 1

    async with HttpTransport() as http:
        end, i, pending = time.monotonic() + seconds, 0, []
        while time.monotonic() < end:
            await throttle(1)
            pending.append(asyncio.create_task(place(i, http)))
            i += 1
        await asyncio.gather(*pending)
    return {"sent": i, "statuses": statuses}


def windows_over_limit(ledger: dict, start_ns: int, end_ns: int) -> dict:
    """Per clock-aligned 10 s window (as the simulator counts): orders the account tried
    (accepted + refused for the order limit); how many windows went over the limit."""
    period = ORDER_PERIOD_S * NS
    tried: dict[int, int] = {}
    stamps = [o["ts"] for o in ledger["orders"]] + [r["ts"] for r in ledger["rejected"] if r["error"] == "-1015"]
    for ts in stamps:
        tried[ts // period] = tried.get(ts // period, 0) + 1
    accepted = sum(1 for o in ledger["orders"] if start_ns <= o["ts"] < end_ns)
    account = ledger["limits"]["binance"].get("account:demo", {})
    ip = ledger["limits"]["binance"].get("ip:127.0.0.1", {})
    return {"windows": len(tried), "windows_over_limit": sum(1 for n in tried.values() if n > ORDER_LIMIT),
            "highest_window": max(tried.values(), default=0), "limit": ORDER_LIMIT,
            "status_429": account.get("status_429", 0) + ip.get("status_429", 0),
            "status_418": account.get("status_418", 0) + ip.get("status_418", 0),
            "accepted_per_s": round(accepted / ((end_ns - start_ns) / NS), 2)}


async def ccxt_mode(seconds: float, workdir: Path) -> dict:
    async with SimProcess(workdir / "sim-ccxt") as sim:
        start = time.time_ns()
        procs = [await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--ccxt-worker", sim.venue_urls["binance"], "--seconds", str(seconds),
            "--tag", f"ccxt{i}", stdout=asyncio.subprocess.PIPE) for i in range(4)]
        outs = [json.loads((await p.communicate())[0]) for p in procs]
        end = time.time_ns()
        ledger = await sim.ledger()
    return {"processes": 4, "throttle": f"ccxt Throttler, rateLimit {FULL_LIMIT_MS:.0f} ms each",
            "sent": sum(o["sent"] for o in outs), **windows_over_limit(ledger, start, end)}


async def exbus_mode(seconds: float, *, bench: Bench, workdir: Path, nats_url: str) -> dict:
    async with SimProcess(workdir / "sim-exbus") as sim:
        fleet = await start_fleet(4, workdir, nats_url, sim, bench)  # default margin
        try:
            rate = 4 * 1000 / FULL_LIMIT_MS
            start, t0 = time.time_ns(), time.monotonic()
            k = 0
            while time.monotonic() - t0 < seconds:
                await asyncio.sleep(max(0.0, t0 + k / rate - time.monotonic()))
                await bench.submit(order("fleet", k))
                k += 1
            end = time.time_ns()
            ledger = await sim.ledger()
        finally:
            await stop_fleet(fleet)
    return {"processes": 4, "throttle": "exbus shared GCRA leases (KV), default margin",
            "offered": k, **windows_over_limit(ledger, start, end)}


async def lease_run(nats_url: str, count: int) -> dict:
    """The rate-limit part of one Binance order: lease (every limit the order costs) and the
    usage-header correction after the answer, one at a time, as one replica does them."""
    from services.bus.streams import KV_RATELIMITS
    from services.executor.ratelimit import RateLimiter

    nc = await nats.connect(nats_url)
    limiter = RateLimiter(await nc.jetstream().key_value(KV_RATELIMITS), margin=LIFTED_MARGIN)
    venue = rest_adapter("binance")
    costs = venue.cost("place_order", order("lease", 0))
    headers = {"x-mbx-used-weight-1m": "1", "x-mbx-order-count-10s": "1", "x-mbx-order-count-1d": "1"}
    acquire, observe = [], []
    for _ in range(count):
        t0 = time.perf_counter_ns()
        await limiter.acquire("binance", "demo", venue.rate_limits, costs)
        t1 = time.perf_counter_ns()
        await limiter.observe("binance", "demo", venue.rate_limits, headers)
        acquire.append(t1 - t0)
        observe.append(time.perf_counter_ns() - t1)
    await nc.close()
    return {"limits_per_order": sorted(costs), "acquire_ms_p50": ms(acquire, 50), "observe_ms_p50": ms(observe, 50)}


async def on_fresh_bus(workdir: Path, run) -> dict:
    """``run(bench, nats_url)`` on a nats-server of its own, so every measurement starts
    from empty streams and buckets."""
    async with EmbeddedNats(Path(tempfile.mkdtemp(dir=workdir, prefix="nats-"))) as server:
        nc = await nats.connect(server.url)
        await ensure_streams(nc.jetstream(), StreamSettings())
        try:
            return await run(await Bench(nc).start(), server.url)
        finally:
            await nc.close()


async def main(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="exbus-bench-exec-"))
    load = [round(x, 2) for x in os.getloadavg()]  # a shared machine: say how busy it was
    async with SimProcess(workdir / "sim", "[sim]\nreplay = false\n" + LIFTED_SIM_LIMITS) as sim:
        scaling = []
        for n in (1, 2, 4):
            scaling.append(await on_fresh_bus(workdir, lambda bench, url, n=n: scaling_run(
                n, args.orders, args.paced_rate, args.paced_seconds, bench=bench, workdir=workdir, nats_url=url, sim=sim)))
            print(f"  {n} replica(s): {scaling[-1]['commands_per_s']} commands/s", file=sys.stderr)
    slow_venue = (f"[sim]\nreplay = false\n[[sim.faults]]\nkind = \"latency\"\nvenue = \"binance\"\nroute = \"place\"\n"
                  f"latency_ms = {args.venue_latency_ms}\n" + LIFTED_SIM_LIMITS)
    slow_scaling = []
    if args.venue_latency_ms:
        async with SimProcess(workdir / "sim-slow", slow_venue) as slow_sim:
            for n in (1, 2, 4):
                slow_scaling.append(await on_fresh_bus(workdir, lambda bench, url, n=n: scaling_run(
                    n, args.orders, args.paced_rate, args.paced_seconds, bench=bench, workdir=workdir, nats_url=url,
                    sim=slow_sim)))
                print(f"  {n} replica(s), venue {args.venue_latency_ms} ms: {slow_scaling[-1]['commands_per_s']} "
                      f"commands/s", file=sys.stderr)
    async with SimProcess(workdir / "sim", "[sim]\nreplay = false\n" + LIFTED_SIM_LIMITS) as sim:
        overhead = await on_fresh_bus(workdir, lambda bench, url: overhead_run(
            args.serial, bench=bench, workdir=workdir, nats_url=url, sim=sim))
        overhead["leases"] = await on_fresh_bus(workdir, lambda bench, url: lease_run(url, args.serial))
    ccxt = await ccxt_mode(args.limit_seconds, workdir)
    fleet = await on_fresh_bus(workdir, lambda bench, url: exbus_mode(
        args.limit_seconds, bench=bench, workdir=workdir, nats_url=url))
    return {"benchmark": "executor_throughput", "python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "load_average_at_start": load, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "orders": "Binance NKN-USDT IOC limit buys under the book (outcome: expired)",
            "scaling": scaling,
            "scaling_with_venue_latency": {"venue_latency_ms": args.venue_latency_ms, "runs": slow_scaling},
            "overhead": overhead,
            "fleet_vs_ccxt": {"seconds": args.limit_seconds, "ccxt": ccxt, "exbus": fleet}}


def table(result: dict) -> str:
    rows = ["replicas  commands/s  backlog p50/p99 ms   paced (/s) p50/p99 ms"]
    for r in result["scaling"]:
        rows.append(f"{r['replicas']:>8}  {r['commands_per_s']:>10}  {r['backlog_latency_ms']['p50']:>8} / "
                    f"{r['backlog_latency_ms']['p99']:<8}  ({r['paced']['offered_per_s']:.0f}) "
                    f"{r['paced']['latency_ms']['p50']} / {r['paced']['latency_ms']['p99']}")
    slow = result.get("scaling_with_venue_latency", {})
    if slow.get("runs"):
        rows.append(f"with {slow['venue_latency_ms']} ms venue latency: " + ", ".join(
            f"{r['replicas']} -> {r['commands_per_s']}/s" for r in slow["runs"]))
    o = result["overhead"]
    rows.append(f"overhead: command->outcome p50 {o['command_to_outcome_ms']['p50']} ms - venue request p50 "
                f"{o['venue_request_ms']['p50']} ms = {o['overhead_p50_ms']} ms per command")
    lease = o["leases"]
    rows.append(f"  of which rate-limit leases: acquire p50 {lease['acquire_ms_p50']} ms over "
                f"{len(lease['limits_per_order'])} limits, usage-header correction p50 {lease['observe_ms_p50']} ms")
    rows.append("4 processes at the full order limit each (100 orders / 10 s / account):")
    for name, m in result["fleet_vs_ccxt"].items():
        if isinstance(m, dict):
            rows.append(f"  {name:<5}  windows over limit {m['windows_over_limit']}/{m['windows']}  highest window "
                        f"{m['highest_window']}/{m['limit']}  429s {m['status_429']}  418s {m['status_418']}  "
                        f"accepted {m['accepted_per_s']}/s")
    return "\n".join(rows)


def cli() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=1500, help="backlog per replica count")
    p.add_argument("--paced-rate", type=float, default=30.0, help="offered commands/s of the latency run")
    p.add_argument("--paced-seconds", type=float, default=5.0)
    p.add_argument("--serial", type=int, default=200, help="commands of the one-at-a-time overhead run")
    p.add_argument("--limit-seconds", type=float, default=25.0, help="duration of each fleet-vs-ccxt run")
    p.add_argument("--venue-latency-ms", type=int, default=100, help="order latency of the second scaling run (0: skip)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "executor.json"))
    p.add_argument("--ccxt-worker", metavar="URL", help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, default=20.0, help=argparse.SUPPRESS)
    p.add_argument("--tag", default="ccxt", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.ccxt_worker:
        print(json.dumps(asyncio.run(ccxt_worker(args.ccxt_worker, args.seconds, args.tag))))
        return 0
    result = asyncio.run(main(args))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
