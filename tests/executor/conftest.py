"""Executor fixtures: a real nats-server with the streams, the venue simulator, and a
running executor fleet pointed at it."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import nats
import pytest

import schemas
from schemas import subjects
from services.bus.streams import ORDER_EVENTS, ensure_streams
from services.config import StreamSettings
from services.executor.credentials import simulator_credentials
from services.executor.service import run_executor
from services.executor.settings import ExecutorSettings


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Any]:
    nc = await nats.connect(nats_url)
    await ensure_streams(nc.jetstream(), StreamSettings())
    yield nc
    await nc.close()


@asynccontextmanager
async def fleet(nats_url: str, sim: Any, *, replicas: int = 1, credentials: Any = None,
                **settings: Any) -> AsyncIterator[asyncio.Event]:
    """Executor replicas (one connection each) against the simulator until the block ends."""
    stop = asyncio.Event()
    cfg = ExecutorSettings(venue_urls=dict(sim.base_urls), tracker_interval_s=0.3, **settings)
    ready = asyncio.Event()
    task = asyncio.create_task(run_executor(lambda: nats.connect(nats_url), cfg, credentials or simulator_credentials("demo"), stop,
                                            replicas=replicas, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def publish(js: Any, command: Any) -> Any:
    return await js.publish(subjects.orders_submit(command.venue, command.account), schemas.encode(command),
                            headers={"Nats-Msg-Id": command.command_id})


class EventLog:
    """Every event of ORDER_EVENTS, from the stream's start, as they arrive (an ordered
    JetStream consumer); ``wait`` returns once a condition over them holds."""

    def __init__(self) -> None:
        self.events: list[schemas.OrderEvent] = []
        self._changed = asyncio.Event()
        self._sub: Any = None

    async def start(self, js: Any) -> "EventLog":
        async def on_event(msg: Any) -> None:
            self.events.append(schemas.decode(msg.data, schemas.OrderEvent))
            self._changed.set()

        self._sub = await js.subscribe("orders.events.>", stream=ORDER_EVENTS, ordered_consumer=True, cb=on_event)
        return self

    async def wait(self, predicate: Any, timeout: float = 30.0) -> list[schemas.OrderEvent]:
        async def until() -> None:
            while not predicate(self.events):
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(until(), timeout)
        except asyncio.TimeoutError:
            last = "; ".join(f"{e.client_order_id} {e.status} {e.filled_quantity}" for e in self.events[-10:])
            raise AssertionError(f"condition not reached; {len(self.events)} events so far, the last: {last}") from None
        return list(self.events)

    async def stop(self) -> None:
        await self._sub.unsubscribe()


@pytest.fixture
async def event_log(bus: Any) -> AsyncIterator[EventLog]:
    log = await EventLog().start(bus.jetstream())
    yield log
    await log.stop()
