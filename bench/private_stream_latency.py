"""Per venue: time from the simulator's push of a fill on the venue's private stream to
the ``OrderEvent`` a subscriber sees on ``orders.events.<venue>.>``.

Real processes: nats-server (embedded, a fresh one per venue), the simulator (`exbus sim`,
limits lifted), one executor replica (`exbus execute`; its tracker leads and runs the
private streams). Per venue and round: a limit buy of the demo account one price step
above the best bid (the smallest gap between the book's levels), alone at the top of the
book; given a second for the stream to follow it, the taker account sells the order's
quantity at market, which fills it in one fill and leaves the recorded book as it was (so
any number of rounds fit in the book and the taker's balance). Where the spread is one step,
the taker first sells the best bid level once to open a gap. The simulator logs
when it pushed the fill (``GET /__sim/pushes``, wall clock); the subscriber notes when the
``filled`` event arrived (same machine, same clock). Latency = arrival - push.

    .venv/bin/python bench/private_stream_latency.py [--rounds 30] [--out bench/results/private_streams.json]
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
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

import schemas  # noqa: E402
from schemas import PlaceOrder  # noqa: E402
from schemas.queries import OrderBookQuery  # noqa: E402
from services.demo import DEMO_MARKETS  # noqa: E402
from services.executor.credentials import paper_keys  # noqa: E402
from services.venues import rest_adapter  # noqa: E402
from services.venues.errors import VenueError  # noqa: E402
from services.venues.http import HttpTransport  # noqa: E402
from services.venues.privatews import PRIVATE_STREAMS  # noqa: E402
from bench.executor_throughput import Bench, ms, on_fresh_bus, start_fleet, stop_fleet  # noqa: E402
from tests.executor.processes import LIFTED_MARGIN, LIFTED_SIM_LIMITS, SimProcess  # noqa: E402

GOAL_MS = 5.0
"""Issue goal: p50 push -> OrderEvent under 5 ms on every venue with a stream."""
FOLLOW_S = 1.0
"""Wait after ``accepted`` for the stream to follow the order (the tracker's reconcile)."""


class Venue:
    """The venue's REST side as the taker and the book reader see it."""

    def __init__(self, venue: str, url: str, http: HttpTransport) -> None:
        self.venue, self.http, self.rest = venue, http, rest_adapter(venue, url)
        self.taker = paper_keys()[(venue, "taker")]
        self.nonce = time.time_ns() // 1000
        self.n = 0

    async def call(self, op: str, args: Any, creds: Any = None) -> Any:
        self.nonce += 1
        request = self.rest.build_request(op, args, creds, time.time_ns() // 1_000_000,
                                          self.nonce if self.rest.shared_nonce and creds else None)
        response = await self.http.send(request, idempotent=op != "place_order")
        result = self.rest.parse_response(op, response.status, response.headers, response.body, args)
        if isinstance(result, VenueError):
            raise result
        return result

    async def book(self, symbol: str) -> Any:
        return await self.call("orderbook", OrderBookQuery(symbol=symbol, depth=20))

    async def top_price(self, symbol: str) -> Decimal:
        """A buy price alone at the top of the book, below the best ask: one step (the
        smallest gap between adjacent levels, a multiple of the tick) above the best bid;
        where the spread is one step, the best bid level is sold first to open the gap."""
        book = await self.book(symbol)
        step = min(abs(a.price - b.price) for side in (book.bids, book.asks) for a, b in zip(side, side[1:]))
        if book.bids[0].price + step >= book.asks[0].price:
            await self.sell(symbol, book.bids[0].size)
            book = await self.book(symbol)
        price = book.bids[0].price + step
        assert price < book.asks[0].price, (price, book.asks[0].price)
        return price

    async def sell(self, symbol: str, quantity: Decimal) -> None:
        self.n += 1
        order = PlaceOrder(command_id=f"take{self.n}", venue=self.venue, account="taker", symbol=symbol,  # type: ignore[arg-type]
                           client_order_id=f"benchtaker{self.n}x{time.time_ns() % 10**9}", side="sell",
                           order_type="market", quantity=quantity)
        await self.call("place_order", order, self.taker)


async def pushes(url: str) -> dict[str, int]:
    """Venue client order id -> when the simulator last pushed a fill of it (ns)."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/__sim/pushes") as response:
        body = await response.json()
    return {p["client_order_id"]: p["ts_ns"] for p in body["pushes"]}


async def venue_run(venue: str, rounds: int, *, bench: Bench, workdir: Path, nats_url: str, sim: SimProcess) -> dict:
    url = sim.venue_urls[venue]
    symbol, quantity = DEMO_MARKETS[venue]
    arrived: dict[str, int] = {}

    async def on_event(msg: Any) -> None:
        event = schemas.decode(msg.data, schemas.OrderEvent)
        if event.status == "filled":
            arrived.setdefault(event.client_order_id, time.time_ns())

    sub = await bench.nc.subscribe(f"orders.events.{venue}.>", cb=on_event)
    fleet = await start_fleet(1, workdir, nats_url, sim, bench, rate_limit_margin=LIFTED_MARGIN, tracker_interval_s=1.0)
    ids: list[str] = []
    try:
        async with HttpTransport() as http:
            market = Venue(venue, url, http)
            for i in range(rounds + 3):  # the first three warm up connections, leases, the stream
                price = await market.top_price(symbol)
                cid = f"push{venue}{i}"
                await bench.submit(PlaceOrder(command_id=cid, venue=venue, account="demo", symbol=symbol,  # type: ignore[arg-type]
                                              client_order_id=cid, side="buy", order_type="limit",
                                              quantity=quantity, price=price))
                await bench.until_done([cid], timeout_s=60)
                await asyncio.sleep(FOLLOW_S)
                await market.sell(symbol, quantity)
                deadline = time.monotonic() + 10
                while cid not in arrived and time.monotonic() < deadline:
                    await asyncio.sleep(0.005)
                if i >= 3:
                    ids.append(cid)
    finally:
        await stop_fleet(fleet)
        await sub.unsubscribe()
    pushed = await pushes(url)
    adapter = rest_adapter(venue)
    lat = [arrived[c] - pushed[adapter.venue_client_order_id(c)] for c in ids
           if c in arrived and adapter.venue_client_order_id(c) in pushed]
    return {"symbol": symbol, "rounds": rounds, "measured": len(lat), "missing": len(ids) - len(lat),
            "push_to_event_ms": {p: ms(lat, q) if lat else None for p, q in (("p50", 50), ("p99", 99), ("max", 100))},
            "over_50_ms": sum(1 for x in lat if x > 50_000_000)}


async def main(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="exbus-bench-streams-"))
    load = [round(x, 2) for x in os.getloadavg()]
    venues = {}
    async with SimProcess(workdir / "sim", "[sim]\nreplay = false\n" + LIFTED_SIM_LIMITS) as sim:
        for venue in args.venues.split(","):
            venues[venue] = await on_fresh_bus(workdir, lambda bench, url, v=venue: venue_run(
                v, args.rounds, bench=bench, workdir=workdir, nats_url=url, sim=sim))
            print(f"  {venue}: push -> event p50 {venues[venue]['push_to_event_ms']['p50']} ms", file=sys.stderr)
    return {"benchmark": "private_stream_latency", "python": platform.python_version(), "cpus": os.cpu_count(),
            "load_average_at_start": load, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "method": "simulator push of a fill (wall clock) -> filled OrderEvent at a NATS subscriber; one "
                      "executor process, one order filled by one taker sell per round",
            "goal_p50_ms": GOAL_MS, "venues": venues}


def table(result: dict) -> str:
    rows = ["venue      push->event p50 / p99 / max ms   measured  over 50 ms"]
    for venue, r in result["venues"].items():
        t = r["push_to_event_ms"]
        rows.append(f"{venue:<10} {t['p50']:>7} / {t['p99']:>7} / {t['max']:>7}   {r['measured']:>8}  {r['over_50_ms']:>10}")
    return "\n".join(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--venues", default=",".join(PRIVATE_STREAMS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "private_streams.json")
    result = asyncio.run(main(parser.parse_args()))
    args = parser.parse_args()
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
