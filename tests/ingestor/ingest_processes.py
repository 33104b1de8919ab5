"""`exbus ingest` processes sharing feeds, against looping replay servers (the takeover
test and bench/ingest_takeover.py).

Each replay server serves a real recording to every connection, paced, from its start
(its snapshot first), so a process that takes a feed over starts from a fresh book.
A `Market` subscriber keeps every ``md.<venue>.>`` message with its arrival time.
"""

from __future__ import annotations

import asyncio
import signal
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import msgspec

from schemas import decode
from schemas.market import BookDelta, BookSnapshot, FeedStatus, MarketData
from services.ingestor.replay import ReplayServer, load_recording, replay_spec
from services.venues.wsbase import ws_adapter
from tests.executor.processes import EXBUS, ROOT, process_env

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


class IngestProcess:
    """One `exbus ingest --config` process; ``kill`` is SIGKILL."""

    def __init__(self, name: str, workdir: Path, config: Path, nats_url: str) -> None:
        self.name, self.workdir, self.config, self.nats_url = name, workdir, config, nats_url
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    async def start(self) -> "IngestProcess":
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = process_env(NATS_URL=self.nats_url, EXBUS_INGESTOR_MEMBER_ID=self.name, EXBUS_LOG_LEVEL="info",
                          EXBUS_OBSERVABILITY_HOST="127.0.0.1", EXBUS_OBSERVABILITY_INGESTOR_PORT="0")
        with open(self.log_path, "ab") as log:
            self.proc = await asyncio.create_subprocess_exec(*EXBUS, "--config", str(self.config), "ingest", env=env,
                                                             stdout=log, stderr=log, cwd=ROOT)
        return self

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def stop(self, timeout_s: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout_s)
            except asyncio.TimeoutError:
                await self.kill()
        return self.proc.returncode

    def warm(self, feed: str) -> bool:
        """Whether the process logged that it keeps ``feed`` warm (its standby is running)."""
        if not self.log_path.exists():
            return False
        return any('"feed kept warm"' in line and f'"feed": "{feed}"' in line
                   for line in self.log_path.read_text(errors="replace").splitlines())

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


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


async def owner_of(kv: Any, feed: str) -> str | None:
    try:
        entry = await kv.get(f"feed.{feed}")
    except Exception:  # noqa: BLE001 - not there (yet)
        return None
    return msgspec.json.decode(entry.value)["owner"] if entry.value else None


async def until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.02)
