"""`exbus up`: every service in one process, on the embedded default (or on NATS_URL).

With ``--sim`` the venue simulator runs too, and the venues it speaks (Binance, Upbit)
are pointed at it: the ingestor reads its WebSocket streams, REST goes to its servers.
"""

from __future__ import annotations

import asyncio
import sys
from contextlib import AsyncExitStack
from typing import Any, Awaitable, TextIO

from services.bus.lifecycle import Bus
from services.config import Config
from services.ingestor.service import run_ingestor
from services.ingestor.settings import FeedSettings
from services.logs import get_logger
from services.venues.wsbase import ws_adapter

log = get_logger("up")

SIM_MARKETS: dict[str, list[str]] = {
    "binance": ["NKN-USDT", "BLZ-ETH", "LRC-BTC", "RUNE-EUR"],
    "upbit": ["WAVES-KRW", "LAMB-KRW", "ARK-BTC", "XTZ-BTC"],
}
"""Markets the simulator replays from ../shared/data/recorded."""


def point_at_simulator(config: Config, sim: Any) -> None:
    """Route the simulated venues' market data to the simulator (unless configured)."""
    urls = {"binance": (sim.binance_ws_url, sim.binance_url), "upbit": (sim.upbit_ws_url, sim.upbit_url)}
    for venue, (ws_url, rest_url) in urls.items():
        try:
            ws_adapter(venue)
        except ValueError as e:
            log.warning("simulated venue without market data", venue=venue, reason=str(e))
            continue
        feed = config.ingestor.venues.get(venue)
        if feed is None:
            feed = config.ingestor.venues[venue] = FeedSettings(symbols=SIM_MARKETS[venue])
        feed.url, feed.rest_url = ws_url, rest_url


async def run_up(config: Config, stop: asyncio.Event, *, sim: bool = False, executors: int = 1,
                 out: TextIO = sys.stdout) -> int:
    """Start the bus, the simulator (``sim``), then the services; run until ``stop``;
    shut down in reverse order. Returns an exit status."""
    async with AsyncExitStack() as stack:
        bus = await stack.enter_async_context(Bus(config, name="exbus-up"))
        print(f"NATS_URL={bus.url}", file=out, flush=True)
        if sim:
            from services.simulator import Simulator

            simulator = await stack.enter_async_context(Simulator())
            point_at_simulator(config, simulator)
            print(f"simulator: binance {simulator.binance_url} upbit {simulator.upbit_url}", file=out, flush=True)
        services: dict[str, Awaitable[Any]] = {
            "ingestor": run_ingestor(bus.nc, config, stop),
        }
        tasks = {asyncio.create_task(coro, name=name): name for name, coro in services.items()}
        log.info("exbus up", nats=bus.url, embedded=bus.server is not None, sim=sim, services=sorted(services))
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in done if t is not stopper and t.exception() is not None]
        for t in failed:
            log.error("service failed", service=tasks[t], error=repr(t.exception()))
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        stopper.cancel()
    return 1 if failed else 0
