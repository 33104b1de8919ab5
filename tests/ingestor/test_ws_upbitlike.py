"""Upbit and Bithumb WebSocket v1 frames (one shared protocol, services.venues.upbitlike)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from schemas.market import Ticker, Trade
from services.ingestor.recording import Received, Sent, read_records
from services.venues.wsbase import BookUpdate, ws_adapter


def _upbit_session(shared_data: Path):
    """../shared/data/recorded/UPBIT.ws.62.0: real SIMPLE-format frames (binary JSON)."""
    records = list(read_records(shared_data / "recorded" / "UPBIT.ws.62.0"))
    sent = [r.data for r in records if isinstance(r, Sent)]
    frames = [r for r in records if isinstance(r, Received)]
    return sent, frames


def test_recorded_upbit_frames_parse_to_exact_objects(shared_data: Path) -> None:
    sent, frames = _upbit_session(shared_data)
    ws = ws_adapter("upbit")()
    subs = ws.recorded_subscriptions("wss://api.upbit.com/websocket/v1", sent)
    assert {s.channel for s in subs} == {"trade", "book"}
    ws.remember(sorted({s.symbol for s in subs}))
    trades, books = [], []
    for f in frames:
        for ev in ws.parse_frame(f.data, 1):
            (trades if isinstance(ev, Trade) else books).append(ev)
    assert len(trades) > 100 and len(books) > 100 and len(trades) + len(books) >= len(frames) - 5
    first = json.loads(frames[0].data)  # {"ty":"trade","cd":"KRW-LAMB",...,"tp":127.0,"tv":46.48838371,"ab":"BID",...}
    t = ws.parse_frame(frames[0].data, 7)[0]
    assert t.symbol == "LAMB-KRW" and t.price == Decimal("127.0") and t.quantity == Decimal("46.48838371")
    assert t.side == "buy" and t.trade_id == str(first["sid"]) and t.ts_event == first["ttms"] * 1_000_000 and t.ts_recv == 7
    for b in books:
        assert isinstance(b, BookUpdate) and b.snapshot
        assert all(size > 0 for _, size in b.bids + b.asks)


def test_every_recorded_upbit_book_is_uncrossed_and_replaces_the_last(shared_data: Path) -> None:
    sent, frames = _upbit_session(shared_data)
    ws = ws_adapter("upbit")()
    ws.remember(sorted({s.symbol for s in ws.recorded_subscriptions("", sent)}))
    for f in frames:
        for ev in ws.parse_frame(f.data, 1):
            if isinstance(ev, BookUpdate):
                assert max(p for p, _ in ev.bids) < min(p for p, _ in ev.asks), ev.symbol


# DEFAULT-format examples from docs.upbit.com / apidocs.bithumb.com WebSocket pages
# (field names of the "trade", "orderbook" and "ticker" responses).
DEFAULT_TRADE = {"type": "trade", "code": "KRW-BTC", "timestamp": 1676965262177, "trade_date": "2023-02-21",
                 "trade_time": "07:41:02", "trade_timestamp": 1676965262139, "trade_price": 31390000.0,
                 "trade_volume": 0.02116596, "ask_bid": "ASK", "prev_closing_price": 31397000.0, "change": "FALL",
                 "change_price": 7000.0, "sequential_id": 1676965262139000, "stream_type": "REALTIME"}
DEFAULT_BOOK = {"type": "orderbook", "code": "KRW-BTC", "timestamp": 1676965262177, "total_ask_size": 4.79,
                "total_bid_size": 2.12, "orderbook_units": [
                    {"ask_price": 31390000.0, "bid_price": 31385000.0, "ask_size": 0.0231, "bid_size": 0.5},
                    {"ask_price": 31395000.0, "bid_price": 31380000.0, "ask_size": 1.1, "bid_size": 0.0}],
                "stream_type": "SNAPSHOT"}
DEFAULT_TICKER = {"type": "ticker", "code": "KRW-BTC", "opening_price": 31883000.0, "high_price": 32310000.0,
                  "low_price": 31855000.0, "trade_price": 32287000.0, "acc_trade_volume_24h": 2905.64,
                  "acc_trade_price_24h": 93617306372.47, "timestamp": 1676965262177, "stream_type": "REALTIME"}


@pytest.mark.parametrize("venue", ["bithumb", "upbit"])
def test_default_format_frames(venue: str) -> None:
    ws = ws_adapter(venue)()
    ws.remember(["BTC-KRW"])
    (t,) = ws.parse_frame(json.dumps(DEFAULT_TRADE).encode(), 5)
    assert (t.venue, t.symbol, t.price, t.quantity, t.side) == (venue, "BTC-KRW", Decimal("31390000.0"), Decimal("0.02116596"), "sell")
    (b,) = ws.parse_frame(json.dumps(DEFAULT_BOOK).encode(), 5)
    assert b.bids == [(Decimal("31385000.0"), Decimal("0.5"))] and len(b.asks) == 2
    (k,) = ws.parse_frame(json.dumps(DEFAULT_TICKER).encode(), 5)
    assert isinstance(k, Ticker) and k.last == Decimal("32287000.0") and k.quote_volume_24h == Decimal("93617306372.47")


@pytest.mark.parametrize("venue", ["bithumb", "upbit"])
def test_book_numbers_without_a_fraction_are_exact_decimals(venue: str) -> None:
    """Book numbers are read through a cache of Decimals by text; an integer (no fraction)
    takes the typed decode and still gives a Decimal."""
    ws = ws_adapter(venue)()
    ws.remember(["BTC-KRW"])
    unit = {"ask_price": 31390000, "bid_price": 31385000.0, "ask_size": 2, "bid_size": 0.5}
    frame = DEFAULT_BOOK | {"orderbook_units": [unit]}
    if venue == "upbit":
        ws.format = "SIMPLE"  # type: ignore[misc]
        frame = {"ty": "orderbook", "cd": "KRW-BTC", "tms": 1676965262177,
                 "obu": [{"ap": 31390000, "bp": 31385000.0, "as": 2, "bs": 0.5}]}
    for _ in range(2):  # the second time from the cache
        (b,) = ws.parse_frame(json.dumps(frame).encode(), 5)
        assert b.bids == [(Decimal("31385000.0"), Decimal("0.5"))] and b.asks == [(Decimal("31390000"), Decimal("2"))]
        assert all(type(x) is Decimal for level in b.bids + b.asks for x in level)


def test_subscription_message_and_unknown_or_broken_frames() -> None:
    ws = ws_adapter("bithumb")()
    ws.remember(["BTC-KRW", "ETH-KRW"])
    (msg,) = ws.subscribe_messages(["trade", "book", "bbo"], ["BTC-KRW", "ETH-KRW"])
    req = json.loads(msg)
    assert "ticket" in req[0] and req[-1] == {"format": "DEFAULT"}
    assert {"type": "orderbook", "codes": ["KRW-BTC", "KRW-ETH"]} in req and {"type": "trade", "codes": ["KRW-BTC", "KRW-ETH"]} in req
    assert ws.parse_frame(b'{"status":"UP"}', 1) == []
    assert ws.parse_frame(json.dumps(DEFAULT_TRADE | {"code": "KRW-XRP"}).encode(), 1) == []  # not subscribed
    err = ws.parse_frame(b'{"error":{"name":"INVALID_PARAM","message":"bad codes"}}', 1)
    assert err[0].kind == "error" and "INVALID_PARAM" in err[0].message
    with pytest.raises(msgspec.DecodeError):
        ws.parse_frame(b'{"type":"trade","code":"KRW-BTC"', 1)


async def test_upbit_recording_replays_through_the_ingestor_onto_nats(shared_data: Path, nats_url: str) -> None:
    """replay (loopback WebSocket server) -> ingestor -> NATS -> a subscriber of md.upbit.>."""
    import nats

    import schemas
    from schemas.market import MarketData
    from services.ingestor.replay import load_recording, run_replay

    nc = await nats.connect(nats_url)
    got: list = []
    async def collect(msg) -> None:
        got.append(schemas.decode(msg.data, MarketData))

    await nc.subscribe("md.upbit.>", cb=collect)
    recording = load_recording([shared_data / "recorded" / "UPBIT.ws.62.0"])
    summary, _ = await run_replay(nc, recording)
    await nc.flush()
    await nc.drain()
    assert summary["venue"] == "upbit" and summary["gaps"] == 0
    assert summary["published"]["trade"] > 100 and summary["published"]["book"] > 100
    trades = [m for m in got if isinstance(m, Trade)]
    assert len(trades) == summary["published"]["trade"]
    assert {t.symbol for t in trades} <= {"LAMB-KRW", "WAVES-KRW", "ARK-BTC", "FCT2-BTC", "STPT-BTC", "ITAM-BTC", "MARO-BTC", "AQT-BTC", "XTZ-BTC", "PAX-BTC"}
