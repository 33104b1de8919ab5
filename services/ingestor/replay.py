"""Serving a recording to the live code path: a loopback WebSocket server plays the
recorded frames to the ingestor's connection (as fast as possible or at a multiple
of the recorded pace), and a loopback HTTP server answers its REST requests with the
recorded responses. The ingestor runs unchanged, pointed at these two URLs.
"""

from __future__ import annotations

import asyncio
import heapq
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import parse_qsl, urlsplit

import msgspec
from aiohttp import web
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from services.ingestor.recording import Connect, HttpResponse, Received, Sent, read_records, to_ns
from services.logs import get_logger

log = get_logger("ingestor.replay")

DEPTH_PARAMS = frozenset({"limit", "sz", "count", "len", "depth", "size"})
"""Query parameters that only size a book request: ignored when matching a recorded response."""
SUBSCRIBE_WAIT_S = 5.0


class Recording(msgspec.Struct):
    """What a set of recording files holds for one venue."""

    venue: str
    url: str
    sent: list[str]
    frames: list[tuple[int, str | bytes]]
    """(recorded receive time ns, frame), merged across files by time."""
    http: list[HttpResponse]


def venue_of(path: str | Path) -> str:
    """``.../BINANCE.ws.1.0`` -> ``binance``."""
    return Path(path).name.split(".")[0].lower()


def load_recording(paths: Sequence[str | Path], http_paths: Sequence[str | Path] = (), venue: str | None = None) -> Recording:
    """Read recording files; REST responses come from ``http_paths``, from lines inside the
    files themselves, and from ``<VENUE>.http.*`` files beside the first one."""
    venue = venue or venue_of(paths[0])
    first = Path(paths[0])
    http_files = [*map(Path, http_paths), *sorted(first.parent.glob(f"{first.name.split('.')[0]}.http.*"))]
    url, sent, per_file, http = "", [], [], []
    for path in paths:
        frames = []
        for r in read_records(path):
            if isinstance(r, Received):
                frames.append((to_ns(r.ts), r.data))
            elif isinstance(r, Sent):
                sent.append(r.data)
            elif isinstance(r, Connect):
                url = url or r.url
            elif isinstance(r, HttpResponse):
                http.append(r)
        per_file.append(frames)
    for path in dict.fromkeys(http_files):
        http += [r for r in read_records(path) if isinstance(r, HttpResponse)]
    merged = list(heapq.merge(*per_file, key=lambda f: f[0]))
    return Recording(venue=venue, url=url, sent=sent, frames=merged, http=http)


def _request_key(url: str) -> tuple[str, tuple]:
    u = urlsplit(url)
    params = tuple(sorted((k, v) for k, v in parse_qsl(u.query) if k not in DEPTH_PARAMS))
    return u.path, params


class ReplayServer:
    """Loopback WebSocket + HTTP servers serving one recording.

    The first WebSocket connection gets every frame, after its first message (the
    subscription) or ``SUBSCRIBE_WAIT_S``; then the server closes it normally. Later
    connections get nothing. ``speed`` None: as fast as the socket takes them; X: X
    times the recorded pace. ``rate``: instead, evenly paced at this many frames per
    second (a known load, to measure latency without queueing). ``done`` is set once
    every frame was sent.
    """

    def __init__(self, recording: Recording, *, speed: float | None = None, rate: float | None = None,
                 repeat: bool = False) -> None:
        self.recording = recording
        self.speed = speed
        self.rate = rate
        self.repeat = repeat
        """Serve the recording to every connection, not only the first (the demo's loop:
        the client reconnects when a pass ends and gets the recording again)."""
        self.frames_sent = 0
        self.done = asyncio.Event()
        self.ws_url = ""
        self.http_url = ""
        self._served = False
        self._ws: Server | None = None
        self._runner: web.AppRunner | None = None
        self._responses: dict[tuple[str, tuple], list[HttpResponse]] = {}
        for r in recording.http:
            self._responses.setdefault(_request_key(r.url), []).append(r)
        self.http_requests = 0

    async def __aenter__(self) -> "ReplayServer":
        self._ws = await serve(self._serve_ws, "127.0.0.1", 0, max_size=None, compression=None)
        port = self._ws.sockets[0].getsockname()[1]
        self.ws_url = f"ws://127.0.0.1:{port}/"
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._serve_http)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.http_url = f"http://127.0.0.1:{http_port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            self._ws.close()
            await self._ws.wait_closed()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve_ws(self, ws: ServerConnection) -> None:
        if self._served and not self.repeat:
            await ws.wait_closed()
            return
        self._served = True
        try:
            try:
                await asyncio.wait_for(ws.recv(), SUBSCRIBE_WAIT_S)
            except TimeoutError:
                pass
            drain = asyncio.create_task(self._discard_incoming(ws))
            await self._play(ws)
            await ws.close(1000, "end of recording")
            await drain  # ends with the connection (cancelling it would stall the close)
        except ConnectionClosed:
            log.warning("replay client went away", sent=self.frames_sent)
        finally:
            self.done.set()

    async def _play(self, ws: ServerConnection) -> None:
        frames = self.recording.frames
        if not frames:
            return
        loop = asyncio.get_running_loop()
        start, t0 = loop.time(), frames[0][0]
        for i, (ts, data) in enumerate(frames):
            if self.rate:
                delay = i / self.rate - (loop.time() - start)
            elif self.speed:
                delay = (ts - t0) / 1e9 / self.speed - (loop.time() - start)
            else:
                delay = 0.0
            if delay > 0:
                await asyncio.sleep(delay)
            await ws.send(data)
            self.frames_sent += 1

    @staticmethod
    async def _discard_incoming(ws: ServerConnection) -> None:
        try:
            async for _ in ws:  # resubscriptions: the recording cannot answer them
                pass
        except ConnectionClosed:
            pass

    async def _serve_http(self, request: web.Request) -> web.Response:
        self.http_requests += 1
        key = _request_key(str(request.rel_url))
        queue = self._responses.get(key)
        if not queue:
            return web.Response(status=404, text=f"not in the recording: {request.rel_url}")
        response = queue.pop(0) if len(queue) > 1 else queue[0]
        return web.Response(body=response.body.encode(), content_type="application/json")


def replay_spec(
    recording: Recording, ws_url: str, http_url: str,
    symbols: Sequence[str] | None = None, channels: Sequence[str] | None = None,
) -> Any:
    """The ingestor's FeedSpec for ``recording`` served at ``ws_url`` / ``http_url``: the
    recorded symbols and channels unless named, on one connection as recorded."""
    from services.ingestor.service import FeedSpec
    from services.venues.wsbase import ws_adapter

    adapter = ws_adapter(recording.venue)()
    recorded = adapter.recorded_subscriptions(recording.url, recording.sent)
    symbols = list(symbols or sorted({s.symbol for s in recorded}))
    channels = list(channels or sorted({s.channel for s in recorded}))
    if not symbols or not channels:
        raise ValueError(f"{recording.venue}: name --symbols and --channels (the recording does not say)")
    return FeedSpec(
        venue=recording.venue, symbols=symbols, channels=channels, url=ws_url, rest_url=http_url,
        max_streams_per_connection=10**6,  # one connection, as the recording has
        prepare=lambda a: a.recorded_subscriptions(recording.url, recording.sent), replayed=True,
    )


async def run_replay(
    nc: object,
    recording: Recording,
    *,
    speed: float | None = None,
    symbols: Sequence[str] | None = None,
    channels: Sequence[str] | None = None,
    stop: asyncio.Event | None = None,
    measure_latency: bool = False,
    snapshots: Any = None,
) -> tuple[dict, Any]:
    """Replay ``recording`` through the live ingestor path, publishing on ``nc`` (None:
    count only). ``snapshots`` replaces the REST snapshot source (default: the venue's
    REST adapter against the replay's HTTP server). Returns the summary line and the
    ingestor (stats, latencies)."""
    from services.ingestor.service import Ingestor

    spec = replay_spec(recording, "", "", symbols, channels)  # checks the symbols and channels before serving
    stop = stop or asyncio.Event()
    async with ReplayServer(recording, speed=speed) as server:
        spec.url, spec.rest_url = server.ws_url, server.http_url
        ingestor = Ingestor(nc, [spec], stop, reconnect=False, snapshot_attempts=3, measure_latency=measure_latency,
                            snapshots=snapshots)
        stats = (await ingestor.run())[recording.venue]
    published = ingestor.published(recording.venue)
    summary = {
        "venue": recording.venue, "frames": stats.frames,
        "published": {c: published[c] for c in ("trade", "ticker", "book", "bbo")},
        "gaps": stats.gaps, "resyncs": stats.resyncs, "checksum_failures": stats.checksum_failures,
    }
    return summary, ingestor


__all__ = ["Recording", "ReplayServer", "load_recording", "replay_spec", "run_replay", "venue_of"]
