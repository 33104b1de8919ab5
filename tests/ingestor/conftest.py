"""Fixtures for the ingestor tests: recorded sessions of ../shared/data/recorded
(cryptofeed sample_data, XFree86 1.1, see its README) parsed by our adapters."""

from __future__ import annotations

import heapq
from pathlib import Path
from typing import Callable

import msgspec
import pytest

from services.ingestor.recording import Received, Sent, read_records, to_ns
from services.venues.wsbase import WsAdapter, WsEvent, ws_adapter


class RecordedSession(msgspec.Struct):
    adapter: WsAdapter
    frames: list[tuple[int, str | bytes]]
    """(ts_recv ns, frame) in file order."""

    def events(self) -> list[WsEvent]:
        out: list[WsEvent] = []
        for ts, data in self.frames:
            out += self.adapter.parse_frame(data, ts)
        return out


@pytest.fixture
def recorded(shared_data: Path) -> Callable[..., RecordedSession]:
    """``recorded(venue, *files, symbols=None)``: an adapter subscribed as the recording was
    (or to ``symbols``), and the recorded frames. Several files are merged by time."""

    def load(venue: str, *files: str, symbols: list[str] | None = None) -> RecordedSession:
        adapter = ws_adapter(venue)()
        per_file: list[list[tuple[int, str | bytes]]] = []
        subs = set()
        for name in files:
            records = list(read_records(shared_data / "recorded" / name))
            sent = [r.data for r in records if isinstance(r, Sent)]
            subs |= {s.symbol for s in adapter.recorded_subscriptions(records[0].url, sent)}
            per_file.append([(to_ns(r.ts), r.data) for r in records if isinstance(r, Received)])
        frames = list(heapq.merge(*per_file, key=lambda f: f[0]))  # keeps each file's order
        adapter.remember(symbols if symbols is not None else sorted(subs))
        return RecordedSession(adapter, frames)

    return load
