"""Ingestor benchmark on the recorded traffic of ../shared/data/recorded.

Per venue (``venues.<venue>`` of the results JSON):
- ``parse_normalize``: frames/s and messages/s through the sans-IO feed (parse, book
  checks, normalized objects), in one process, no sockets; ``parse_normalize_with_encoding``
  adds the JSON encoding of every normalized message (and gives ``mean_message_bytes``);
- ``bare_decode``: frames/s of ``msgspec.json.decode`` alone on the same frames;
- ``cryptofeed``: the same frames through cryptofeed 2.4.1's message handler (run in its
  own virtualenv by bench/cryptofeed_handler.py, in ``--turns`` turns alternating with
  exbus's ``parse_normalize``, the best of each kept), with its default (book checksums not
  checked) and with ``checksum_validation`` on (``cryptofeed.checksum_validation``): exbus
  always checks them, so ``exbus_over_cryptofeed_checksum_validation`` is the like-for-like
  ratio on venues that send checksums (Kraken, OKX), ``exbus_over_cryptofeed`` the other;
- ``live_path``: three processes, as in production: the replay server
  (services/ingestor/replay.py, WebSocket + HTTP, the recording served again to every new
  connection) -> this process, which runs only the ingestor (reconnecting at once when a
  pass of the recording ends) and publishes to a real nats-server -> a subscriber process
  on ``md.<venue>.>`` that decodes ``ts_recv`` of every message. Rates are counted at the
  subscriber over its busy time: the sum over connections of first to last delivery
  between the ``connected`` and ``disconnected`` statuses (reconnect, handshake and
  subscribe of each pass left out; ``wall_messages_per_s`` keeps them in). Latency is
  frame receipt (``ts_recv``) -> subscriber wall clock, p50/p99. Also the CPU seconds of
  each process, the ingestor's CPU per delivered message and per frame (receive + parse +
  publish), gaps/resyncs, and the load average when it started;
- ``live_path_paced``: the same, the replay server sending ``--paced-rate`` frames/s
  (default 2,000: a busy multi-symbol feed) evenly: latency p50/p99 without queueing;
- ``bus_ceiling``: the same two-process shape without the ingestor: this process
  publishes messages of the venue's mean encoded size (a ``ts_recv`` stamp, padded) as
  fast as the subscriber process takes them (a window of unacknowledged messages keeps
  the subscriber from being cut off as a slow consumer), rate over first to last delivery;
- ``end_to_end_over_bus_ceiling``: live_path messages/s over bus_ceiling messages/s;
- ``memory_per_book``: bytes held by one synced book (tracemalloc), with its level count.

``aggregate``: 1, then 2 ingestor processes on Bitfinex, each with its own replay server
process, publishing to one nats-server, one subscriber process counting everything;
delivered messages/s over first to last delivery, against the bus ceiling.

Top level: ``load_average`` (1/5/15 min at start and end: the machine may be shared),
``peak_rss_mb`` of this process before the soak, and with ``--soak SECONDS`` a ``soak``:
one ingestor with every venue, each against its own replay server process, for that long,
RSS of this process sampled every few seconds (first/last/min/max, second-half min/max).

    .venv/bin/python bench/ingest_replay.py [--rounds N] [--live-seconds S] [--soak SECONDS] [--out FILE]

The replay server and the subscriber are this file run with ``--role server`` /
``--role subscriber``: each prints one JSON line when ready and one with its counts once
its stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from array import array
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Callable

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schemas import encode  # noqa: E402
from services.bus.connect import connect  # noqa: E402
from services.bus.embedded import EmbeddedNats  # noqa: E402
from services.config import NatsSettings  # noqa: E402
from services.ingestor.feed import Feed  # noqa: E402
from services.ingestor.recording import to_ns  # noqa: E402
from services.ingestor.replay import Recording, ReplayServer, load_recording, replay_spec  # noqa: E402
from services.ingestor.service import Ingestor  # noqa: E402
from services.ingestor.snapshots import RateBudget  # noqa: E402
from services.ingestor.transport import Backoff  # noqa: E402
from services.venues.wsbase import BookUpdate, ws_adapter  # noqa: E402

RECORDED = ROOT.parent / "shared" / "data" / "recorded"
AGGREGATE_VENUE = "bitfinex"
"""The venue of the aggregate runs (single-level frames: the per-message cost at its purest)."""
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


PROGRESS_EVERY = 1000
"""The bus-ceiling subscriber reports its count every this many messages."""
QUIET_S = 0.3
"""A subscriber told to stop reports once nothing arrived for this long."""


class Stamp(msgspec.Struct):
    """What the subscriber reads of every message: its receipt time, or a status's state."""

    ts_recv: int = 0
    state: str = ""
    reason: str = ""


def quantiles_us(samples: array) -> dict:
    """p50/p99/max of nanosecond samples, in microseconds."""
    if not samples:
        return {"p50": None, "p99": None, "max": None, "samples": 0}
    ordered = sorted(samples)
    at = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000, 1)  # noqa: E731
    return {"p50": at(0.50), "p99": at(0.99), "max": round(ordered[-1] / 1000, 1), "samples": len(ordered)}


def own_usage() -> dict:
    """CPU seconds and peak RSS of this process."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_seconds": round(r.ru_utime + r.ru_stime, 3), "peak_rss_mb": round(r.ru_maxrss / 1024, 1)}


async def stdin_closed() -> None:
    """Return once the parent closes our stdin (or exits)."""
    await asyncio.to_thread(sys.stdin.buffer.read)


async def role_server(venue: str, rate: float | None) -> None:
    """Serve ``venue``'s recording (WebSocket + HTTP) to every connection until stdin closes,
    as fast as the socket takes it or at ``rate`` frames per second."""
    recording = load_recording([RECORDED / f for f in SESSIONS[venue]])
    async with ReplayServer(recording, repeat=True, rate=rate) as server:
        print(json.dumps({"ws_url": server.ws_url, "http_url": server.http_url}), flush=True)
        await stdin_closed()
    print(json.dumps({"frames_sent": server.frames_sent, "http_requests": server.http_requests, **own_usage()}),
          flush=True)


async def role_subscriber(nats_url: str, subject: str, progress: str | None, latency: bool) -> None:
    """Count market data on ``subject`` until stdin closes, then print counts, busy time and latency.

    Busy time: deliveries are split into segments at every ``connected`` / ``disconnected``
    status; each segment counts from its first to its last data message."""
    nc = await connect(NatsSettings(), url=nats_url, name="bench-subscriber")
    decode = msgspec.json.Decoder(Stamp).decode
    latencies = array("q")
    statuses: Counter[str] = Counter()
    gap_reasons: Counter[str] = Counter()
    c = {"messages": 0, "in_segments": 0, "segments": 0, "busy_ns": 0, "first_ns": 0, "last_ns": 0}
    segment = {"first": 0, "last": 0, "count": 0}

    def close_segment() -> None:
        if segment["count"]:
            c["segments"] += 1
            c["in_segments"] += segment["count"]
            c["busy_ns"] += segment["last"] - segment["first"]
        segment["count"] = 0

    async def on_msg(msg: object) -> None:
        now = time.time_ns()
        stamp = decode(msg.data)  # type: ignore[attr-defined]
        if stamp.state:
            statuses[stamp.state] += 1
            if stamp.state == "gap":
                gap_reasons[stamp.reason.split(":")[0]] += 1
            if stamp.state in ("connected", "disconnected"):
                close_segment()
            return
        if not segment["count"]:
            segment["first"] = now
        segment["last"] = now
        segment["count"] += 1
        n = c["messages"] = c["messages"] + 1
        if n == 1:
            c["first_ns"] = now
        c["last_ns"] = now
        if latency and stamp.ts_recv:
            latencies.append(now - stamp.ts_recv)
        if progress and n % PROGRESS_EVERY == 0:
            await nc.publish(progress, str(n).encode())

    sub = await nc.subscribe(subject, cb=on_msg, pending_msgs_limit=10**8, pending_bytes_limit=-1)
    await nc.flush()
    print(json.dumps({"ready": True}), flush=True)
    await stdin_closed()
    await nc.flush()
    while sub.pending_msgs or time.time_ns() - max(c["last_ns"], 1) < QUIET_S * 1e9 and c["messages"]:
        await asyncio.sleep(0.05)
    close_segment()
    await nc.drain()
    busy = c["busy_ns"] / 1e9
    print(json.dumps({
        "messages": c["messages"], "statuses": dict(statuses), "gap_reasons": dict(gap_reasons), "segments": c["segments"],
        "messages_in_segments": c["in_segments"], "busy_seconds": round(busy, 4),
        "messages_per_s": round(c["in_segments"] / busy) if busy else None,
        "first_to_last_seconds": round((c["last_ns"] - c["first_ns"]) / 1e9, 4),
        "latency_to_subscriber_us": quantiles_us(latencies), **own_usage(),
    }), flush=True)


async def role_ingestor(venue: str, ws_url: str, http_url: str, nats_url: str) -> None:
    """Run the ingestor on ``venue``'s replay at ``ws_url`` until stdin closes (one of the
    ``aggregate`` processes), then print its frames, published messages and CPU."""
    recording = load_recording([RECORDED / f for f in SESSIONS[venue]])
    nc = await connect(NatsSettings(), url=nats_url, name="bench-ingestor")
    stop = asyncio.Event()
    ingestor = replay_ingestor(nc, [replay_spec(recording, ws_url, http_url)], stop)
    run = asyncio.create_task(ingestor.run())
    print(json.dumps({"ready": True}), flush=True)
    cpu0 = time.process_time()
    await stdin_closed()
    cpu = time.process_time() - cpu0
    stop.set()
    stats = (await run)[venue]
    await nc.drain()
    published = ingestor.published(venue)
    print(json.dumps({"frames": stats.frames, "published": sum(n for c, n in published.items() if c != "status"),
                      "cpu_seconds": round(cpu, 3)}), flush=True)


async def aggregate(venue: str, nats_url: str, processes: int, seconds: float) -> dict:
    """``processes`` ingestor processes, each on its own replay server process, publishing
    ``venue``'s market data to one nats-server; one subscriber process counts all of it.
    The rate is delivered data messages over the subscriber's first to last delivery."""
    async with contextlib.AsyncExitStack() as stack:
        sub = await stack.enter_async_context(Role("subscriber", "--nats", nats_url, "--subject", f"md.{venue}.>",
                                                   "--no-latency"))
        servers = [await stack.enter_async_context(Role("server", "--venue", venue)) for _ in range(processes)]
        ingestors = [await stack.enter_async_context(Role("ingestor", "--venue", venue, "--ws-url", s.info["ws_url"],
                                                          "--http-url", s.info["http_url"], "--nats", nats_url))
                     for s in servers]
        await asyncio.sleep(seconds)
        ran = [await i.finish() for i in ingestors]
        got = await sub.finish()
        for s in servers:
            await s.finish()
    wall = got["first_to_last_seconds"]
    return {"processes": processes, "seconds": seconds, "messages_delivered": got["messages"],
            "messages_per_s": round(got["messages"] / wall) if wall else None,
            "ingestor_cpu_seconds": [r["cpu_seconds"] for r in ran], "frames": [r["frames"] for r in ran],
            "ingestor_cpu_us_per_frame": [round(r["cpu_seconds"] / r["frames"] * 1e6, 2) if r["frames"] else None
                                          for r in ran],
            "subscriber_cpu_seconds": got["cpu_seconds"]}


class Role:
    """This file run as another process (``--role ...``): ``info`` is its first JSON line,
    ``finish()`` closes its stdin and returns its last one."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.proc: asyncio.subprocess.Process | None = None
        self.info: dict = {}

    async def __aenter__(self) -> "Role":
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).resolve()), "--role", *self.args,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(ROOT))
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60)  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"bench role {self.args} exited before it was ready")
        self.info = json.loads(line)
        return self

    async def finish(self) -> dict:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.close()
        out, _ = await asyncio.wait_for(self.proc.communicate(), 120)
        lines = out.decode().strip().splitlines()
        if self.proc.returncode != 0 or not lines:
            raise RuntimeError(f"bench role {self.args} failed (exit {self.proc.returncode})")
        return json.loads(lines[-1])

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


def stamped_payloads(size: int) -> Callable[[int], bytes]:
    """``payload(ts_recv_ns)``: a JSON object of ``size`` bytes (at least the stamp) with that ``ts_recv``."""
    pad = b"x" * max(0, size - len(b'{"ts_recv":1234567890123456789,"pad":""}'))
    return lambda ts: b'{"ts_recv":%d,"pad":"%s"}' % (ts, pad)


async def bus_ceiling(nats_url: str, size: int, seconds: float) -> dict:
    """Bare nats-py publish (this process) -> subscribe (another process) of ``size``-byte
    messages for ``seconds``, at the rate the subscriber takes them."""
    window = max(4 * PROGRESS_EVERY, (1 << 20) // max(1, size))
    async with Role("subscriber", "--nats", nats_url, "--subject", "bench.bus.>", "--progress", "bench.progress") as sub:
        pub = await connect(NatsSettings(), url=nats_url, name="bench-bus-pub")
        acked = 0
        progressed = asyncio.Event()

        async def on_progress(msg: object) -> None:
            nonlocal acked
            acked = int(msg.data)  # type: ignore[attr-defined]
            progressed.set()

        await pub.subscribe("bench.progress", cb=on_progress)
        await pub.flush()
        payload = stamped_payloads(size)
        publish, clock, now_ns = pub.publish, time.perf_counter, time.time_ns
        sent, stalls = 0, 0
        cpu0, t0 = time.process_time(), clock()
        deadline = t0 + seconds
        while clock() < deadline:
            if sent - acked >= window:
                progressed.clear()
                stalls += 1
                await asyncio.wait_for(progressed.wait(), 30)
                continue
            await publish("bench.bus.x", payload(now_ns()))
            sent += 1
            if sent % 500 == 0:
                await asyncio.sleep(0)  # let the progress callback run
        await pub.flush()
        publisher_cpu = time.process_time() - cpu0
        await pub.drain()
        got = await sub.finish()
    return {"message_bytes": len(payload(now_ns())), "seconds": seconds, "sent": sent, "messages": got["messages"],
            "messages_per_s": got["messages_per_s"], "latency_to_subscriber_us": got["latency_to_subscriber_us"],
            "window_messages": window, "window_full_waits": stalls,
            "publisher_cpu_seconds": round(publisher_cpu, 3), "subscriber_cpu_seconds": got["cpu_seconds"],
            "note": "messages_per_s over the subscriber's first to last delivery; its latency is mostly the "
                    "window of messages in flight (a saturating publisher queues), not the bus's own delay"}


def unpaced(ingestor: Ingestor) -> Ingestor:
    """Lift the venues' REST snapshot pacing (Binance: 2/s): the replay answers from the
    recording on loopback, and every pass starts books afresh, so pacing would measure
    the venue's start-up budget instead of the ingestor's throughput."""
    for venue in ingestor.budgets:
        ingestor.budgets[venue] = RateBudget(1e9, burst=1e9)
    return ingestor


class Immediately(Backoff):
    """No delay before any reconnect: a replay pass ends by design, not by a fault."""

    def next(self) -> float:
        return 0.0


def replay_ingestor(nc: object, specs: list, stop: asyncio.Event) -> Ingestor:
    """The ingestor as ``exbus ingest`` runs it, reconnecting at once when a replay pass ends."""
    ingestor = unpaced(Ingestor(nc, specs, stop, reconnect=True, snapshot_attempts=3))
    for connections in ingestor.connections.values():
        for c in connections:
            c.backoff = Immediately()
    return ingestor


async def live_path(recording: Recording, nats_url: str, seconds: float, rate: float | None = None) -> dict:
    """Replay server process -> ingestor (this process) -> nats-server -> subscriber process,
    for ``seconds`` of reconnecting passes over the recording, served as fast as the
    ingestor takes it or at ``rate`` frames per second."""
    venue = recording.venue
    pace = ("--rate", str(rate)) if rate else ()
    async with Role("server", "--venue", venue, *pace) as server, \
            Role("subscriber", "--nats", nats_url, "--subject", f"md.{venue}.>") as sub:
        nc = await connect(NatsSettings(), url=nats_url, name="bench-ingest")
        stop = asyncio.Event()
        ingestor = replay_ingestor(nc, [replay_spec(recording, server.info["ws_url"], server.info["http_url"])], stop)
        load = os.getloadavg()
        cpu0, t0 = time.process_time(), time.perf_counter()
        run = asyncio.create_task(ingestor.run())
        await asyncio.sleep(seconds)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        stop.set()
        stats = (await run)[venue]
        await nc.drain()
        got = await sub.finish()
        served = await server.finish()
    published = ingestor.published(venue)
    connections = sum(c.connects for c in ingestor.connections[venue])
    data = got["messages"]
    busy_rate = got["messages_per_s"]
    return {
        "seconds": round(wall, 3), "connections": connections,
        "frames": stats.frames, "frames_sent_by_server": served["frames_sent"],
        "published": published, "messages_delivered": data, "statuses_delivered": got["statuses"],
        "frames_per_s": round(busy_rate * stats.frames / data) if busy_rate and data else None,
        "messages_per_s": busy_rate,
        "wall_messages_per_s": round(data / got["first_to_last_seconds"]) if got["first_to_last_seconds"] else None,
        "busy_seconds": got["busy_seconds"], "segments": got["segments"],
        "latency_to_subscriber_us": got["latency_to_subscriber_us"],
        "gaps": stats.gaps, "resyncs": stats.resyncs, "checksum_failures": stats.checksum_failures,
        "parse_errors": stats.parse_errors, "gap_reasons": got["gap_reasons"],
        "gaps_beyond_reconnects": sum(n for reason, n in got["gap_reasons"].items() if reason != "disconnected"),
        "ingestor_cpu_seconds": round(cpu, 3), "ingestor_cpu_share": round(cpu / wall, 3),
        "messages_per_ingestor_cpu_second": round(data / cpu) if cpu else None,
        "ingestor_cpu_us_per_message": round(cpu / data * 1e6, 2) if data else None,
        "ingestor_cpu_us_per_frame": round(cpu / stats.frames * 1e6, 2) if stats.frames else None,
        "subscriber_cpu_seconds": got["cpu_seconds"], "server_cpu_seconds": served["cpu_seconds"],
        "load_average_at_start": [round(x, 2) for x in load],
        "note": "messages_per_s: delivered data messages / the subscriber's busy time (per connection, first to "
                "last delivery between connected/disconnected statuses; each pass of the recording is one "
                "connection, the replay server serving it again to each new one); frames_per_s: the same rate "
                "times frames/messages of the run; wall_messages_per_s: over first to last delivery of the run, "
                "reconnects included. REST snapshots come over HTTP from the replay process, unpaced. Every "
                "reconnect invalidates each synced book (a gap with reason 'disconnected', then a resync); "
                "gaps_beyond_reconnects counts gaps for any other reason (sequence, checksum, crossed). "
                "ingestor_cpu_share: CPU seconds of the ingestor process over the measured seconds.",
    }


def paced(run: dict, rate: float) -> dict:
    """The figures of a paced live run: latency at a load the path sustains (the saturated
    run's latency is mostly its queue)."""
    return {"rate_frames_per_s": rate, "seconds": run["seconds"], "frames": run["frames"],
            "messages_delivered": run["messages_delivered"],
            "latency_to_subscriber_us": run["latency_to_subscriber_us"],
            "ingestor_cpu_share": run["ingestor_cpu_share"], "gaps_beyond_reconnects": run["gaps_beyond_reconnects"],
            "note": "the replay server sends the recording evenly paced at rate_frames_per_s (asyncio timers: "
                    "in bursts of a millisecond's frames); latency: frame receipt (ts_recv) -> subscriber"}


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


def cryptofeed_rates(python: Path, rounds: int, venues: list[str]) -> dict:
    """Frames/s of cryptofeed 2.4.1's handler on ``venues``, from its own virtualenv ({} when absent)."""
    if not python.exists():
        return {}
    proc = subprocess.run([str(python), str(ROOT / "bench" / "cryptofeed_handler.py"), "--data", str(RECORDED),
                           "--rounds", str(rounds), "--venues", ",".join(venues)],
                          capture_output=True, text=True, timeout=600, cwd=tempfile.gettempdir())
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def faster(a: dict | None, b: dict | None) -> dict | None:
    """The one of two rate results with the higher ``frames_per_s`` (either may be missing)."""
    if not a or not b:
        return a or b
    return a if a.get("frames_per_s", 0) >= b.get("frames_per_s", 0) else b


def parse_against_cryptofeed(recording: Recording, python: Path, rounds: int, turns: int) -> tuple[dict, dict | None, dict]:
    """exbus's parse+normalize and cryptofeed's handler (default and checksum_validation) on
    the same frames, in ``turns`` alternating turns, each the best of ``rounds``: the best
    of each side over the turns, so a slow spell of a shared machine hits both alike."""
    venue = recording.venue
    pn: dict | None = None
    cf: dict | None = None
    checked: dict | None = None
    header: dict = {}
    for _ in range(turns):
        got = cryptofeed_rates(python, rounds, [venue])
        header = {k: v for k, v in got.items() if k != "venues"} or header
        row = got.get("venues", {}).get(venue) or {}
        cf = faster(cf, {k: v for k, v in row.items() if k != "checksum_validation"})
        checked = faster(checked, row.get("checksum_validation"))
        pn = faster(pn, parse_normalize(recording, rounds))
    if cf is not None and checked:
        cf = {**cf, "checksum_validation": checked}
    assert pn is not None
    return pn, cf, header


def rss_mb() -> float:
    """Current resident set size of this process, MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def soak(nats_url: str, seconds: float, sample_every_s: float = 5.0) -> dict:
    """One ingestor with every venue, each against its replay server process, reconnecting
    at every pass, for ``seconds``; RSS of this process (only the ingestor runs in it)
    sampled every ``sample_every_s``."""
    recordings = {v: load_recording([RECORDED / f for f in files]) for v, files in SESSIONS.items()}
    servers = [Role("server", "--venue", v) for v in recordings]
    subscriber = Role("subscriber", "--nats", nats_url, "--subject", "md.>", "--no-latency")
    for role in [*servers, subscriber]:
        await role.__aenter__()
    try:
        nc = await connect(NatsSettings(), url=nats_url, name="bench-soak")
        specs = [replay_spec(r, s.info["ws_url"], s.info["http_url"]) for r, s in zip(recordings.values(), servers)]
        stop = asyncio.Event()
        ingestor = replay_ingestor(nc, specs, stop)
        rss_before = round(rss_mb(), 1)
        samples: list[tuple[float, float]] = []
        t0 = time.monotonic()
        run = asyncio.create_task(ingestor.run())
        while time.monotonic() - t0 < seconds and not run.done():  # a failed ingestor ends the soak
            await asyncio.sleep(sample_every_s)
            samples.append((round(time.monotonic() - t0, 1), round(rss_mb(), 1)))
        stop.set()
        stats = await run
        await nc.drain()
        got = await subscriber.finish()
        for s in servers:
            await s.finish()
    finally:
        for role in [*servers, subscriber]:
            await role.__aexit__()
    rss = [r for _, r in samples]
    half = rss[len(rss) // 2:]
    return {
        "seconds": seconds, "sample_every_s": sample_every_s, "load_average_at_end": list(os.getloadavg()),
        "connections": {v: sum(c.connects for c in ingestor.connections[v]) for v in recordings},
        "frames": {v: s.frames for v, s in stats.items()},
        "gaps": {v: s.gaps for v, s in stats.items()}, "parse_errors": {v: s.parse_errors for v, s in stats.items()},
        "messages_delivered": got["messages"], "gap_reasons": got["gap_reasons"],
        "rss_mb_before": rss_before, "rss_mb_first": rss[0], "rss_mb_last": rss[-1],
        "rss_mb_min": min(rss), "rss_mb_max": max(rss),
        "rss_mb_second_half_min": min(half), "rss_mb_second_half_max": max(half),
        "samples": samples[:: max(1, len(samples) // 40)],
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def main(args: argparse.Namespace) -> None:
    results: dict = {
        "benchmark": "ingest_replay", "python": platform.python_version(), "machine": platform.machine(),
        "cpus": os.cpu_count(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python bench/ingest_replay.py " + " ".join(sys.argv[1:]),
        "source": "../shared/data/recorded (cryptofeed sample_data)",
        "load_average": {"start": load_average()}, "venues": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedNats(Path(tmp) / "nats") as server:
            results["cryptofeed"] = "not run: no cryptofeed virtualenv"
            for venue, files in ({} if args.only_aggregate else SESSIONS).items():
                recording = load_recording([RECORDED / f for f in files])
                pn, cf, header = parse_against_cryptofeed(recording, args.cryptofeed_python, args.rounds, args.turns)
                if header:
                    results["cryptofeed"] = header
                with_encoding = parse_normalize(recording, max(1, args.rounds // 4), encoding=True)
                row = {
                    "files": files,
                    "parse_normalize": pn,
                    "parse_normalize_with_encoding": with_encoding,
                    "bare_decode": bare_decode(recording, args.rounds),
                    "live_path": await live_path(recording, server.url, args.live_seconds),
                    "live_path_paced": paced(await live_path(recording, server.url, args.live_seconds, args.paced_rate),
                                             args.paced_rate),
                    "bus_ceiling": await bus_ceiling(server.url, with_encoding["mean_message_bytes"], args.live_seconds),
                    "memory_per_book": memory_per_book(recording),
                }
                if cf:
                    row["cryptofeed"] = cf
                    if cf.get("frames_per_s"):
                        row["exbus_over_cryptofeed"] = round(pn["frames_per_s"] / cf["frames_per_s"], 2)
                    checked = cf.get("checksum_validation", {}).get("frames_per_s")
                    if checked:
                        row["exbus_over_cryptofeed_checksum_validation"] = round(pn["frames_per_s"] / checked, 2)
                live, ceiling = row["live_path"]["messages_per_s"], row["bus_ceiling"]["messages_per_s"]
                row["end_to_end_over_bus_ceiling"] = round(live / ceiling, 3) if live and ceiling else None
                results["venues"][venue] = row
                print(venue, json.dumps(row), flush=True)
            runs = [await aggregate(AGGREGATE_VENUE, server.url, n, args.live_seconds) for n in (1, 2)]
            ceiling = await bus_ceiling(server.url, results["venues"].get(AGGREGATE_VENUE, {}).get(
                "parse_normalize_with_encoding", {}).get("mean_message_bytes", 200), args.live_seconds)
            results["aggregate"] = {
                "venue": AGGREGATE_VENUE, "runs": runs, "bus_ceiling_messages_per_s": ceiling["messages_per_s"],
                "two_over_one": round(runs[1]["messages_per_s"] / runs[0]["messages_per_s"], 2)
                if runs[0]["messages_per_s"] and runs[1]["messages_per_s"] else None,
                "note": f"N ingestor processes, each with its own replay server process, one nats-server and one "
                        f"subscriber process, all on this machine's {os.cpu_count()} cores",
            }
            print("aggregate", json.dumps(results["aggregate"]), flush=True)
            results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
            if args.soak:
                results["soak"] = await soak(server.url, args.soak)
                print("soak", json.dumps(results["soak"]), flush=True)
    results["load_average"]["end"] = load_average()
    results["peak_rss_mb_with_soak"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print_table(results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


def print_table(results: dict) -> None:
    cols = ("venue", "parse f/s", "cryptofeed f/s", "x", "cf checksums f/s", "x", "decode f/s", "e2e f/s", "e2e msg/s", "bus msg/s",
            "e2e/bus", "cpu us/msg", "p50 us", "p99 us", "paced p50 us", "paced p99 us")
    print(" | ".join(cols))
    for venue, r in results["venues"].items():
        lat = r["live_path"]["latency_to_subscriber_us"]
        calm = r["live_path_paced"]["latency_to_subscriber_us"]
        print(" | ".join(str(x) for x in (
            venue, r["parse_normalize"]["frames_per_s"], r.get("cryptofeed", {}).get("frames_per_s", "-"),
            r.get("exbus_over_cryptofeed", "-"),
            r.get("cryptofeed", {}).get("checksum_validation", {}).get("frames_per_s", "-"),
            r.get("exbus_over_cryptofeed_checksum_validation", "-"), r["bare_decode"]["frames_per_s"], r["live_path"]["frames_per_s"],
            r["live_path"]["messages_per_s"], r["bus_ceiling"]["messages_per_s"], r["end_to_end_over_bus_ceiling"],
            r["live_path"].get("ingestor_cpu_us_per_message", "-"), lat["p50"], lat["p99"], calm["p50"], calm["p99"])))
    print(f"peak RSS {results['peak_rss_mb']} MiB (load average {results['load_average']})")
    if "soak" in results:
        s = results["soak"]
        print(f"soak {s['seconds']} s: RSS first {s['rss_mb_first']} last {s['rss_mb_last']} "
              f"min {s['rss_mb_min']} max {s['rss_mb_max']} MiB")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--live-seconds", type=float, default=5.0,
                        help="length of each venue's live path and bus ceiling measurement")
    parser.add_argument("--cryptofeed-python", type=Path, default=ROOT / ".venv-cryptofeed" / "bin" / "python")
    parser.add_argument("--turns", type=int, default=3,
                        help="alternating exbus/cryptofeed parse turns per venue (best of each is kept)")
    parser.add_argument("--paced-rate", type=float, default=2000.0,
                        help="frames/s of the paced live run (latency without queueing)")
    parser.add_argument("--rate", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--soak", type=float, default=0, help="also run every venue in a loop this many seconds, sampling RSS")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "ingest_replay.json"))
    parser.add_argument("--role", choices=("server", "subscriber", "ingestor"), help=argparse.SUPPRESS)
    parser.add_argument("--ws-url", help=argparse.SUPPRESS)
    parser.add_argument("--http-url", help=argparse.SUPPRESS)
    parser.add_argument("--only-aggregate", action="store_true", help="run only the aggregate of 1 and 2 processes")
    parser.add_argument("--venue", help=argparse.SUPPRESS)
    parser.add_argument("--nats", help=argparse.SUPPRESS)
    parser.add_argument("--subject", help=argparse.SUPPRESS)
    parser.add_argument("--progress", help=argparse.SUPPRESS)
    parser.add_argument("--no-latency", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    from services.logs import configure_logging

    configure_logging("error", stream=sys.stderr)  # the replay's reconnects and 404 backfills are expected
    arguments = parse_args()
    if arguments.role == "server":
        asyncio.run(role_server(arguments.venue, arguments.rate))
    elif arguments.role == "ingestor":
        asyncio.run(role_ingestor(arguments.venue, arguments.ws_url, arguments.http_url, arguments.nats))
    elif arguments.role == "subscriber":
        asyncio.run(role_subscriber(arguments.nats, arguments.subject, arguments.progress, not arguments.no_latency))
    else:
        asyncio.run(main(arguments))
