"""Ingestor benchmark on the recorded traffic of ../shared/data/recorded.

Per venue:
- ``parse_normalize``: frames/s and messages/s through the sans-IO feed (parse, book
  checks, normalized objects), in one process, no sockets; ``with_encoding`` adds the
  JSON encoding of every normalized message;
- ``bare_decode``: frames/s of ``msgspec.json.decode`` alone on the same frames;
- ``cryptofeed``: the same frames through cryptofeed 2.4.1's message handler (run in
  ``.venv-cryptofeed`` by bench/cryptofeed_handler.py when that virtualenv exists) and
  the ratio exbus/cryptofeed;
- ``live_path``: the whole path (loopback WebSocket replay -> transport -> feed ->
  publish to a real nats-server -> a subscriber on ``md.<venue>.>``): frames/s and
  messages/s delivered to the subscriber (first to last delivery) and latency frame
  received -> subscriber (p50/p99, wall clock, ``ts_recv`` to delivery);
- ``bus_ceiling``: bare nats-py publish -> subscribe messages/s of same-sized messages;
- ``memory_per_book``: bytes held by one synced book (tracemalloc), with its level count;
- ``peak_rss_mb`` of the run; ``--soak SECONDS`` replays in a loop and samples RSS.

    .venv/bin/python bench/ingest_replay.py [--rounds N] [--soak SECONDS] [--out bench/results/ingest_replay.json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
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
    "upbit": ["UPBIT.ws.62.0"],
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


def parse_normalize(recording: Recording, rounds: int, encoding: bool = False) -> dict:
    """Best-of-``rounds`` rate of the sans-IO feed over every frame of the recording."""
    snapshots = recorded_snapshots(recording)
    frames = recording.frames
    best = 0.0
    messages = 0
    sizes: list[int] = []
    for _ in range(rounds):
        feed = make_feed(recording)  # a fresh feed each round: the books start from their snapshots again
        messages = 0
        t0 = time.perf_counter()
        for ts, data in frames:
            actions = feed.on_frame(0, data, ts)
            published = list(actions.publish)
            for symbol in actions.fetch:
                published += feed.on_snapshot(symbol, snapshots[symbol]).publish
            messages += len(published)
            if encoding:
                for m in published:
                    sizes.append(len(encode(m)))
        elapsed = time.perf_counter() - t0
        best = max(best, len(frames) / elapsed)
        assert feed.stats.gaps == 0 and feed.stats.parse_errors == 0
    out = {"frames": len(frames), "messages": messages, "best_of": rounds, "frames_per_s": round(best),
           "messages_per_s": round(best * messages / len(frames))}
    if encoding:
        out["mean_message_bytes"] = round(statistics.mean(sizes)) if sizes else 0
    return out


def bare_decode(recording: Recording, rounds: int) -> dict:
    """``msgspec.json.decode`` alone on every frame: the floor of any JSON feed handler."""
    decode = msgspec.json.decode
    best = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ts, data in recording.frames:
            decode(data)
        best = max(best, len(recording.frames) / (time.perf_counter() - t0))
    return {"frames_per_s": round(best)}


async def bus_ceiling(nats_url: str, size: int, count: int = 200_000) -> dict:
    """Bare nats-py publish -> subscribe of ``count`` messages of ``size`` bytes."""
    pub = await connect(NatsSettings(), url=nats_url, name="bench-bus-pub")
    sub = await connect(NatsSettings(), url=nats_url, name="bench-bus-sub")
    done = asyncio.Event()
    received = 0
    first = last = 0.0

    async def on_msg(_msg: object) -> None:
        nonlocal received, first, last
        received += 1
        if received == 1:
            first = time.perf_counter()
        if received == count:
            last = time.perf_counter()
            done.set()

    await sub.subscribe("bench.bus.>", cb=on_msg, pending_msgs_limit=count + 1, pending_bytes_limit=-1)
    await sub.flush()
    payload = b"x" * size
    t0 = time.perf_counter()
    for i in range(count):
        await pub.publish("bench.bus.x", payload)
        if i % 5000 == 0:
            await asyncio.sleep(0)
    await pub.flush()
    await asyncio.wait_for(done.wait(), 120)
    await pub.drain()
    await sub.drain()
    return {"message_bytes": size, "messages": count, "messages_per_s": round(count / (last - t0)),
            "subscriber_only_messages_per_s": round(count / (last - first)) if last > first else None}


class Stamp(msgspec.Struct):
    ts_recv: int = 0


async def live_path(recording: Recording, nats_url: str, rounds: int) -> dict:
    nc = await connect(NatsSettings(), url=nats_url, name="bench-ingest")
    subscriber = await connect(NatsSettings(), url=nats_url, name="bench-ingest-subscriber")
    stamp = msgspec.json.Decoder(Stamp)
    delivered: list[tuple[float, int]] = []  # (perf_counter at delivery, wall ns delivery - ts_recv)

    async def on_md(msg: object) -> None:
        now = time.time_ns()
        ts_recv = stamp.decode(msg.data).ts_recv  # type: ignore[attr-defined]
        delivered.append((time.perf_counter(), now - ts_recv if ts_recv else -1))

    await subscriber.subscribe(f"md.{recording.venue}.>", cb=on_md, pending_msgs_limit=10**7, pending_bytes_limit=-1)
    await subscriber.flush()
    latencies: list[int] = []
    messages = 0
    elapsed = 0.0
    busy = 0.0  # first to last delivery of each round
    frames = 0
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
        delivered.clear()
        summary, ingestor = await run_replay(nc, recording, measure_latency=True, snapshots=source)
        await nc.flush()
        await subscriber.flush()
        elapsed += time.perf_counter() - t0
        messages += len(delivered)
        frames += summary["frames"]
        if len(delivered) > 1:
            busy += delivered[-1][0] - delivered[0][0]
        latencies += [lat for _, lat in delivered if lat >= 0]
    await nc.drain()
    await subscriber.drain()
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0] * 99
    return {"frames": frames, "messages_delivered": messages,
            "frames_per_s": round(frames / busy) if busy else None,
            "messages_per_s": round(messages / busy) if busy else None,
            "wall_seconds_with_setup": round(elapsed, 4),
            "note": "rates over first-to-last delivery at the subscriber; wall_seconds_with_setup includes "
                    "server start-up, connect and REST snapshots paced by the venue's budget",
            "latency_to_subscriber_us": {"p50": round(q[49] / 1000, 1), "p99": round(q[98] / 1000, 1),
                                         "samples": len(latencies)},
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


def cryptofeed_rates(python: Path, rounds: int) -> dict:
    """Frames/s of cryptofeed 2.4.1's handler, from its own virtualenv ({} when absent)."""
    if not python.exists():
        return {}
    proc = subprocess.run([str(python), str(ROOT / "bench" / "cryptofeed_handler.py"), "--data", str(RECORDED),
                           "--rounds", str(rounds), "--venues", ",".join(SESSIONS)],
                          capture_output=True, text=True, timeout=600, cwd=tempfile.gettempdir())
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def rss_mb() -> float:
    """Current resident set size of this process, MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def soak(nats_url: str, seconds: float) -> dict:
    """Replay every recording in a loop for ``seconds``, sampling RSS once per pass."""
    recordings = [load_recording([RECORDED / f for f in files]) for files in SESSIONS.values()]
    nc = await connect(NatsSettings(), url=nats_url, name="bench-soak")
    samples: list[tuple[float, float]] = []
    t0 = time.monotonic()
    passes = 0
    while time.monotonic() - t0 < seconds:
        for recording in recordings:
            await run_replay(nc, recording)
        passes += 1
        gc.collect()
        samples.append((round(time.monotonic() - t0, 1), round(rss_mb(), 1)))
    await nc.drain()
    half = samples[len(samples) // 2:] or samples
    return {"seconds": seconds, "passes": passes, "rss_mb_first_pass": samples[0][1],
            "rss_mb_second_half_min": min(r for _, r in half), "rss_mb_second_half_max": max(r for _, r in half),
            "rss_mb_last": samples[-1][1], "samples": samples[:: max(1, len(samples) // 30)]}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--live-rounds", type=int, default=3)
    parser.add_argument("--cryptofeed-python", type=Path, default=ROOT / ".venv-cryptofeed" / "bin" / "python")
    parser.add_argument("--soak", type=float, default=0, help="also replay in a loop this many seconds, sampling RSS")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "ingest_replay.json"))
    args = parser.parse_args()
    results: dict = {
        "benchmark": "ingest_replay", "python": platform.python_version(), "machine": platform.machine(),
        "cpus": __import__("os").cpu_count(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": "../shared/data/recorded (cryptofeed sample_data)", "venues": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedNats(Path(tmp) / "nats") as server:
            cryptofeed = cryptofeed_rates(args.cryptofeed_python, min(args.rounds, 5))
            results["cryptofeed"] = {k: v for k, v in cryptofeed.items() if k != "venues"} or "not run: no .venv-cryptofeed"
            for venue, files in SESSIONS.items():
                recording = load_recording([RECORDED / f for f in files])
                pn = parse_normalize(recording, args.rounds)
                with_encoding = parse_normalize(recording, max(1, args.rounds // 4), encoding=True)
                row = {
                    "files": files,
                    "parse_normalize": pn,
                    "parse_normalize_with_encoding": with_encoding,
                    "bare_decode": bare_decode(recording, args.rounds),
                    "live_path": await live_path(recording, server.url, args.live_rounds),
                    "bus_ceiling": await bus_ceiling(server.url, with_encoding["mean_message_bytes"]),
                    "memory_per_book": memory_per_book(recording),
                }
                cf = cryptofeed.get("venues", {}).get(venue)
                if cf:
                    row["cryptofeed"] = cf
                    if cf.get("frames_per_s"):
                        row["exbus_over_cryptofeed"] = round(pn["frames_per_s"] / cf["frames_per_s"], 2)
                live, ceiling = row["live_path"]["messages_per_s"], row["bus_ceiling"]["messages_per_s"]
                row["end_to_end_over_bus_ceiling"] = round(live / ceiling, 3) if live and ceiling else None
                results["venues"][venue] = row
                print(venue, json.dumps(row), flush=True)
            if args.soak:
                results["soak"] = await soak(server.url, args.soak)
                print("soak", json.dumps(results["soak"]), flush=True)
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print_table(results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


def print_table(results: dict) -> None:
    cols = ("venue", "parse f/s", "cryptofeed f/s", "x", "decode f/s", "e2e f/s", "e2e msg/s", "bus msg/s",
            "e2e/bus", "p50 us", "p99 us")
    print(" | ".join(cols))
    for venue, r in results["venues"].items():
        lat = r["live_path"]["latency_to_subscriber_us"]
        print(" | ".join(str(x) for x in (
            venue, r["parse_normalize"]["frames_per_s"], r.get("cryptofeed", {}).get("frames_per_s", "-"),
            r.get("exbus_over_cryptofeed", "-"), r["bare_decode"]["frames_per_s"], r["live_path"]["frames_per_s"],
            r["live_path"]["messages_per_s"], r["bus_ceiling"]["messages_per_s"], r["end_to_end_over_bus_ceiling"],
            lat["p50"], lat["p99"])))
    print(f"peak RSS {results['peak_rss_mb']} MiB")


if __name__ == "__main__":
    import logging

    logging.disable(logging.WARNING)
    asyncio.run(main())
