"""`exbus ingest` processes sharing feeds, against looping replay servers (the takeover
test and bench/ingest_takeover.py).

Each replay server serves a real recording to every connection, paced, from its start
(its snapshot first), so a process that takes a feed over starts from a fresh book.
A `Market` subscriber keeps every ``md.<venue>.>`` message with its arrival time.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import msgspec
import nats

from schemas import decode
from schemas.market import BookDelta, BookSnapshot, FeedStatus, MarketData
from services.bus.streams import KV_FEEDS, ensure_streams
from services.config import StreamSettings
from services.ingestor.ownership import rendezvous_owner
from services.ingestor.replay import ReplayServer, load_recording, replay_spec
from services.venues.wsbase import ws_adapter
from tests.executor.processes import ExbusProcess

RECORDINGS = {"kraken": "KRAKEN.ws.50.0", "bitfinex": "BITFINEX.ws.11.0"}
"""Venues whose books come as WebSocket snapshots (a new connection starts a fresh book)."""


class Replays:
    """Looping, paced replay servers for ``RECORDINGS``; ``config(...)`` names them."""

    def __init__(self, data: Path, rate: float = 300.0) -> None:
        self.data = data
        self.rate = rate
        self.servers: dict[str, tuple[ReplayServer, Any]] = {}
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> "Replays":
        for venue, name in RECORDINGS.items():
            recording = load_recording([self.data / "recorded" / name])
            server = await self._stack.enter_async_context(ReplayServer(recording, rate=self.rate, repeat=True))
            spec = replay_spec(recording, server.ws_url, server.http_url)
            adapter = ws_adapter(venue)()
            spec.prepare(adapter)  # type: ignore[misc]  # the recorded book depth
            self.servers[venue] = (server, (spec, adapter.book_depth))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    def config(self, lease_s: float = 1.0, standby: bool = False) -> str:
        """An exbus.toml ``[ingestor]`` section for the replayed venues."""
        lines = ["[ingestor]", f"lease_s = {lease_s}", f"standby = {str(standby).lower()}",
                 "reconnect_initial_s = 0.05", "reconnect_max_s = 0.2", ""]
        for venue, (_, (spec, depth)) in self.servers.items():
            lines += [f"[ingestor.venues.{venue}]", f"symbols = {msgspec.json.encode(spec.symbols).decode()}",
                      f"channels = {msgspec.json.encode(spec.channels).decode()}", f'url = "{spec.url}"',
                      f'rest_url = "{spec.rest_url}"', "max_streams_per_connection = 1000000",
                      f"book_depth = {depth}", ""]
        return "\n".join(lines)


class IngestProcess(ExbusProcess):
    """One `exbus --config FILE ingest` process, named as its member id."""

    def __init__(self, name: str, workdir: Path, config: Path, nats_url: str) -> None:
        super().__init__(name, workdir, {"NATS_URL": nats_url, "EXBUS_INGESTOR_MEMBER_ID": name,
                                         "EXBUS_LOG_LEVEL": "info", "EXBUS_OBSERVABILITY_HOST": "127.0.0.1",
                                         "EXBUS_OBSERVABILITY_INGESTOR_PORT": "0",
                                         "PYTHONUNBUFFERED": "1"})  # warm() reads the log as it is written
        self.config = config

    def argv(self) -> list[str]:
        return ["--config", str(self.config), "ingest"]

    async def started(self) -> "IngestProcess":
        await self.start()
        return self

    def warm(self, feed: str) -> bool:
        """Whether the process keeps ``feed`` warm now: the last thing it logged of the feed
        is that it keeps it warm (not that it owns it, handed it over or gave it up)."""
        if not self.log_path.exists():
            return False
        last = None
        for line in self.log_path.read_text(errors="replace").splitlines():
            if f'"feed": "{feed}"' in line and '"component": "feeds"' in line:
                last = line
        return last is not None and '"feed kept warm"' in last


class Market:
    """Every ``md.>`` message with its arrival (monotonic s)."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, Any]] = []

    async def start(self, nc: Any) -> None:
        async def on_msg(msg: Any) -> None:
            self.messages.append((time.monotonic(), decode(msg.data, MarketData)))

        await nc.subscribe("md.>", cb=on_msg)

    def data(self, venue: str, since: float = 0.0) -> list[tuple[float, Any]]:
        """Market data (not statuses) of ``venue`` that arrived after ``since``."""
        return [(t, m) for t, m in self.messages if t > since and m.venue == venue and not isinstance(m, FeedStatus)]

    def takeovers(self, venue: str, since: float = 0.0) -> list[tuple[float, FeedStatus]]:
        return [(t, m) for t, m in self.messages if t > since and isinstance(m, FeedStatus) and m.venue == venue
                and m.state == "gap" and (m.reason or "").startswith("takeover")]

    def problems(self, venue: str, since: float = 0.0) -> list[FeedStatus]:
        """Gap statuses other than takeovers (a sequence or checksum failure)."""
        return [m for t, m in self.messages if t > since and isinstance(m, FeedStatus) and m.venue == venue
                and m.state == "gap" and not (m.reason or "").startswith(("takeover", "handover"))]

    def first_books(self, venue: str, since: float) -> dict[str, Any]:
        """Per symbol, the first book message after ``since``."""
        out: dict[str, Any] = {}
        for _, m in self.data(venue, since):
            if isinstance(m, (BookSnapshot, BookDelta)):
                out.setdefault(m.symbol, m)
        return out


async def feeds_bus(nats_url: str) -> tuple[Any, Any, Market]:
    """A connection with exbus's streams and buckets ensured, bucket ``feeds``, and a
    started :class:`Market` on ``md.>``."""
    nc = await nats.connect(nats_url)
    await ensure_streams(nc.jetstream(), StreamSettings())
    market = Market()
    await market.start(nc)
    return nc, await nc.jetstream().key_value(KV_FEEDS), market


async def owner_of(kv: Any, feed: str) -> str | None:
    try:
        entry = await kv.get(f"feed.{feed}")
    except Exception:  # noqa: BLE001 - not there (yet)
        return None
    return msgspec.json.decode(entry.value)["owner"] if entry.value else None


async def settled_owner(kv: Any, feed: str, processes: dict[str, IngestProcess], standby: bool = False) -> str:
    """The owner of ``feed`` once sharing has settled: the lease held by the member
    rendezvous hashing gives it to (not one about to hand it over) and, with ``standby``,
    the other process keeping it warm."""
    wanted = rendezvous_owner(feed, sorted(processes))

    async def settled() -> bool:
        if await owner_of(kv, feed) != wanted:
            return False
        return not standby or all(p.warm(feed) for name, p in processes.items() if name != wanted)

    await until(settled, 30, f"{feed} owned by {wanted}" + (", the others warm" if standby else ""))
    assert wanted is not None
    return wanted


async def until(predicate: Any, timeout: float = 10.0, what: str = "condition") -> float:
    """Seconds until ``predicate()`` (sync or async) held, polled every 10 ms;
    AssertionError after ``timeout``."""
    start = time.monotonic()
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.01)
