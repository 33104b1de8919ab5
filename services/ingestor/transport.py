"""The one WebSocket transport of every venue (websockets): open, subscribe, read,
keep alive, watch for silence, reconnect with exponential backoff and jitter.

It knows nothing about venues: it asks the :class:`~services.ingestor.feed.Feed` what
to open and send, hands it every frame with its receive time, and passes the
resulting actions to the ingestor's ``handle``.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Callable, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from services.ingestor.feed import Actions, Feed
from services.logs import get_logger

log = get_logger("ingestor.transport")

PONG_TIMEOUT_S = 10.0
MAX_FRAME_BYTES = 16 * 1024 * 1024
STABLE_AFTER_S = 30.0
"""A connection that lived this long resets the backoff."""


class Tap(Protocol):
    """Sees raw traffic (``exbus record``)."""

    def connect(self, url: str) -> None: ...
    def sent(self, url: str, data: str | bytes) -> None: ...
    def received(self, data: str | bytes, ts_recv_ns: int) -> None: ...


class Backoff:
    """Exponential backoff with jitter: the n-th delay is uniform in
    [d/2, d] with d = min(maximum, initial * 2**n), so reconnecting clients spread out."""

    def __init__(self, initial_s: float = 0.5, maximum_s: float = 30.0, rng: Callable[[], float] = random.random) -> None:
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self.rng = rng
        self.attempt = 0

    def next(self) -> float:
        d = min(self.maximum_s, self.initial_s * (2 ** min(self.attempt, 62)))  # a venue may flap for days
        self.attempt += 1
        return d / 2 + self.rng() * d / 2

    def reset(self) -> None:
        self.attempt = 0


Handle = Callable[[Actions, int], None]
"""``handle(actions, t_recv_perf_ns)``: carry out a feed's actions (t = perf_counter_ns at
frame receipt, for latency; 0 for actions not caused by a frame). Synchronous: it only
queues (messages to publish, to send, fetches to start), so a frame is handled without
a coroutine hop; it raises when the bus client failed."""


class WsConnection:
    """Runs one planned connection of a feed until ``stop``; reconnects unless told not to."""

    def __init__(
        self,
        feed: Feed,
        index: int,
        handle: Handle,
        stop: asyncio.Event,
        *,
        reconnect: bool = True,
        backoff: Backoff | None = None,
        tap: Tap | None = None,
        stale_after_s: float | None = None,
    ) -> None:
        self.feed = feed
        self.index = index
        self.handle = handle
        self.stop = stop
        self.reconnect_enabled = reconnect
        self.backoff = backoff or Backoff()
        self.tap = tap
        adapter = feed.connections[index].adapter
        self.keepalive = adapter.keepalive
        self.send_interval_s = adapter.subscribe_interval_s
        self.stale_after_s = stale_after_s or adapter.stale_after_s
        self._last_frame = time.monotonic()
        self.outbox: asyncio.Queue[str | bytes] = asyncio.Queue()
        self.reopen = asyncio.Event()
        self.connects = 0

    def send(self, data: str | bytes) -> None:
        """Queue a message for the venue (sent in order, paced by the venue's limit)."""
        self.outbox.put_nowait(data)

    async def run(self) -> None:
        while not self.stop.is_set():
            reason = await self._session()
            final = not self.reconnect_enabled or self.stop.is_set()
            self.handle(self.feed.on_disconnected(self.index, reason, final=final), 0)
            if not self.reconnect_enabled or self.stop.is_set():
                return
            delay = self.backoff.next()
            log.info("reconnecting", venue=self.feed.venue, connection=self.index, reason=reason, delay_s=round(delay, 2))
            try:
                await asyncio.wait_for(self.stop.wait(), delay)
            except TimeoutError:
                pass

    async def _session(self) -> str:
        """One connection from open to close; returns why it ended."""
        url, opening = self.feed.opening(self.index)
        self.outbox = asyncio.Queue()
        for message in opening:
            self.outbox.put_nowait(message)
        self.reopen.clear()
        try:
            ws = await connect(url, max_size=MAX_FRAME_BYTES, ping_interval=20.0, ping_timeout=20.0,
                               open_timeout=10.0, close_timeout=2.0)
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as e:
            return f"connect failed: {e}"
        opened = time.monotonic()
        self.connects += 1
        if self.tap:
            self.tap.connect(url)
        self.handle(self.feed.on_connected(self.index), 0)
        self._last_frame = time.monotonic()
        tasks = [asyncio.create_task(self._read(ws)), asyncio.create_task(self._write(ws, url)),
                 asyncio.create_task(self._watchdog(ws)),
                 asyncio.create_task(self.stop.wait()), asyncio.create_task(self.reopen.wait())]
        if self.keepalive.message is not None:
            tasks.append(asyncio.create_task(self._keepalive(ws)))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            reason = "stopped" if self.stop.is_set() else "reconnect requested" if self.reopen.is_set() else ""
            for t in done:
                if not reason and t.exception() is not None:
                    reason = _describe(t.exception())
            return reason or "closed"
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await ws.close()
            if time.monotonic() - opened >= STABLE_AFTER_S:
                self.backoff.reset()

    async def _read(self, ws: ClientConnection) -> None:
        feed, index, handle, tap, recv = self.feed, self.index, self.handle, self.tap, ws.recv
        perf_ns, monotonic, time_ns = time.perf_counter_ns, time.monotonic, time.time_ns
        while True:
            data = await recv()
            t_perf = perf_ns()
            self._last_frame = monotonic()
            ts_recv = time_ns()
            if tap:
                tap.received(data, ts_recv)
            handle(feed.on_frame(index, data, ts_recv), t_perf)

    async def _watchdog(self, ws: ClientConnection) -> None:
        """No frame for ``stale_after_s``: report the feed stale, then ping; a link that does
        not answer ends the session (raises). A timer beside the reader, not a timeout
        around every receive, which costs more than the frame's parse on a busy feed."""
        quiet_s = self.stale_after_s
        while True:
            await asyncio.sleep(max(0.0, self._last_frame + quiet_s - time.monotonic()))
            if time.monotonic() - self._last_frame < quiet_s:
                continue  # a frame came meanwhile
            self.handle(self.feed.on_stale(self.index, quiet_s), 0)
            pong = await ws.ping()  # quiet market or dead link? a dead link does not answer
            await asyncio.wait_for(pong, PONG_TIMEOUT_S)
            self._last_frame = time.monotonic()  # alive but quiet: next report after another interval

    async def _write(self, ws: ClientConnection, url: str) -> None:
        while True:
            data = await self.outbox.get()
            await ws.send(data)
            if self.tap:
                self.tap.sent(url, data)
            if self.send_interval_s:
                await asyncio.sleep(self.send_interval_s)

    async def _keepalive(self, ws: ClientConnection) -> None:
        """The venue's application-level ping (OKX "ping", Kraken {"event":"ping"})."""
        while True:
            await asyncio.sleep(self.keepalive.interval_s)
            await ws.send(self.keepalive.message)  # type: ignore[arg-type]


def _describe(e: BaseException) -> str:
    if isinstance(e, ConnectionClosed):
        rcvd = e.rcvd
        return f"closed by venue ({rcvd.code} {rcvd.reason})".rstrip() if rcvd else "connection lost"
    if isinstance(e, TimeoutError):
        return "no pong: connection dead"
    return f"{type(e).__name__}: {e}"


__all__ = ["Backoff", "Handle", "Tap", "WsConnection"]
