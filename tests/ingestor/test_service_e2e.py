"""End to end against a real nats-server: recording -> loopback venue -> ingestor ->
NATS -> subscriber; and the live path under faults (venue drops the connection, goes
quiet, skips an update id).

Sources: ../shared/data/recorded (KRAKEN.ws.50.0, BITFINEX.ws.11.0, BINANCE.ws.1.0,
BINANCE.http.0.0; cryptofeed sample_data).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from decimal import Decimal
from pathlib import Path

import msgspec
import nats
import pytest
from websockets.asyncio.server import serve

from schemas import decode
from schemas.alerts import Alert
from schemas.market import BookDelta, BookSnapshot, FeedStatus, MarketData
from services.ingestor.recording import read_records
from services.ingestor.replay import load_recording, run_replay
from services.ingestor.service import FeedSpec, Ingestor
from services.observability.catalog import INGESTOR as INGESTOR_METRICS
from services.venues.book import OrderBook
from services.venues.checksum import kraken
from services.venues.wsbase import BookUpdate
from tests.local_http import serve_http

pytestmark = pytest.mark.timeout(60)


class Collector:
    """Subscribes to ``md.<venue>.>`` and keeps every decoded message."""

    def __init__(self) -> None:
        self.messages: list = []
        self.changed = asyncio.Event()

    async def start(self, nc, subject: str) -> None:
        async def on_msg(msg) -> None:
            self.messages.append(decode(msg.data, MarketData))
            self.changed.set()

        await nc.subscribe(subject, cb=on_msg)

    async def wait_for(self, predicate, timeout: float = 20.0):
        async def loop():
            while True:
                found = [m for m in self.messages if predicate(m)]
                if found:
                    return found[0]
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(loop(), timeout)

    def statuses(self, state: str) -> list[FeedStatus]:
        return [m for m in self.messages if isinstance(m, FeedStatus) and m.state == state]


def replay_books(messages) -> dict[str, OrderBook]:
    """A subscriber's books, built only from what it received."""
    books: dict[str, OrderBook] = {}
    expected: dict[str, int] = {}
    for m in messages:
        if isinstance(m, BookSnapshot):
            book = books[m.symbol] = OrderBook()
            book.apply([(l.price, l.size) for l in m.bids], [(l.price, l.size) for l in m.asks])
        elif isinstance(m, BookDelta):
            assert m.sequence == expected[m.symbol], "book messages arrive in sequence"
            books[m.symbol].apply([(l.price, l.size) for l in m.bids], [(l.price, l.size) for l in m.asks])
        else:
            continue
        expected[m.symbol] = m.sequence + 1
    return books


async def test_replay_kraken_through_nats_rebuilds_books_that_match_every_checksum(nats_url, shared_data):
    recorded = shared_data / "recorded"
    recording = load_recording([recorded / "KRAKEN.ws.50.0", recorded / "KRAKEN.ws.48.0", recorded / "KRAKEN.ws.49.0"])
    nc = await nats.connect(nats_url)
    sub = Collector()
    await sub.start(nc, "md.kraken.>")
    publisher = await nats.connect(nats_url)
    INGESTOR_METRICS.feed_lag.labels("kraken").set(0.0)  # whatever an earlier test measured
    summary, _ = await run_replay(publisher, recording)
    await publisher.drain()
    assert summary == {"venue": "kraken", "frames": 4430, "published": {"trade": 10, "ticker": 18, "book": 4279, "bbo": 0},
                       "gaps": 0, "resyncs": 0, "checksum_failures": 0}
    await sub.wait_for(lambda m: isinstance(m, FeedStatus) and m.state == "disconnected")
    books = [m for m in sub.messages if isinstance(m, (BookSnapshot, BookDelta))]
    assert len(books) == 4279
    # the subscriber's own books agree with the venue's last checksum of each pair
    last_crc = {}
    for _, frame in recording.frames:
        if isinstance(frame, str) and '"c":"' in frame:
            parts = msgspec.json.decode(frame)
            last_crc[parts[-1]] = int(parts[-3]["c"])
    rebuilt = replay_books(sub.messages)
    for pair, crc in last_crc.items():
        symbol = pair.replace("XBT", "BTC").replace("/", "-")
        book = rebuilt[symbol]
        assert kraken(book.top_bids(10), book.top_asks(10)) == crc, symbol
    # recorded venue times are years old: a replay measures no feed lag, so the demo's
    # ExbusFeedLagHigh rule (lag > 5 s) cannot fire on it
    lag = INGESTOR_METRICS.registry.by_label("exbus_md_feed_lag_seconds", "venue")
    assert lag["kraken"] == 0.0, lag
    await nc.drain()


async def test_exbus_replay_command_prints_one_json_line(nats_url, shared_data, exbus_cmd, clean_env):
    proc = await asyncio.create_subprocess_exec(
        *exbus_cmd, "replay", str(shared_data / "recorded" / "BITFINEX.ws.11.0"), "--nats", nats_url,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env)
    out, err = await asyncio.wait_for(proc.communicate(), 50)
    assert proc.returncode == 0, err.decode()[-2000:]
    line = json.loads(out.decode().strip().splitlines()[-1])
    assert line == {"venue": "bitfinex", "frames": 1693, "published": {"trade": 0, "ticker": 21, "book": 1600, "bbo": 0},
                    "gaps": 0, "resyncs": 0, "checksum_failures": 0}


class FlakyVenue:
    """A loopback venue serving recorded frames: each connection gets the next script
    (a list of frames, then how it ends: close with an error, or go quiet)."""

    def __init__(self, scripts: list[tuple[list[str], str]]) -> None:
        self.scripts = scripts
        self.connections = 0
        self.received: list[str] = []
        self.url = ""

    async def __aenter__(self):
        self._server = await serve(self._handler, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/"
        return self

    async def __aexit__(self, *exc):
        self._server.close()
        await self._server.wait_closed()

    async def _handler(self, ws) -> None:
        frames, ending = self.scripts[min(self.connections, len(self.scripts) - 1)]
        self.connections += 1
        self.received.append(await ws.recv())
        for f in frames:
            await ws.send(f)
        if ending == "error":
            await ws.close(1011, "internal error")
        else:  # "quiet": stay connected, say nothing, answer pings
            async for m in ws:
                self.received.append(m)


def kraken_frames(shared_data: Path, pair: str, count: int) -> list[str]:
    out = []
    for r in read_records(shared_data / "recorded" / "KRAKEN.ws.50.0"):
        data = getattr(r, "data", None)
        if isinstance(data, str) and data.startswith("[") and data.endswith(f'"{pair}"]'):
            out.append(data)
    return out[:count]


def kraken_snapshot_frame(frames: list[str]) -> str:
    """The book-1000 snapshot Kraken would send after ``frames`` (built by the engine)."""
    from services.venues.kraken.ws import KrakenWs

    adapter = KrakenWs()
    adapter.remember(["XMR-USD"])
    book = OrderBook()
    for f in frames:
        (u,) = adapter.parse_frame(f, 0)
        book.apply(u.bids, u.asks)
    side = lambda levels: [[format(p, "f"), format(q, "f"), "1618678140.000000"] for p, q in levels]  # noqa: E731
    return msgspec.json.encode([992, {"as": side(book.top_asks(1000)), "bs": side(book.top_bids(1000))},
                                "book-1000", "XMR/USD"]).decode()


async def test_dropped_connection_reconnects_with_gap_then_resynced(nats_url, shared_data):
    frames = kraken_frames(shared_data, "XMR/USD", 60)
    resubscribed = kraken_snapshot_frame(frames[:30])  # the venue's book when we come back
    async with FlakyVenue([(frames[:30], "error"), ([resubscribed] + frames[30:60], "quiet")]) as venue:
        nc = await nats.connect(nats_url)
        sub = Collector()
        await sub.start(nc, "md.kraken.>")
        stop = asyncio.Event()
        spec = FeedSpec(venue="kraken", symbols=["XMR-USD"], channels=["book"], url=venue.url,
                        prepare=lambda a: setattr(a, "book_depth", 1000))
        ingestor = Ingestor(nc, [spec], stop, backoff=(0.05, 0.2))
        run = asyncio.create_task(ingestor.run())
        await sub.wait_for(lambda m: isinstance(m, FeedStatus) and m.state == "resynced")
        states = [m.state for m in sub.messages if isinstance(m, FeedStatus)]
        assert states == ["connected", "disconnected", "gap", "connected", "resynced"]
        assert "1011" in sub.statuses("disconnected")[0].reason and sub.statuses("gap")[0].symbol == "XMR-USD"
        await sub.wait_for(lambda m: isinstance(m, BookDelta) and m.sequence == 30 + 1 + 29)
        stop.set()
        await run
        assert venue.connections == 2 and ingestor.stats["kraken"].gaps == 1
        replay_books(sub.messages)  # every delta in sequence after each snapshot
        await nc.drain()


async def test_quiet_feed_is_flagged_stale_and_the_connection_probed(nats_url, shared_data):
    frames = kraken_frames(shared_data, "XMR/USD", 5)
    async with FlakyVenue([(frames, "quiet")]) as venue:
        nc = await nats.connect(nats_url)
        sub = Collector()
        await sub.start(nc, "md.kraken.status")
        stop = asyncio.Event()
        spec = FeedSpec(venue="kraken", symbols=["XMR-USD"], channels=["book"], url=venue.url,
                        prepare=lambda a: setattr(a, "book_depth", 1000))
        alerts: asyncio.Queue = asyncio.Queue()

        async def on_alert(msg) -> None:
            alerts.put_nowait((msg.subject, decode(msg.data, Alert)))

        await nc.subscribe("alerts.>", cb=on_alert)
        run = asyncio.create_task(Ingestor(nc, [spec], stop, stale_after_s=0.3).run())
        stale = await sub.wait_for(lambda m: m.state == "stale")
        assert "no frame" in stale.reason
        subject, alert = await asyncio.wait_for(alerts.get(), 5)  # the same news on the alert subject
        assert subject == "alerts.warning.feed_stale"
        assert (alert.name, alert.venue, alert.service, alert.key) == ("feed_stale", "kraken", "ingestor", "kraken")
        assert "no frame" in alert.summary
        stop.set()
        await run
        # the venue answered the ping, so the connection was kept: one connection only
        assert venue.connections == 1 and [m.state for m in sub.messages].count("disconnected") == 1
        await nc.drain()


class VenueBookSnapshots:
    """SnapshotSource of the test: the venue's book as of the given update ids, in turn."""

    def __init__(self, states: dict[int, tuple], ids: list[int]) -> None:
        self.states = states
        self.ids = ids
        self.fetched: list[str] = []

    async def fetch(self, venue: str, symbol: str, depth: int) -> BookUpdate:
        self.fetched.append(symbol)
        at = self.ids.pop(0)
        bids, asks = self.states[at]
        return BookUpdate(symbol=symbol, snapshot=True, bids=bids, asks=asks, ts_event=1, ts_recv=1, sequence=at)


async def test_binance_update_id_gap_resyncs_that_symbol_over_rest(nats_url, shared_data):
    frames = [r.data for r in read_records(shared_data / "recorded" / "BINANCE.ws.1.0")
              if isinstance(getattr(r, "data", None), str) and "nknusdt@depth" in r.data]
    updates = [msgspec.json.decode(f)["data"] for f in frames]
    body = next(r.body for r in read_records(shared_data / "recorded" / "BINANCE.http.0.0") if "NKNUSDT" in r.url)
    snap = msgspec.json.decode(body)
    # the venue's book after each update id, from the recorded snapshot on
    book = OrderBook()
    book.apply([(Decimal(p), Decimal(q)) for p, q in snap["bids"]], [(Decimal(p), Decimal(q)) for p, q in snap["asks"]])
    states = {snap["lastUpdateId"]: (book.top_bids(), book.top_asks())}
    for u in updates:
        if u["u"] > snap["lastUpdateId"]:
            book.apply([(Decimal(p), Decimal(q)) for p, q in u["b"]], [(Decimal(p), Decimal(q)) for p, q in u["a"]])
            states[u["u"]] = (book.top_bids(), book.top_asks())
    live = [f for f, u in zip(frames, updates) if u["u"] > snap["lastUpdateId"]]
    dropped = 40  # the venue loses one diff: the next one starts past the last u + 1
    after_gap = msgspec.json.decode(live[dropped + 1])["data"]["u"]
    last_u = msgspec.json.decode(live[-1])["data"]["u"]
    # REST answers: the recorded snapshot first, then the venue's book just after the gap
    source = VenueBookSnapshots(states, [snap["lastUpdateId"], after_gap])
    async with FlakyVenue([(live[:dropped] + live[dropped + 1:], "quiet")]) as venue:
        nc = await nats.connect(nats_url)
        sub = Collector()
        await sub.start(nc, "md.binance.>")
        stop = asyncio.Event()
        spec = FeedSpec(venue="binance", symbols=["NKN-USDT"], channels=["book"], url=venue.url)
        ingestor = Ingestor(nc, [spec], stop, snapshots=source)
        run = asyncio.create_task(ingestor.run())
        gap = await sub.wait_for(lambda m: isinstance(m, FeedStatus) and m.state == "gap")
        assert gap.symbol == "NKN-USDT" and gap.reason.startswith("sequence gap")
        await sub.wait_for(lambda m: isinstance(m, FeedStatus) and m.state == "resynced")
        await sub.wait_for(lambda m: isinstance(m, (BookSnapshot, BookDelta)) and m.venue_sequence == last_u)
        stop.set()
        await run
        assert source.fetched == ["NKN-USDT", "NKN-USDT"]  # initial sync, then the resync of that symbol
        rebuilt = replay_books(sub.messages)["NKN-USDT"]
        assert (rebuilt.top_bids(), rebuilt.top_asks()) == states[last_u]
        await nc.drain()


async def test_trades_missed_while_disconnected_are_backfilled_over_rest(nats_url):
    """OKX trade frames as in OKX.ws.1.0; the REST answer has the shape of
    https://www.okx.com/docs-v5/en/#order-book-trading-market-data-get-trades-history."""
    from aiohttp import web

    def trade(trade_id: str, ts_ms: int) -> dict:
        return {"instId": "BTC-USDT", "tradeId": trade_id, "px": "30236", "sz": "0.0002", "side": "buy", "ts": str(ts_ms)}

    live = msgspec.json.encode({"arg": {"channel": "trades", "instId": "BTC-USDT"},
                                "data": [trade("338476307", 1652459224818)]}).decode()

    async def history(request: web.Request) -> web.Response:
        before = int(request.query["after"])  # the newest trades before the reconnect
        data = [trade("338476310", before - 2), trade("338476309", before - 3), trade("338476307", 1652459224818)]
        return web.json_response({"code": "0", "msg": "", "data": data})

    async with serve_http([("GET", "/api/v5/market/history-trades", history)]) as rest_url, \
            FlakyVenue([([live], "error"), ([], "quiet")]) as venue:
        nc = await nats.connect(nats_url)
        sub = Collector()
        await sub.start(nc, "md.okx.>")
        stop = asyncio.Event()
        spec = FeedSpec(venue="okx", symbols=["BTC-USDT"], channels=["trade"], url=venue.url, rest_url=rest_url)
        run = asyncio.create_task(Ingestor(nc, [spec], stop, backoff=(0.05, 0.2)).run())
        done = await sub.wait_for(lambda m: isinstance(m, FeedStatus) and m.state == "resynced")
        stop.set()
        await run
        (missed,) = sub.statuses("trades_missed")
        trades = [m.trade_id for m in sub.messages if m.__class__.__name__ == "Trade"]
        assert trades == ["338476307", "338476309", "338476310"]  # the one seen live is not repeated
        assert done.channel == "trade" and done.reason == "backfilled 2 trades over REST"
        assert missed.missed_from < missed.missed_to
        await nc.drain()


async def test_ingests_the_simulators_binance_streams(nats_url):
    """The venue simulator replays BINANCE.ws.1.0 on its /stream endpoint; the ingestor,
    given only the simulator's host, subscribes and publishes its best bid/offer."""
    from schemas.market import BBO
    from services.simulator import Simulator

    async with Simulator({}) as sim:
        nc = await nats.connect(nats_url)
        sub = Collector()
        await sub.start(nc, "md.binance.>")
        stop = asyncio.Event()
        spec = FeedSpec(venue="binance", symbols=["NKN-USDT"], channels=["bbo"], url=sim.binance_ws_url)
        run = asyncio.create_task(Ingestor(nc, [spec], stop).run())
        bbo = await sub.wait_for(lambda m: isinstance(m, BBO))
        stop.set()
        await run
        assert bbo.symbol == "NKN-USDT" and bbo.bid < bbo.ask
        assert [m.state for m in sub.statuses("connected")] == ["connected"]
        await nc.drain()
