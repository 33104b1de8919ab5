"""Process lifecycle shared by every service: a stop event set by SIGTERM/SIGINT, and
the bus runtime (embedded server if needed, connection, streams) torn down in order."""

from __future__ import annotations

import asyncio
import signal
from contextlib import AsyncExitStack
from typing import Awaitable, Callable

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from services.bus.connect import connect
from services.bus.embedded import EmbeddedNats
from services.bus.streams import EnsureReport, ensure_streams
from services.config import Config
from services.logs import get_logger

log = get_logger("lifecycle")


def stop_on_signals(stop: asyncio.Event) -> None:
    """Set ``stop`` on SIGTERM or SIGINT (the running loop's handlers)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def run_until_signal(main: Callable[[asyncio.Event], Awaitable[int | None]]) -> int:
    """Run ``main(stop)`` in a fresh event loop; SIGTERM/SIGINT set ``stop``. Returns its status."""

    async def runner() -> int:
        stop = asyncio.Event()
        stop_on_signals(stop)
        return int(await main(stop) or 0)

    return asyncio.run(runner())


class Bus:
    """The bus a service runs on: connects to ``nats.url`` or starts the embedded
    server, then ensures streams and buckets. Closing drains the connection and stops
    the embedded server, in that order.

        async with Bus(config, name="executor") as bus:
            await bus.js.publish(...)
    """

    def __init__(self, config: Config, *, name: str = "exbus", ensure: bool = True,
                 embedded: EmbeddedNats | None = None) -> None:
        self.config = config
        self.name = name
        self.ensure = ensure
        self._embedded = embedded
        """The server to start when ``nats.url`` is empty (default: from ``config.embedded``)."""
        self.server: EmbeddedNats | None = None
        self.nc: NATS
        self.js: JetStreamContext
        self.url = ""
        self.report: EnsureReport | None = None
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> "Bus":
        try:
            url = self.config.nats.url
            if not url:
                emb = self.config.embedded
                self.server = self._embedded or EmbeddedNats(emb.data_dir, port=emb.port,
                                                             config_file=emb.config_file or None)
                await self._stack.enter_async_context(self.server)
                url = self.server.url
                log.info("embedded nats-server started", url=url, data_dir=emb.data_dir, pid=self.server.pid)
            self.url = url
            self.nc = await connect(self.config.nats, url=url, name=self.name)
            self._stack.push_async_callback(self._drain)
            self.js = self.nc.jetstream()
            if self.ensure:
                self.report = await ensure_streams(self.js, self.config.streams)
            return self
        except BaseException:
            await self._stack.aclose()
            raise

    async def _drain(self) -> None:
        if not self.nc.is_closed:
            try:
                await asyncio.wait_for(self.nc.drain(), timeout=10)
            except Exception as e:  # drain failed; close hard
                log.warning("drain failed, closing", error=str(e))
                await self.nc.close()

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()
