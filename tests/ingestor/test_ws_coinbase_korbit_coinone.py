"""Coinbase Advanced Trade, Korbit and Coinone WebSocket frames. No recordings of these
feeds exist in ../shared/data, so the frames below are the venues' documented examples:
- Coinbase: docs.cdp.coinbase.com/advanced-trade/docs/ws-channels (level2 l2_data,
  market_trades, ticker, heartbeats examples);
- Korbit: docs.korbit.co.kr WebSocket v2 (orderbook/trade/ticker message fields);
- Coinone: docs.coinone.co.kr Public WebSocket, as quoted in ccxt 4.5.90 pro/coinone.py.
"""

from __future__ import annotations

import json
from decimal import Decimal

import msgspec
import pytest

from schemas.market import BookDelta, BookSnapshot, FeedStatus, Ticker, Trade
from services.ingestor.feed import Feed
from services.venues.coinbase.ws import CoinbaseWs, rfc3339_ns
from services.venues.wsbase import BookUpdate, StreamSequence, ws_adapter


def l2(seq: int, kind: str, updates: list[tuple[str, str, str]], product: str = "BTC-USD") -> bytes:
    return json.dumps({"channel": "l2_data", "client_id": "", "timestamp": "2023-02-09T20:32:50.714964855Z",
                       "sequence_num": seq, "events": [{"type": kind, "product_id": product, "updates": [
                           {"side": s, "event_time": "2023-02-09T20:32:50.714964855Z", "price_level": p, "new_quantity": q}
                           for s, p, q in updates]}]}).encode()


COINBASE_TRADES = {"channel": "market_trades", "client_id": "", "timestamp": "2023-02-09T20:19:35.39625135Z",
                   "sequence_num": 3, "events": [{"type": "snapshot", "trades": [
                       {"trade_id": "000000000", "product_id": "BTC-USD", "price": "1260.01", "size": "0.3",
                        "side": "BUY", "time": "2019-08-14T20:42:27.265Z"}]}]}
COINBASE_TICKER = {"channel": "ticker", "client_id": "", "timestamp": "2022-10-19T23:28:22.061769Z", "sequence_num": 4,
                   "events": [{"type": "snapshot", "tickers": [
                       {"type": "ticker", "product_id": "BTC-USD", "price": "21932.98", "volume_24_h": "16038.28770938",
                        "low_24_h": "21835.29", "high_24_h": "23011.18", "low_52_w": "15460", "high_52_w": "48240",
                        "price_percent_chg_24_h": "-4.15775596190603"}]}]}
COINBASE_HEARTBEAT = {"channel": "heartbeats", "client_id": "", "timestamp": "2023-06-23T20:31:26.122969572Z",
                      "sequence_num": 5, "events": [{"current_time": "2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105",
                                                     "heartbeat_counter": "3049"}]}


def test_rfc3339_nanoseconds_are_exact() -> None:
    assert rfc3339_ns("2023-02-09T20:32:50.714964855Z") == 1675974770714964855
    assert rfc3339_ns("2019-08-14T20:42:27.265Z") == 1565815347265000000


def test_coinbase_frames() -> None:
    ws = CoinbaseWs()
    ws.remember(["BTC-USD"])
    seq, book = ws.parse_frame(l2(0, "snapshot", [("bid", "21921.73", "0.06317902"), ("offer", "21921.74", "1.5")]), 9)
    assert seq == StreamSequence(0) and book.snapshot and book.bids == [(Decimal("21921.73"), Decimal("0.06317902"))]
    seq, trade = ws.parse_frame(json.dumps(COINBASE_TRADES).encode(), 9)
    assert seq.sequence == 3 and trade.side == "sell" and trade.price == Decimal("1260.01")  # side is the maker's
    seq, ticker = ws.parse_frame(json.dumps(COINBASE_TICKER).encode(), 9)
    assert isinstance(ticker, Ticker) and ticker.last == Decimal("21932.98") and ticker.volume_24h == Decimal("16038.28770938")
    assert ws.parse_frame(json.dumps(COINBASE_HEARTBEAT).encode(), 9) == [StreamSequence(5)]
    (subs,) = [json.loads(m) for m in ws.subscribe_messages(["book"], ["BTC-USD"])][:1]
    assert subs == {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "level2"}


def test_coinbase_sequence_gap_resubscribes_the_book_and_reports_it() -> None:
    feed = Feed(CoinbaseWs, ["BTC-USD"], ["book"], clock=lambda: 1)
    published, sent = [], []
    frames = [
        l2(1, "snapshot", [("bid", "100", "1"), ("offer", "101", "1")]),
        l2(2, "update", [("bid", "100", "2")]),
        l2(4, "update", [("offer", "101", "0.5")]),  # 3 was lost
    ]
    for f in frames:
        a = feed.on_frame(0, f, 1)
        published += a.publish
        sent += [s for _, s in a.send]
    assert [type(p) for p in published[:2]] == [BookSnapshot, BookDelta]
    gaps = [p for p in published if isinstance(p, FeedStatus) and p.state == "gap"]
    assert gaps and gaps[0].symbol == "BTC-USD" and "sequence" in gaps[0].reason
    assert any(json.loads(s).get("type") == "subscribe" and json.loads(s).get("channel") == "level2" for s in sent)
    # the fresh snapshot after resubscribing resyncs the book
    a = feed.on_frame(0, l2(5, "snapshot", [("bid", "99", "1"), ("offer", "102", "1")]), 2)
    assert any(isinstance(p, FeedStatus) and p.state == "resynced" for p in a.publish)
    assert any(isinstance(p, BookSnapshot) for p in a.publish)


KORBIT_BOOK = {"type": "orderbook", "timestamp": 1700000000123, "symbol": "btc_krw", "snapshot": True,
               "data": {"timestamp": 1700000000100, "bids": [{"price": "51000000", "qty": "0.5"}, {"price": "50990000", "qty": "1.25"}],
                        "asks": [{"price": "51010000", "qty": "0.0001"}]}}
KORBIT_TRADES = {"type": "trade", "timestamp": 1700000000200, "symbol": "btc_krw", "snapshot": False,
                 "data": [{"timestamp": 1700000000190, "price": "51010000", "qty": "0.01", "isBuyerTaker": True, "tradeId": 12345}]}
KORBIT_TICKER = {"type": "ticker", "timestamp": 1700000000300, "symbol": "btc_krw", "snapshot": True,
                 "data": {"open": "50000000", "high": "51500000", "low": "49900000", "close": "51010000", "prevClose": "50000000",
                          "priceChange": "1010000", "priceChangePercent": "2.02", "volume": "123.45", "quoteVolume": "6296000000",
                          "bestBidPrice": "51000000", "bestAskPrice": "51010000", "lastTradedAt": 1700000000190}}


def test_korbit_frames_and_subscription() -> None:
    ws = ws_adapter("korbit")()
    ws.remember(["BTC-KRW"])
    (msg,) = ws.subscribe_messages(["trade", "book"], ["BTC-KRW"])
    assert json.loads(msg) == [{"method": "subscribe", "type": "orderbook", "symbols": ["btc_krw"]},
                               {"method": "subscribe", "type": "trade", "symbols": ["btc_krw"]}]
    (b,) = ws.parse_frame(json.dumps(KORBIT_BOOK), 1)
    assert isinstance(b, BookUpdate) and b.snapshot and b.asks == [(Decimal("51010000"), Decimal("0.0001"))]
    (t,) = ws.parse_frame(json.dumps(KORBIT_TRADES), 1)
    assert (t.trade_id, t.side, t.quantity, t.ts_event) == ("12345", "buy", Decimal("0.01"), 1700000000190 * 10**6)
    (k,) = ws.parse_frame(json.dumps(KORBIT_TICKER), 1)
    assert k.last == Decimal("51010000") and k.bid == Decimal("51000000")
    assert ws.parse_frame(json.dumps(KORBIT_BOOK | {"symbol": "eth_krw"}), 1) == []


COINONE_BOOK = {"response_type": "DATA", "channel": "ORDERBOOK", "data": {
    "quote_currency": "KRW", "target_currency": "BTC", "timestamp": 1705288918649, "id": "1705288918649001",
    "asks": [{"price": "58412000", "qty": "0.59919807"}], "bids": [{"price": "58292000", "qty": "0.1045"}]}}
COINONE_TRADE = {"response_type": "DATA", "channel": "TRADE", "data": {
    "quote_currency": "KRW", "target_currency": "BTC", "id": "1705303667916001", "timestamp": 1705303667916,
    "price": "58490000", "qty": "0.0008", "is_seller_maker": False}}
COINONE_TICKER = {"response_type": "DATA", "channel": "TICKER", "data": {
    "quote_currency": "KRW", "target_currency": "BTC", "timestamp": 1705301117198, "quote_volume": "19521465345.504",
    "target_volume": "334.81445168", "high": "58710000", "low": "57276000", "first": "57293000", "last": "58532000",
    "volume_power": "100", "ask_best_price": "58537000", "ask_best_qty": "0.1961", "bid_best_price": "58532000",
    "bid_best_qty": "0.00009258", "id": "1705301117198001"}}


def test_coinone_frames_keepalive_and_errors() -> None:
    ws = ws_adapter("coinone")()
    ws.remember(["BTC-KRW"])
    assert ws.keepalive.message == '{"request_type":"PING"}'
    msgs = [json.loads(m) for m in ws.subscribe_messages(["trade", "book"], ["BTC-KRW"])]
    assert {"request_type": "SUBSCRIBE", "channel": "ORDERBOOK", "topic": {"quote_currency": "KRW", "target_currency": "BTC"}} in msgs
    (b,) = ws.parse_frame(json.dumps(COINONE_BOOK), 1)
    assert b.snapshot and b.bids == [(Decimal("58292000"), Decimal("0.1045"))] and b.sequence == 1705288918649001
    (t,) = ws.parse_frame(json.dumps(COINONE_TRADE), 1)
    assert t.side == "sell" and t.price == Decimal("58490000") and t.trade_id == "1705303667916001"
    (k,) = ws.parse_frame(json.dumps(COINONE_TICKER), 1)
    assert (k.bid, k.ask, k.volume_24h) == (Decimal("58532000"), Decimal("58537000"), Decimal("334.81445168"))
    assert ws.parse_frame('{"response_type":"PONG"}', 1) == []
    (err,) = ws.parse_frame('{"response_type":"ERROR","error_code":160012,"message":"Invalid Topic"}', 1)
    assert err.kind == "error" and "160012" in err.message
    with pytest.raises(msgspec.DecodeError):
        ws.parse_frame('{"response_type":"DATA","channel":"TRADE","data":{"quote_currency":"KRW"}}', 1)


@pytest.mark.parametrize("venue", ["korbit", "coinone"])
def test_full_snapshot_venues_replace_the_book_on_every_message(venue: str) -> None:
    frames = {"korbit": [KORBIT_BOOK, KORBIT_BOOK | {"data": {"timestamp": 1, "bids": [{"price": "1", "qty": "1"}], "asks": [{"price": "2", "qty": "1"}]}}],
              "coinone": [COINONE_BOOK, {**COINONE_BOOK, "data": {**COINONE_BOOK["data"], "bids": [{"price": "1", "qty": "1"}], "asks": [{"price": "2", "qty": "1"}]}}]}
    feed = Feed(ws_adapter(venue), ["BTC-KRW"], ["book"], clock=lambda: 1)
    published = []
    for f in frames[venue]:
        published += feed.on_frame(0, json.dumps(f), 1).publish
    books = [p for p in published if isinstance(p, (BookSnapshot, BookDelta))]
    assert books and feed.stats.gaps == 0
    last_book = feed.books["BTC-KRW"].book
    assert last_book.best_bid() == (Decimal("1"), Decimal("1")) and last_book.best_ask() == (Decimal("2"), Decimal("1"))
