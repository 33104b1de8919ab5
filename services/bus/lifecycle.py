"""Process lifecycle shared by every service: a stop event set by SIGTERM/SIGINT, and
the bus runtime (embedded server if needed, connection, streams) torn down in order."""

from __future__ import annotations

import asyncio
import signal
from contextlib import AsyncExitStack
from typing import Awaitable, Callable

from nats.aio.client import Client as NATS
from nats.errors import ConnectionClosedError
from nats.js import JetStreamContext

from services.bus.connect import abort_connecting_on, close_clients, connect
from services.bus.embedded import EmbeddedNats
from services.bus.streams import EnsureReport, ensure_streams
from services.config import Config
from services.logs import get_logger

log = get_logger("lifecycle")


STOP_GRACE_S = 4.0
"""How long ``main`` may take to wind down after the first stop signal before it is
cancelled: every service and command ends within 5 s of SIGTERM, whatever it was doing."""


def stop_on_signals(stop: asyncio.Event, on_signal: Callable[[], None] | None = None) -> None:
    """Set ``stop`` on SIGTERM or SIGINT (the running loop's handlers), then call ``on_signal``."""
    loop = asyncio.get_running_loop()

    def handle() -> None:
        stop.set()
        if on_signal is not None:
            on_signal()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, handle)


def run_until_signal(main: Callable[[asyncio.Event], Awaitable[int | None]]) -> int:
    """Run ``main(stop)`` in a fresh event loop; SIGTERM/SIGINT set ``stop``. Returns its status.

    A connection attempt to NATS still under way when the signal comes is abandoned
    (services.bus.connect.abort_connecting_on), and connections whose server is away are
    closed, so shutdown steps on the bus fail at once rather than time out. A ``main``
    still running STOP_GRACE_S after the first signal, or at a second one, has its
    connections closed and is cancelled (exit status 1).
    """

    async def runner() -> int:
        stop = asyncio.Event()
        abort_connecting_on(stop)
        job = asyncio.ensure_future(main(stop))
        loop = asyncio.get_running_loop()
        forced: list[str] = []
        signals = 0

        closing: set[asyncio.Task[int]] = set()

        def close(only_away: bool) -> None:
            task = loop.create_task(close_clients(only_away=only_away))
            closing.add(task)
            task.add_done_callback(closing.discard)

        def cancel_until_done() -> None:
            if not job.done():  # again: a cancellation can be swallowed (see connect._abandon)
                job.cancel()
                loop.call_later(0.2, cancel_until_done)

        def force(why: str) -> None:
            if not job.done() and not forced:
                forced.append(why)
                close(only_away=False)
                cancel_until_done()

        def on_signal() -> None:
            nonlocal signals
            signals += 1
            if signals == 1:
                close(only_away=True)
                loop.call_later(STOP_GRACE_S, force, f"still running {STOP_GRACE_S:g} s after the stop signal")
            else:
                force("a second stop signal")

        stop_on_signals(stop, on_signal)
        try:
            return int(await job or 0)
        except ConnectionClosedError:
            if not stop.is_set():
                raise
            log.info("stopped with the bus away", detail="its connection was closed on stop")
            return 0
        except asyncio.CancelledError:  # StoppedWhileConnecting ends ``job`` as cancelled
            if forced:
                log.warning("cancelled on stop", reason=forced[0])
                return 1
            if not stop.is_set():
                raise
            log.info("stopped while starting", detail="a connection to the bus was still being made")
            return 0

    return asyncio.run(runner())


class Bus:
    """The bus a service runs on: connects to ``nats.url`` or starts the embedded
    server, then ensures streams and buckets. Closing drains the connection and stops
    the embedded server, in that order.

        async with Bus(config, name="executor") as bus:
            await bus.js.publish(...)
    """

    def __init__(self, config: Config, *, name: str = "exbus", ensure: bool = True,
                 embedded: EmbeddedNats | None = None, one_shot: bool = False) -> None:
        self.config = config
        self.name = name
        self.ensure = ensure
        self.one_shot = one_shot
        """A one-shot command: give up when ``nats.url`` does not answer (see connect())."""
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
            self.nc = await connect(self.config.nats, url=url, name=self.name, one_shot=self.one_shot)
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
