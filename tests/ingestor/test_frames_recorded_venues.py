"""Frames of Binance, Kraken, OKX and Bitfinex parse to the expected exbus objects.

Sources: ../shared/data/recorded (BINANCE.ws.1.0, KRAKEN.ws.4x.0, OKX.ws.1.0,
BITFINEX.ws.11.0; cryptofeed sample_data), and where a message type was not
recorded, the example in the venue's documentation (URL at each test).
"""

from __future__ import annotations

from decimal import Decimal as D

import msgspec
import pytest

from schemas.market import BBO, Ticker, Trade
from services.venues.binance.ws import BinanceWs
from services.venues.bitfinex.ws import BitfinexWs
from services.venues.kraken.ws import KrakenWs
from services.venues.okx.ws import OkxWs
from services.venues.wsbase import BookUpdate, StreamSequence, Subscribed, Subscription, TradeBackfill

MS = 1_000_000


def adapter(cls, *symbols):
    a = cls()
    a.remember(list(symbols))
    return a


# -- Binance ------------------------------------------------------------------------------

def test_binance_recorded_depth_diff_carries_update_ids():
    frame = ('{"stream":"nknusdt@depth@100ms","data":{"e":"depthUpdate","E":1633998512068,"s":"NKNUSDT",'
             '"U":499869750,"u":499869752,"b":[["0.35130000","6195.00000000"],["0.34750000","5548.00000000"]],"a":[]}}')
    (u,) = adapter(BinanceWs, "NKN-USDT").parse_frame(frame, 7)  # BINANCE.ws.1.0, line 2
    assert u == BookUpdate(
        symbol="NKN-USDT", snapshot=False, bids=[(D("0.35130000"), D("6195.00000000")), (D("0.34750000"), D("5548"))],
        asks=[], ts_event=1633998512068 * MS, ts_recv=7, sequence=499869752, first_sequence=499869750,
    )


def test_binance_recorded_agg_trade_and_book_ticker():
    a = adapter(BinanceWs, "NKN-USDT")
    (t,) = a.parse_frame(  # BINANCE.ws.1.0
        '{"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,'
        '"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}}', 9)
    assert t == Trade(venue="binance", symbol="NKN-USDT", ts_event=1633998523963 * MS, ts_recv=9,
                      trade_id="15683430", price=D("0.3528"), quantity=D("58"), side="buy")
    (b,) = a.parse_frame('{"stream":"nknusdt@bookTicker","data":{"u":499869768,"s":"NKNUSDT","b":"0.35210000",'
                         '"B":"672.00000000","a":"0.35260000","A":"3199.00000000"}}', 9)
    assert b == BBO(venue="binance", symbol="NKN-USDT", ts_event=9, ts_recv=9,
                    bid=D("0.3521"), bid_size=D("672"), ask=D("0.3526"), ask_size=D("3199"))


def test_binance_ticker_and_trade_from_docs():
    # https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams
    # (Individual Symbol Ticker Streams; Trade Streams), in the combined-stream wrapper
    a = adapter(BinanceWs, "BNB-BTC")
    (t,) = a.parse_frame(
        '{"stream":"bnbbtc@ticker","data":{"e":"24hrTicker","E":1672515782136,"s":"BNBBTC","p":"0.0015",'
        '"P":"250.00","w":"0.0018","x":"0.0009","c":"0.0025","Q":"10","b":"0.0024","B":"10","a":"0.0026",'
        '"A":"100","o":"0.0010","h":"0.0025","l":"0.0010","v":"10000","q":"18","O":0,"C":86400000,"F":0,'
        '"L":18150,"n":18151}}', 1)
    assert t == Ticker(venue="binance", symbol="BNB-BTC", ts_event=1672515782136 * MS, ts_recv=1,
                       bid=D("0.0024"), bid_size=D("10"), ask=D("0.0026"), ask_size=D("100"), last=D("0.0025"),
                       open_24h=D("0.0010"), high_24h=D("0.0025"), low_24h=D("0.0010"), volume_24h=D("10000"),
                       quote_volume_24h=D("18"))
    (tr,) = a.parse_frame(
        '{"stream":"bnbbtc@trade","data":{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001",'
        '"q":"100","T":1672515782136,"m":true,"M":true}}', 1)
    assert (tr.trade_id, tr.price, tr.quantity, tr.side) == ("12345", D("0.001"), D("100"), "sell")


def test_binance_subscribe_messages_and_recorded_subscriptions():
    a = adapter(BinanceWs, "BTC-USDT")
    (msg,) = a.subscribe_messages(["trade", "book", "bbo"], ["BTC-USDT"])
    assert msgspec.json.decode(msg) == {
        "method": "SUBSCRIBE", "params": ["btcusdt@aggTrade", "btcusdt@depth@100ms", "btcusdt@bookTicker"], "id": 1}
    url = "wss://stream.binance.com:9443/stream?streams=nknusdt@depth@100ms/runeeur@aggTrade/lrcbtc@kline_1m"
    assert a.recorded_subscriptions(url, []) == [Subscription("book", "NKN-USDT"), Subscription("trade", "RUNE-EUR")]


def test_binance_frames_of_unsubscribed_symbols_are_dropped():
    a = adapter(BinanceWs, "BTC-USDT")
    assert a.parse_frame('{"stream":"nknusdt@bookTicker","data":{"u":1,"s":"NKNUSDT","b":"1","B":"1",'
                         '"a":"2","A":"1"}}', 1) == []


# -- Kraken -------------------------------------------------------------------------------

def test_kraken_recorded_trade_ticker_and_book_update():
    a = adapter(KrakenWs, "XMR-USD", "SC-EUR")
    (t,) = a.parse_frame('[993,[["354.11000000","0.89594024","1618678142.557535","s","l",""]],"trade","XMR/USD"]', 5)
    assert t == Trade(venue="kraken", symbol="XMR-USD", ts_event=1618678142557535000, ts_recv=5,
                      trade_id="1618678142.557535-0", price=D("354.11"), quantity=D("0.89594024"), side="sell")
    (tk,) = a.parse_frame(  # KRAKEN.ws.49.0
        '[996,{"a":["355.24000000",27,"27.19106411"],"b":["354.32000000",6,"6.87748868"],'
        '"c":["355.23000000","1.20454360"],"v":["17858.85261084","33470.74135600"],'
        '"p":["355.33503706","349.16721624"],"t":[6481,10283],"l":["340.88000000","333.87000000"],'
        '"h":["368.00000000","368.00000000"],"o":["345.49000000","338.38000000"]},"ticker","XMR/USD"]', 5)
    assert (tk.bid, tk.bid_size, tk.ask, tk.last, tk.volume_24h, tk.open_24h) == (
        D("354.32"), D("6.87748868"), D("355.24"), D("355.23"), D("33470.741356"), D("338.38"))
    (u,) = a.parse_frame(  # KRAKEN.ws.50.0: both sides in one update, checksum on the last payload
        '[1920,{"a":[["0.042990","364630.28272081","1618678145.920470"]]},{"b":[["0.042990","0.00000000",'
        '"1618678145.920708"]],"c":"4105471083"},"book-1000","SC/EUR"]', 5)
    assert u == BookUpdate(symbol="SC-EUR", snapshot=False, asks=[(D("0.042990"), D("364630.28272081"))],
                           bids=[(D("0.042990"), D(0))], ts_event=1618678145920708000, ts_recv=5, checksum=4105471083)


def test_kraken_spread_from_docs_and_subscription_status():
    # https://docs.kraken.com/api/docs/websocket-v1/spread
    a = adapter(KrakenWs, "BTC-USD")
    (b,) = a.parse_frame('[0,["5698.40000","5700.00000","1542057299.545897","1.01234567","0.98765432"],'
                         '"spread","XBT/USD"]', 3)
    assert b == BBO(venue="kraken", symbol="BTC-USD", ts_event=1542057299545897000, ts_recv=3,
                    bid=D("5698.4"), bid_size=D("1.01234567"), ask=D("5700"), ask_size=D("0.98765432"))
    assert a.parse_frame('{"channelID":1664,"channelName":"book-1000","event":"subscriptionStatus",'
                         '"pair":"XBT/USD","status":"subscribed","subscription":{"depth":1000,"name":"book"}}', 3
                         ) == [Subscribed("book", "BTC-USD")]
    assert a.parse_frame('{"event":"heartbeat"}', 3) == []
    assert msgspec.json.decode(a.subscribe_messages(["book"], ["BTC-USD"])[0]) == {
        "event": "subscribe", "pair": ["XBT/USD"], "subscription": {"name": "book", "depth": 100}}


# -- OKX ----------------------------------------------------------------------------------

def test_okx_recorded_trade_ticker_and_book():
    a = adapter(OkxWs, "BTC-USDT")
    (t,) = a.parse_frame('{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
                         '"tradeId":"338476307","px":"30236","sz":"0.0002","side":"buy","ts":"1652459224818"}]}', 4)
    assert t == Trade(venue="okx", symbol="BTC-USDT", ts_event=1652459224818 * MS, ts_recv=4,
                      trade_id="338476307", price=D("30236"), quantity=D("0.0002"), side="buy")
    (tk,) = a.parse_frame(  # OKX.ws.1.0
        '{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instType":"SPOT","instId":"BTC-USDT",'
        '"last":"30236","lastSz":"0.0002","askPx":"30228.7","askSz":"1.55896972","bidPx":"30228.6",'
        '"bidSz":"0.23393","open24h":"29700.4","high24h":"31073","low24h":"28020.3","sodUtc0":"29028.8",'
        '"sodUtc8":"30337.7","volCcy24h":"525802090.62716611","vol24h":"17602.13085371","ts":"1652459224956"}]}', 4)
    assert tk == Ticker(venue="okx", symbol="BTC-USDT", ts_event=1652459224956 * MS, ts_recv=4, bid=D("30228.6"),
                        bid_size=D("0.23393"), ask=D("30228.7"), ask_size=D("1.55896972"), last=D("30236"),
                        open_24h=D("29700.4"), high_24h=D("31073"), low_24h=D("28020.3"),
                        volume_24h=D("17602.13085371"), quote_volume_24h=D("525802090.62716611"))
    assert a.parse_frame("pong", 4) == []


def test_okx_books_update_with_seq_ids_and_bbo_tbt_from_docs():
    # https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-channel (push data example)
    a = adapter(OkxWs, "BTC-USDT")
    (u,) = a.parse_frame(
        '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[["8476.98","415","0",'
        '"13"],["8477","7","0","2"]],"bids":[["8476.97","256","0","12"]],"ts":"1597026383085",'
        '"checksum":-855196043,"prevSeqId":123456,"seqId":123457}]}', 2)
    assert (u.sequence, u.prev_sequence, u.checksum, u.snapshot) == (123457, 123456, -855196043, False)
    assert u.asks == [(D("8476.98"), D("415")), (D("8477"), D("7"))]
    # https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-best-bid-offer-channel (instId changed)
    (b,) = a.parse_frame('{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT"},"data":[{"asks":[["111.06","55154",'
                         '"0","2"]],"bids":[["111.05","57745","0","2"]],"ts":"1670324386802","seqId":363996337}]}', 2)
    assert (b.bid, b.bid_size, b.ask, b.ask_size) == (D("111.05"), D("57745"), D("111.06"), D("55154"))
    (n,) = a.parse_frame('{"event":"error","code":"60012","msg":"Invalid request"}', 2)
    assert n.kind == "error" and "60012" in n.message


def test_okx_recorded_subscriptions_keep_spot_only():
    sent = ['{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USD-220527"},'
            '{"channel":"books","instId":"BTC-USDT"},{"channel":"trades","instId":"UNI-USD-SWAP"}]}']  # OKX.ws.1.0
    assert OkxWs().recorded_subscriptions("wss://ws.okx.com:8443/ws/v5/public", sent) == [
        Subscription("book", "BTC-USDT")]


# -- Bitfinex -----------------------------------------------------------------------------

def test_bitfinex_recorded_ticker_book_and_sequence():
    a = adapter(BitfinexWs, "BFT-USD", "DOG-USD")
    a.parse_frame('{"event":"subscribed","channel":"ticker","chanId":232949,"symbol":"tBFTUSD","pair":"BFTUSD"}', 1)
    a.parse_frame('{"event":"subscribed","channel":"book","chanId":225206,"symbol":"tDOGUSD","prec":"P0",'
                  '"freq":"F0","len":"100","pair":"DOGUSD"}', 1)
    seq, tk = a.parse_frame('[232949,[0.068965,60157.36709703,0.0774,48578.50804052,0.001969,0.0262,0.076989,'
                            '101459.39453471,0.0828,0.068961],1]', 2)  # BITFINEX.ws.11.0
    assert seq == StreamSequence(1)
    assert tk == Ticker(venue="bitfinex", symbol="BFT-USD", ts_event=2, ts_recv=2, bid=D("0.068965"),
                        bid_size=D("60157.36709703"), ask=D("0.0774"), ask_size=D("48578.50804052"),
                        last=D("0.076989"), open_24h=D("0.075020"), high_24h=D("0.0828"), low_24h=D("0.068961"),
                        volume_24h=D("101459.39453471"))
    _, snap = a.parse_frame('[225206,[[277520,1,0.00383141],[277510,1,0.027],[278200,2,-1.70239008]],17]', 3)
    assert snap.snapshot and snap.bids == [(D("277520"), D("0.00383141")), (D("277510"), D("0.027"))]
    assert snap.asks == [(D("278200"), D("1.70239008"))]
    seq, delete = a.parse_frame("[225206,[215350,0,1],18]", 4)  # BITFINEX.ws.11.0: count 0, amount 1: bid gone
    assert seq == StreamSequence(18) and delete.bids == [(D("215350"), D(0))] and not delete.snapshot
    assert a.parse_frame('[225206,"hb",19]', 5) == [StreamSequence(19)]


def test_bitfinex_trades_and_checksum_from_docs():
    # https://docs.bitfinex.com/reference/ws-public-trades and .../ws-websocket-checksum
    a = adapter(BitfinexWs, "BTC-USD")
    a.parse_frame('{"event":"subscribed","channel":"trades","chanId":17470,"symbol":"tBTCUSD","pair":"BTCUSD"}', 1)
    a.parse_frame('{"event":"subscribed","channel":"book","chanId":17471,"symbol":"tBTCUSD","prec":"P0",'
                  '"freq":"F0","len":"25","pair":"BTCUSD"}', 1)
    _, backfill = a.parse_frame('[17470,[[401597395,1574694478808,0.005,7245.3],'
                                '[401597394,1574694478000,-0.1,7245.2]],1]', 2)
    assert isinstance(backfill, TradeBackfill) and [t.trade_id for t in backfill.trades] == ["401597394", "401597395"]
    _, t = a.parse_frame('[17470,"te",[401597396,1574694479000,-0.25,7245.1],2]', 3)
    assert t == Trade(venue="bitfinex", symbol="BTC-USD", ts_event=1574694479000 * MS, ts_recv=3,
                      trade_id="401597396", price=D("7245.1"), quantity=D("0.25"), side="sell")
    assert a.parse_frame('[17470,"tu",[401597396,1574694479000,-0.25,7245.1],3]', 4) == [StreamSequence(3)]
    _, cs = a.parse_frame('[17471,"cs",-1175357890,4]', 5)
    assert cs.checksum == -1175357890 and cs.bids == [] and cs.asks == []
    assert msgspec.json.decode(a.unsubscribe_messages(["book"], ["BTC-USD"])[0]) == {
        "event": "unsubscribe", "chanId": 17471}
    (notice,) = a.parse_frame('{"event":"info","code":20051,"msg":"Stopping. Please try to reconnect"}', 6)
    assert notice.kind == "reconnect"


@pytest.mark.parametrize("symbol,venue_symbol", [("BTC-USD", "tBTCUSD"), ("BTC-USDT", "tBTCUST"),
                                                  ("TESTBTC-TESTUSD", "tTESTBTC:TESTUSD")])
def test_bitfinex_symbols(symbol, venue_symbol):
    from services.venues.bitfinex.ws import exbus_symbol

    assert BitfinexWs().venue_symbol(symbol) == venue_symbol
    assert exbus_symbol(venue_symbol) == symbol


def test_bitfinex_conf_enables_sequence_numbers_and_checksums():
    (conf,) = BitfinexWs().connect_messages()
    assert msgspec.json.decode(conf) == {"event": "conf", "flags": 65536 | 131072}


# -- public trades over REST (backfill after a disconnect) --------------------------------

def test_binance_agg_trades_backfill_from_docs():
    # https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints (aggTrades)
    a = adapter(BinanceWs, "LTC-BTC")
    url = a.trades_backfill_url("LTC-BTC", 1498793709000 * MS, 1498793719000 * MS)
    assert url == ("https://api.binance.com/api/v3/aggTrades?symbol=LTCBTC&startTime=1498793709000"
                   "&endTime=1498793719000&limit=1000")
    (t,) = a.parse_trades_backfill("LTC-BTC", b'[{"a":26129,"p":"0.01633102","q":"4.70443515","f":27781,'
                                   b'"l":27781,"T":1498793709153,"m":true,"M":true}]', 5)
    assert t == Trade(venue="binance", symbol="LTC-BTC", ts_event=1498793709153 * MS, ts_recv=5, trade_id="26129",
                      price=D("0.01633102"), quantity=D("4.70443515"), side="sell")


def test_kraken_trades_backfill_from_docs():
    # https://docs.kraken.com/api/docs/rest-api/get-recent-trades (response example)
    a = adapter(KrakenWs, "BTC-USD")
    assert a.trades_backfill_url("BTC-USD", 1616663618 * 10**9, 0).endswith("/0/public/Trades?pair=XBTUSD&since=1616663618")
    body = (b'{"error":[],"result":{"XXBTZUSD":[["30243.40000","0.34507674",1616663113.3398,"s","m","",121000],'
            b'["30243.30000","0.00376960",1616663113.3461,"b","l","",121001]],"last":"1616663113346168009"}}')
    first, second = a.parse_trades_backfill("BTC-USD", body, 9)
    assert first == Trade(venue="kraken", symbol="BTC-USD", ts_event=1616663113339800000, ts_recv=9, trade_id="121000",
                          price=D("30243.4"), quantity=D("0.34507674"), side="sell")
    assert (second.trade_id, second.side) == ("121001", "buy")
    with pytest.raises(ValueError, match="EQuery:Unknown asset pair"):
        a.parse_trades_backfill("BTC-USD", b'{"error":["EQuery:Unknown asset pair"]}', 9)


def test_okx_history_trades_backfill_from_docs():
    # https://www.okx.com/docs-v5/en/#order-book-trading-market-data-get-trades-history (response example)
    a = adapter(OkxWs, "BTC-USDT")
    assert a.trades_backfill_url("BTC-USDT", 0, 1654161646974 * MS).endswith(
        "/api/v5/market/history-trades?instId=BTC-USDT&type=2&after=1654161646975&limit=100")
    body = (b'{"code":"0","msg":"","data":[{"instId":"BTC-USDT","side":"sell","sz":"0.00001","px":"29963.2",'
            b'"tradeId":"242720720","ts":"1654161646974"},{"instId":"BTC-USDT","side":"buy","sz":"0.00001",'
            b'"px":"29964.1","tradeId":"242720719","ts":"1654161641568"}]}')
    older, newer = a.parse_trades_backfill("BTC-USDT", body, 3)
    assert (older.trade_id, older.ts_event, newer.trade_id, newer.side) == ("242720719", 1654161641568 * MS,
                                                                            "242720720", "sell")


def test_binance_raw_payloads_of_the_ws_endpoint_parse_too():
    # the same recorded payloads (BINANCE.ws.1.0) without the combined-stream wrapper, as /ws sends them
    a = adapter(BinanceWs, "NKN-USDT")
    (b,) = a.parse_frame('{"u":499869768,"s":"NKNUSDT","b":"0.35210000","B":"672.00000000","a":"0.35260000",'
                         '"A":"3199.00000000"}', 1)
    assert isinstance(b, BBO) and b.ask == D("0.3526")
    (u,) = a.parse_frame('{"e":"depthUpdate","E":1633998512568,"s":"NKNUSDT","U":499869753,"u":499869754,'
                         '"b":[["0.35170000","4265.00000000"]],"a":[["0.35290000","10968.00000000"]]}', 1)
    assert (u.first_sequence, u.sequence) == (499869753, 499869754)
    assert a.parse_frame('{"result":null,"id":1}', 1) == []


def test_an_endpoint_override_without_a_path_keeps_the_venues_path():
    assert BinanceWs("ws://127.0.0.1:8080").url == "ws://127.0.0.1:8080/stream"  # e.g. the simulator
    assert OkxWs("ws://127.0.0.1:8080/").url == "ws://127.0.0.1:8080/ws/v5/public"
    assert BinanceWs("ws://127.0.0.1:8080/ws").url == "ws://127.0.0.1:8080/ws"
    assert KrakenWs().url == "wss://ws.kraken.com"
