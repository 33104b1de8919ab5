"""Ingestor benchmark on the recorded traffic of ../shared/data/recorded.

Per venue:
- ``parse_normalize``: frames/s and messages/s through the sans-IO feed (parse, book
  checks, normalized objects) plus JSON encoding, in one process, no sockets;
- ``live_path``: the whole path (loopback WebSocket replay -> transport -> feed ->
  publish to a real nats-server), messages/s and latency frame received -> published
  (p50/p99, from the ingestor's own perf_counter stamps);
- ``memory_per_book``: bytes held by one synced book (tracemalloc), with its level count.

    .venv/bin/python bench/ingest_replay.py [--rounds N] [--out bench/results/ingest_replay.json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schemas import encode  # noqa: E402
from services.bus.connect import connect  # noqa: E402
from services.bus.embedded import EmbeddedNats  # noqa: E402
from services.config import NatsSettings  # noqa: E402
from services.ingestor.feed import Feed  # noqa: E402
from services.ingestor.recording import to_ns  # noqa: E402
from services.ingestor.replay import Recording, load_recording, run_replay  # noqa: E402
from services.venues.wsbase import BookUpdate, ws_adapter  # noqa: E402

RECORDED = ROOT.parent / "shared" / "data" / "recorded"
SESSIONS = {
    "binance": ["BINANCE.ws.1.0"],
    "kraken": ["KRAKEN.ws.48.0", "KRAKEN.ws.49.0", "KRAKEN.ws.50.0"],
    "okx": ["OKX.ws.1.0"],
    "bitfinex": ["BITFINEX.ws.11.0"],
}


class DepthSnapshot(msgspec.Struct):
    lastUpdateId: int
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]


def recorded_snapshots(recording: Recording) -> dict[str, BookUpdate]:
    """Binance /api/v3/depth responses of the recording, by exbus symbol."""
    from services.venues.binance.ws import split_symbol

    out = {}
    for r in recording.http:
        if "/api/v3/depth" in r.url:
            symbol = split_symbol(r.url.split("symbol=")[1].split("&")[0])
            s = msgspec.json.decode(r.body, type=DepthSnapshot)
            out[symbol] = BookUpdate(symbol=symbol, snapshot=True, bids=s.bids, asks=s.asks,
                                     ts_event=to_ns(r.ts), ts_recv=to_ns(r.ts), sequence=s.lastUpdateId)
    return out


class RecordedSnapshots:
    """Snapshot source reading the recording when no REST adapter is installed."""

    def __init__(self, snapshots: dict[str, BookUpdate]) -> None:
        self.snapshots = snapshots

    async def fetch(self, venue: str, symbol: str, depth: int) -> BookUpdate:
        return self.snapshots[symbol]


def make_feed(recording: Recording) -> Feed:
    adapter = ws_adapter(recording.venue)()
    subs = adapter.recorded_subscriptions(recording.url, recording.sent)
    return Feed(type(adapter), sorted({s.symbol for s in subs}), sorted({s.channel for s in subs}),
                max_streams_per_connection=10**6,
                prepare=lambda a: a.recorded_subscriptions(recording.url, recording.sent))


def parse_normalize(recording: Recording, rounds: int) -> dict:
    snapshots = recorded_snapshots(recording)
    frames = recording.frames
    messages = 0
    elapsed = 0.0
    for _ in range(rounds):
        feed = make_feed(recording)  # a fresh feed each round: the books start from their snapshots again
        t0 = time.perf_counter()
        for ts, data in frames:
            actions = feed.on_frame(0, data, ts)
            for m in actions.publish:
                encode(m)
            messages += len(actions.publish)
            for symbol in actions.fetch:
                for m in feed.on_snapshot(symbol, snapshots[symbol]).publish:
                    encode(m)
                    messages += 1
        elapsed += time.perf_counter() - t0
        assert feed.stats.gaps == 0 and feed.stats.parse_errors == 0
    return {"frames": len(frames) * rounds, "messages": messages, "seconds": round(elapsed, 4),
            "frames_per_s": round(len(frames) * rounds / elapsed), "messages_per_s": round(messages / elapsed)}


async def live_path(recording: Recording, nats_url: str, rounds: int) -> dict:
    nc = await connect(NatsSettings(), url=nats_url, name="bench-ingest")
    latencies: list[int] = []
    messages = 0
    elapsed = 0.0
    snapshots_from = "rest adapter"
    try:
        import services.venues as venues  # noqa: F401

        if not hasattr(venues, "rest_adapter"):
            raise ImportError
    except ImportError:
        snapshots_from = "recorded file"
    for _ in range(rounds):
        source = RecordedSnapshots(recorded_snapshots(recording)) if snapshots_from == "recorded file" else None
        t0 = time.perf_counter()
        summary, ingestor = await run_replay(nc, recording, measure_latency=True, snapshots=source)
        elapsed += time.perf_counter() - t0
        messages += sum(summary["published"].values())
        latencies += ingestor.latencies_ns or []
    await nc.drain()
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0] * 99
    return {"messages": messages, "seconds": round(elapsed, 4), "messages_per_s": round(messages / elapsed),
            "note": "wall time of whole replays: server start-up, connect, and REST snapshots paced by the "
                    "venue's budget are included; the recordings are short",
            "latency_us": {"p50": round(q[49] / 1000, 1), "p99": round(q[98] / 1000, 1), "samples": len(latencies)},
            "book_snapshots_from": snapshots_from, "summary": summary}


def memory_per_book(recording: Recording) -> dict:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    feed = make_feed(recording)
    snapshots = recorded_snapshots(recording)  # parsed inside: the books keep its Decimals
    for ts, data in recording.frames:
        for symbol in feed.on_frame(0, data, ts).fetch:
            feed.on_snapshot(symbol, snapshots[symbol])
    del snapshots
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    held = sum(s.size_diff for s in after.compare_to(before, "filename"))
    books = [b for b in feed.books.values() if b.synced]
    levels = sum(len(b.book) for b in books)
    return {"books": len(books), "levels": levels, "bytes_per_book": round(held / max(1, len(books))),
            "bytes_per_level": round(held / max(1, levels), 1)}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--live-rounds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "ingest_replay.json"))
    args = parser.parse_args()
    results: dict = {
        "benchmark": "ingest_replay", "python": platform.python_version(), "machine": platform.machine(),
        "cpus": __import__("os").cpu_count(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": "../shared/data/recorded (cryptofeed sample_data)", "venues": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedNats(Path(tmp) / "nats") as server:
            for venue, files in SESSIONS.items():
                recording = load_recording([RECORDED / f for f in files])
                results["venues"][venue] = {
                    "files": files,
                    "parse_normalize": parse_normalize(recording, args.rounds),
                    "live_path": await live_path(recording, server.url, args.live_rounds),
                    "memory_per_book": memory_per_book(recording),
                }
                print(venue, json.dumps(results["venues"][venue]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    import logging

    logging.disable(logging.WARNING)
    asyncio.run(main())
