"""Per-venue executor overhead: what exbus adds between a strategy's command and the
``accepted`` event, on each of the nine venues, against the simulator speaking that venue.

Real processes: nats-server (embedded), the simulator (`exbus sim`, limits lifted), one
executor replica (`exbus execute`). Per venue, one command at a time: a GTC limit buy at
the fifth bid level (it rests: one venue call, one ``accepted`` event; the tracker's
polling is slowed out of the way). Then the same signed place request, built by the same
adapter, sent straight to the simulator one at a time. Overhead = command -> accepted
minus the direct round trip (p50 of each, and p99 of each).

    .venv/bin/python bench/venue_overhead.py [--serial 200] [--out bench/results/venue_overhead.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schemas import PlaceOrder  # noqa: E402
from schemas.queries import OrderBookQuery  # noqa: E402
from services.demo import DEMO_MARKETS  # noqa: E402
from services.executor.credentials import paper_keys  # noqa: E402
from services.venues import rest_adapter  # noqa: E402
from services.venues.http import HttpTransport  # noqa: E402
from bench.executor_throughput import Bench, ms, on_fresh_bus, start_fleet, stop_fleet  # noqa: E402
from tests.executor.processes import LIFTED_MARGIN, LIFTED_SIM_LIMITS, SimProcess  # noqa: E402

GOAL_MS = 1.0
"""Issue goal: p50 exbus overhead under 1 ms on every venue."""


def command(venue: str, tag: str, i: int, price) -> PlaceOrder:
    symbol, quantity = DEMO_MARKETS[venue]
    return PlaceOrder(command_id=f"{tag}{venue}{i}", venue=venue, account="demo", symbol=symbol,  # type: ignore[arg-type]
                      client_order_id=f"{tag}{venue}{i}", side="buy", order_type="limit", quantity=quantity, price=price)


async def resting_price(venue: str, url: str, http: HttpTransport):
    adapter = rest_adapter(venue, url)
    query = OrderBookQuery(symbol=DEMO_MARKETS[venue][0], depth=5)
    response = await http.send(adapter.build_request("orderbook", query, None, time.time_ns() // 1_000_000), idempotent=True)
    return adapter.parse_response("orderbook", response.status, response.headers, response.body, query).bids[-1].price


async def direct_ns(venue: str, url: str, count: int, price, http: HttpTransport) -> list[int]:
    """Round trips of the signed place request straight to the simulator, one at a time."""
    adapter = rest_adapter(venue, url)
    creds = paper_keys()[(venue, "demo")]
    nonce = time.time_ns() // 1000
    out = []
    for i in range(count):
        nonce += 1
        order = command(venue, "direct", i, price)
        request = adapter.build_request("place_order", order, creds, time.time_ns() // 1_000_000,
                                        nonce if adapter.shared_nonce else None)
        start = time.perf_counter_ns()
        response = await http.send(request, idempotent=False)
        out.append(time.perf_counter_ns() - start)
        result = adapter.parse_response("place_order", response.status, response.headers, response.body, order)
        assert not isinstance(result, Exception), result
    return out


async def venue_run(venue: str, count: int, *, bench: Bench, workdir: Path, nats_url: str, sim: SimProcess) -> dict:
    url = sim.venue_urls[venue]
    async with HttpTransport() as http:
        price = await resting_price(venue, url, http)
        fleet = await start_fleet(1, workdir, nats_url, sim, bench, rate_limit_margin=LIFTED_MARGIN,
                                  tracker_interval_s=3600)
        try:
            for i in range(10):  # warm-up: connections, market rules, leases
                c = command(venue, "warm", i, price)
                await bench.submit(c)
                await bench.until_done([c.command_id], timeout_s=60)
            ids = []
            for i in range(count):
                c = command(venue, "serial", i, price)
                await bench.submit(c)
                await bench.until_done([c.command_id], timeout_s=60)
                ids.append(c.command_id)
        finally:
            await stop_fleet(fleet)
        statuses = sorted({bench.outcome[i].status for i in ids})
        direct = await direct_ns(venue, url, count, price, http)
    lat = bench.latencies(ids)
    out = {"symbol": DEMO_MARKETS[venue][0], "commands": count, "outcomes": statuses,
           "command_to_accepted_ms": {"p50": ms(lat, 50), "p99": ms(lat, 99)},
           "venue_request_ms": {"p50": ms(direct, 50), "p99": ms(direct, 99)}}
    out["overhead_ms"] = {p: round(out["command_to_accepted_ms"][p] - out["venue_request_ms"][p], 3) for p in ("p50", "p99")}
    return out


async def main(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="exbus-bench-venues-"))
    load = [round(x, 2) for x in os.getloadavg()]
    venues = {}
    async with SimProcess(workdir / "sim", "[sim]\nreplay = false\n" + LIFTED_SIM_LIMITS) as sim:
        for venue in args.venues.split(","):
            venues[venue] = await on_fresh_bus(workdir, lambda bench, url, v=venue: venue_run(
                v, args.serial, bench=bench, workdir=workdir, nats_url=url, sim=sim))
            print(f"  {venue}: overhead p50 {venues[venue]['overhead_ms']['p50']} ms", file=sys.stderr)
    return {"benchmark": "venue_overhead", "python": platform.python_version(), "cpus": os.cpu_count(),
            "load_average_at_start": load, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "method": "one replica, one command at a time: command -> accepted event minus the same signed "
                      "place request sent straight to the simulator (p50 - p50, p99 - p99)",
            "goal_overhead_p50_ms": GOAL_MS, "venues": venues}


def table(result: dict) -> str:
    rows = ["venue      command->accepted p50/p99 ms   venue request p50/p99 ms   overhead p50/p99 ms"]
    for venue, r in result["venues"].items():
        c, v, o = r["command_to_accepted_ms"], r["venue_request_ms"], r["overhead_ms"]
        rows.append(f"{venue:<10} {c['p50']:>12} / {c['p99']:<14} {v['p50']:>10} / {v['p99']:<12} "
                    f"{o['p50']:>8} / {o['p99']}")
    return "\n".join(rows)


def cli() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--serial", type=int, default=60,
                   help="commands per venue, one at a time (resting orders: Binance allows 200 open per symbol)")
    p.add_argument("--venues", default=",".join(DEMO_MARKETS))
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "venue_overhead.json"))
    args = p.parse_args()
    result = asyncio.run(main(args))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
