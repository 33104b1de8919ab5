"""`exbus up`: every service in one process on the embedded default (or on NATS_URL)."""

from __future__ import annotations

import asyncio

from services.bus.lifecycle import Bus
from services.config import Config
from services.logs import get_logger

log = get_logger("up")


async def run_up(config: Config, stop: asyncio.Event, *, sim: bool = False, executors: int = 1) -> int:
    """Start the bus, then the services, and run until ``stop``; shut down in reverse order."""
    async with Bus(config, name="exbus-up") as bus:
        log.info("exbus up", nats=bus.url, embedded=bus.server is not None, sim=sim, executors=executors)
        print(f"NATS_URL={bus.url}", flush=True)
        await stop.wait()
    return 0
