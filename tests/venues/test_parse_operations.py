"""Every operation of every venue parses the venue's documented reply into schemas objects
with exact decimals. Each body below is the response example of the venue's API
reference for that endpoint (trimmed to the fields exbus reads); the source is named per
row. Binance and Upbit are also exercised end to end against the simulator
(test_rest_binance.py, test_rest_upbit.py); recorded payloads are parsed in the
per-venue test files."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Callable

import pytest

from schemas import CancelOrder, PlaceOrder
from schemas.market import BookSnapshot, Ticker
from schemas.queries import (
    Balance, BalanceQuery, Fill, OpenOrdersQuery, OrderBookQuery, OrderInfo, OrderStatusQuery, TickerQuery,
    TradeHistoryQuery,
)
from services.venues import rest_adapter
from services.venues.base import CancelAccepted

D = Decimal


def place(venue: str, symbol: str, **kw: Any) -> PlaceOrder:
    base = dict(command_id="c1", venue=venue, account="main", symbol=symbol, client_order_id="c1", side="buy",
                order_type="limit", quantity=D("1"), price=D("100"))
    return PlaceOrder(**(base | kw))


def cancel(venue: str, symbol: str) -> CancelOrder:
    return CancelOrder(command_id="c2", venue=venue, account="main", symbol=symbol, client_order_id="c1", venue_order_id="o1")


CASES: list[tuple[str, str, Any, Any, Callable[[Any], bool]]] = [
    # --- Upbit: docs.upbit.com "시세 현재가(Ticker) 조회" (GET /v1/ticker) response example; the rest of Upbit's
    #     operations run against the simulator in test_rest_upbit.py ---
    ("upbit", "ticker", TickerQuery(symbol="BTC-KRW"),
     [{"market": "KRW-BTC", "trade_date": "20180418", "trade_time": "102340", "trade_date_kst": "20180418",
       "trade_time_kst": "192340", "trade_timestamp": 1524047020000, "opening_price": 8450000, "high_price": 8679000,
       "low_price": 8445000, "trade_price": 8621000, "prev_closing_price": 8450000, "change": "RISE",
       "change_price": 171000, "change_rate": 0.0202366864, "signed_change_price": 171000,
       "signed_change_rate": 0.0202366864, "trade_volume": 0.02467802, "acc_trade_price": 108024804862.58254,
       "acc_trade_price_24h": 232702901371.09309, "acc_trade_volume": 12603.53386105,
       "acc_trade_volume_24h": 27181.31137002, "highest_52_week_price": 28885000, "highest_52_week_date": "2018-01-06",
       "lowest_52_week_price": 4175000, "lowest_52_week_date": "2017-09-25", "timestamp": 1524047026072}],
     lambda t: isinstance(t, Ticker) and t.last == D("8621000") and t.volume_24h == D("27181.31137002")
     # (this body passes through a Python float: the 17th digit of the quote volume is the float's)
     and t.quote_volume_24h == D(repr(232702901371.09309)) and t.ts_event == 1524047026072 * 10**6),
    # --- Kraken: docs.kraken.com/api-reference (Get Ticker Information, Get Order Book, Add Order,
    #     Get Account Balance (extended), Get Trades History) ---
    ("kraken", "ticker", TickerQuery(symbol="BTC-USD"),
     {"error": [], "result": {"XXBTZUSD": {"a": ["30300.10000", "1", "1.000"], "b": ["30300.00000", "1", "1.000"],
      "c": ["30303.20000", "0.00067643"], "v": ["4083.67001100", "4412.73601799"], "p": ["30706.77771", "30689.13205"],
      "t": [34619, 38907], "l": ["29868.30000", "29868.30000"], "h": ["31631.00000", "31631.00000"], "o": "30502.80000"}}},
     lambda t: isinstance(t, Ticker) and t.last == D("30303.20000") and t.bid == D("30300.00000") and t.volume_24h == D("4412.73601799")),
    ("kraken", "orderbook", OrderBookQuery(symbol="BTC-USD", depth=2),
     {"error": [], "result": {"XXBTZUSD": {"asks": [["30384.10000", "2.059", 1688671659], ["30387.90000", "1.500", 1688671380]],
      "bids": [["30297.00000", "1.115", 1688671636], ["30296.70000", "2.002", 1688671674]]}}},
     lambda b: isinstance(b, BookSnapshot) and b.asks[0].price == D("30384.10000") and b.bids[1].size == D("2.002")),
    ("kraken", "place_order", place("kraken", "BTC-USD", price=D("27500")),
     {"error": [], "result": {"descr": {"order": "buy 1.25000000 XBTUSD @ limit 27500.0"}, "txid": ["OU22CG-KLAF2-FWUDD7"]}},
     lambda o: isinstance(o, OrderInfo) and o.venue_order_id == "OU22CG-KLAF2-FWUDD7" and o.state == "open"),
    ("kraken", "balance", BalanceQuery(),
     {"error": [], "result": {"ZUSD": {"balance": "25435.21", "hold_trade": "8249.76"}, "XXBT": {"balance": "1.2435", "hold_trade": "0.8423"}}},
     lambda bs: {b.asset: (b.free, b.locked) for b in bs} == {"USD": (D("17185.45"), D("8249.76")), "BTC": (D("0.4012"), D("0.8423"))}),
    ("kraken", "trade_history", TradeHistoryQuery(symbol="BTC-USD"),
     {"error": [], "result": {"count": 1, "trades": {"THVRQM-33VKH-UCI7BS": {"ordertxid": "OQCLML-BW3P3-BUCMWZ",
      "postxid": "TKH2SE-M7IF5-CFI7LT", "pair": "XXBTZUSD", "time": 1688667796.8802, "type": "buy", "ordertype": "limit",
      "price": "30010.00000", "cost": "600.20000", "fee": "0.00000", "vol": "0.02000000", "margin": "0.00000", "misc": "", "maker": True}}}},
     lambda fs: [(f.trade_id, f.price, f.quantity, f.liquidity) for f in fs] == [("THVRQM-33VKH-UCI7BS", D("30010.00000"), D("0.02000000"), "maker")]),
    # --- OKX: okx.com/docs-v5 (Get ticker, Get order book, Place order, Get balance, Get transaction details) ---
    ("okx", "ticker", TickerQuery(symbol="BTC-USDT"),
     {"code": "0", "msg": "", "data": [{"instType": "SPOT", "instId": "BTC-USDT", "last": "9999.99", "lastSz": "0.1",
      "askPx": "9999.99", "askSz": "11", "bidPx": "8888.88", "bidSz": "5", "open24h": "9000", "high24h": "10000",
      "low24h": "8888.88", "volCcy24h": "2222", "vol24h": "2222", "sodUtc0": "0.1", "sodUtc8": "0.1", "ts": "1597026383085"}]},
     lambda t: t.last == D("9999.99") and t.ask_size == D("11") and t.ts_event == 1597026383085 * 10**6),
    ("okx", "orderbook", OrderBookQuery(symbol="BTC-USDT", depth=1),
     {"code": "0", "msg": "", "data": [{"asks": [["41006.8", "0.60038921", "0", "1"]], "bids": [["41006.3", "0.30178218", "0", "2"]],
      "ts": "1629966436396"}]},
     lambda b: b.asks[0].size == D("0.60038921") and b.bids[0].price == D("41006.3")),
    ("okx", "place_order", place("okx", "BTC-USDT"),
     {"code": "0", "msg": "", "data": [{"clOrdId": "c1", "ordId": "312269865356374016", "tag": "", "ts": "1695190491421", "sCode": "0", "sMsg": ""}]},
     lambda o: o.venue_order_id == "312269865356374016" and o.client_order_id == "c1"),
    ("okx", "open_orders", OpenOrdersQuery(symbol="BTC-USDT"),
     {"code": "0", "msg": "", "data": [{"instId": "BTC-USDT", "ordId": "301835739059335168", "clOrdId": "", "px": "59200",
      "sz": "1", "ordType": "limit", "side": "buy", "state": "live", "accFillSz": "0", "avgPx": "", "cTime": "1621910749815", "uTime": "1621910749815"}]},
     lambda os: [(o.venue_order_id, o.state, o.client_order_id) for o in os] == [("301835739059335168", "open", None)]),
    ("okx", "balance", BalanceQuery(),
     {"code": "0", "msg": "", "data": [{"details": [{"ccy": "USDT", "availBal": "4834.3", "frozenBal": "0", "cashBal": "4834.3"},
      {"ccy": "BTC", "availBal": "0.5", "frozenBal": "0.1", "cashBal": "0.6"}]}]},
     lambda bs: {b.asset: b.locked for b in bs} == {"USDT": D("0"), "BTC": D("0.1")}),
    ("okx", "trade_history", TradeHistoryQuery(symbol="BTC-USDT"),
     {"code": "0", "msg": "", "data": [{"instType": "SPOT", "instId": "BTC-USDT", "tradeId": "123", "ordId": "312269865356374016",
      "clOrdId": "b16", "billId": "1111", "tag": "", "fillPx": "9999.99", "fillSz": "0.01", "side": "buy", "posSide": "net",
      "execType": "M", "feeCcy": "BTC", "fee": "-0.00001", "ts": "1597026383085"}]},
     lambda fs: fs[0].fee == D("0.00001") and fs[0].liquidity == "maker" and fs[0].client_order_id == "b16"),
    # --- Bitfinex: docs.bitfinex.com (Ticker, Book, Submit Order, Cancel Order, Wallets, Trades) ---
    ("bitfinex", "ticker", TickerQuery(symbol="BTC-USD"),
     [10645, 73.93854271, 10647, 75.22266119, 731.60645389, 0.0738, 10644.00645389, 14480.89849423, 10766, 9889.1449809],
     lambda t: t.bid == D("10645") and t.last == D("10644.00645389") and t.volume_24h == D("14480.89849423")),
    ("bitfinex", "orderbook", OrderBookQuery(symbol="BTC-USD", depth=25),
     [[8744.9, 2, 0.45603413], [8744.8, 1, 0.25], [8745, 1, -0.5]],
     lambda b: [lv.price for lv in b.bids] == [D("8744.9"), D("8744.8")] and b.asks[0].size == D("0.5")),
    ("bitfinex", "place_order", place("bitfinex", "BTC-USD"),
     [1567590617442, "on-req", None, None, [[30630633526, None, 1567590617439, "tBTCUSD", 1567590617439, 1567590617439,
      1, 1, "EXCHANGE LIMIT", None, None, None, 0, "ACTIVE", None, None, 100, 0, 0, 0, None, None, None, 0, 0, None, None,
      None, "API>BFX", None, None, {}]], None, "SUCCESS", "Submitting 1 orders."],
     lambda o: o.venue_order_id == "30630633526" and o.state == "open" and o.quantity == D("1")),
    ("bitfinex", "cancel_order", cancel("bitfinex", "BTC-USD"),
     [1568711312683, "oc-req", None, None, [30937950333, None, 1568711312683, "tBTCUSD", 1568711312683, 1568711312683,
      0.001, 0.001, "LIMIT", None, None, None, 0, "ACTIVE", None, None, 15, 0, 0, 0, None, None, None, 0, 0, None, None,
      None, "API>BFX", None, None, None], None, "SUCCESS", "Submitted for cancellation; waiting for confirmation (ID: 30937950333)."],
     lambda c: isinstance(c, CancelAccepted) and c.venue_order_id == "30937950333"),
    ("bitfinex", "open_orders", OpenOrdersQuery(symbol="BTC-USD"),  # Retrieve Orders: [ID, GID, CID, SYMBOL, ...]
     [[1185815098, None, 1612345678901, "tBTCUSD", 1573476747887, 1573476747887, -0.25, -0.5, "EXCHANGE LIMIT", None,
       None, None, 0, "PARTIALLY FILLED @ 7000.0(-0.25)", None, None, 7000, 7000, 0, 0, None, None, None, 0, 0, None,
       None, None, "API>BFX", None, None, None]],
     lambda os: (os[0].venue_order_id, os[0].side, os[0].quantity, os[0].filled_quantity, os[0].state, os[0].symbol)
     == ("1185815098", "sell", D("0.5"), D("0.25"), "partially_filled", "BTC-USD")),
    ("bitfinex", "balance", BalanceQuery(),
     [["exchange", "UST", 19788.6529257, 0, 19788.6529257, "Exchange deposit", None], ["margin", "USD", 10, 0, 10, None, None]],
     lambda bs: [(b.asset, b.free) for b in bs] == [("USDT", D("19788.6529257"))]),
    ("bitfinex", "trade_history", TradeHistoryQuery(symbol="BTC-USD"),
     [[402088407, "tETHUST", 1574963975602, 34938060782, -0.2, 153.57, "MARKET", 0, -1, -0.061668, "USD"]],
     lambda fs: (fs[0].side, fs[0].quantity, fs[0].fee, fs[0].liquidity) == ("sell", D("0.2"), D("0.061668"), "taker")),
    # --- Coinbase Advanced Trade: docs.cdp.coinbase.com (Get Public Market Trades, Create Order, Get Order,
    #     List Orders, List Accounts, List Fills) ---
    ("coinbase", "ticker", TickerQuery(symbol="BTC-USD"),
     {"trades": [{"trade_id": "34b080bf-fcfd-445a-832b-46b5ddc65601", "product_id": "BTC-USD", "price": "140.91",
      "size": "4", "time": "2021-05-31T09:59:59.000Z", "side": "BUY"}], "best_bid": "291.13", "best_ask": "292.40"},
     lambda t: t.last == D("140.91") and t.bid == D("291.13") and t.ask == D("292.40")),
    ("coinbase", "place_order", place("coinbase", "BTC-USD"),
     {"success": True, "success_response": {"order_id": "11111-00000-000000", "product_id": "BTC-USD", "side": "BUY",
      "client_order_id": "c1"}, "order_configuration": {}},
     lambda o: o.venue_order_id == "11111-00000-000000"),
    ("coinbase", "order_status", OrderStatusQuery(symbol="BTC-USD", client_order_id="c1", venue_order_id="0000-000000-000000"),
     {"order": {"order_id": "0000-000000-000000", "product_id": "BTC-USD", "client_order_id": "c1", "side": "BUY",
      "order_configuration": {"limit_limit_gtc": {"base_size": "0.001", "limit_price": "10000.00", "post_only": False}},
      "status": "FILLED", "filled_size": "0.001", "average_filled_price": "9999.50", "order_type": "LIMIT",
      "created_time": "2021-05-31T09:59:59.000Z"}},
     lambda o: (o.state, o.filled_quantity, o.average_price, o.price) == ("filled", D("0.001"), D("9999.50"), D("10000.00"))),
    ("coinbase", "open_orders", OpenOrdersQuery(symbol="BTC-USD"),
     {"orders": [{"order_id": "a1", "product_id": "BTC-USD", "client_order_id": "x", "side": "SELL", "status": "OPEN",
      "filled_size": "0", "order_type": "LIMIT", "order_configuration": {"limit_limit_gtc": {"base_size": "2", "limit_price": "50000"}}}],
      "has_next": False},
     lambda os: [(o.venue_order_id, o.side, o.state) for o in os] == [("a1", "sell", "open")]),
    ("coinbase", "balance", BalanceQuery(),
     {"accounts": [{"uuid": "8bfc20d7", "currency": "BTC", "available_balance": {"value": "1.23", "currency": "BTC"},
      "hold": {"value": "0.5", "currency": "BTC"}}], "has_next": False},
     lambda bs: [(b.asset, b.free, b.locked) for b in bs] == [("BTC", D("1.23"), D("0.5"))]),
    ("coinbase", "trade_history", TradeHistoryQuery(symbol="BTC-USD"),
     {"fills": [{"entry_id": "22222", "trade_id": "1111", "order_id": "0000", "trade_time": "2021-05-31T09:59:59.000Z",
      "trade_type": "FILL", "price": "10000.00", "size": "0.001", "commission": "1.25", "product_id": "BTC-USD",
      "liquidity_indicator": "MAKER", "side": "BUY"}]},
     lambda fs: (fs[0].trade_id, fs[0].fee, fs[0].liquidity) == ("1111", D("1.25"), "maker")),
    # --- Bithumb v1/v2: apidocs.bithumb.com (현재가, 호가, 주문하기, 주문 취소, 전체 계좌 조회) ---
    ("bithumb", "ticker", TickerQuery(symbol="BTC-KRW"),
     [{"market": "KRW-BTC", "trade_date": "20240404", "trade_time": "123456", "trade_timestamp": 1712201696000,
       "opening_price": 96000000, "high_price": 97000000, "low_price": 95000000, "trade_price": 96500000,
       "prev_closing_price": 96000000, "change": "RISE", "acc_trade_price_24h": 123456789012.5, "acc_trade_volume_24h": 1280.5,
       "timestamp": 1712201696500}],
     lambda t: t.venue == "bithumb" and t.last == D("96500000") and t.volume_24h == D("1280.5")),
    ("bithumb", "orderbook", OrderBookQuery(symbol="BTC-KRW", depth=1),
     [{"market": "KRW-BTC", "timestamp": 1712201696500, "total_ask_size": 1.5, "total_bid_size": 2.5,
       "orderbook_units": [{"ask_price": 96600000, "bid_price": 96500000, "ask_size": 0.0123, "bid_size": 0.3}]}],
     lambda b: b.asks[0].size == D("0.0123") and b.bids[0].price == D("96500000")),
    ("bithumb", "place_order", place("bithumb", "BTC-KRW"),
     {"uuid": "C0106000032400700021", "side": "bid", "ord_type": "limit", "price": "100", "state": "wait", "market": "KRW-BTC",
      "created_at": "2024-04-04T20:31:50+09:00", "volume": "1", "remaining_volume": "1", "executed_volume": "0",
      "trades_count": 0, "client_order_id": "c1"},
     lambda o: (o.venue_order_id, o.client_order_id, o.state) == ("C0106000032400700021", "c1", "open")),
    ("bithumb", "balance", BalanceQuery(),
     [{"currency": "KRW", "balance": "1000000.0", "locked": "0.0", "avg_buy_price": "0", "avg_buy_price_modified": False, "unit_currency": "KRW"}],
     lambda bs: [(b.asset, b.free) for b in bs] == [("KRW", D("1000000.0"))]),
    # --- Korbit: docs.korbit.co.kr (현재가 조회, 주문하기, 주문 취소하기, 미체결 주문 조회, 자산 현황, 최근 체결 내역 조회) ---
    ("korbit", "ticker", TickerQuery(symbol="BTC-KRW"),
     {"success": True, "data": [{"symbol": "btc_krw", "open": "77060000", "high": "79650000", "low": "76550000", "close": "77136000",
      "prevClose": "77060000", "priceChange": "76000", "priceChangePercent": "0.1", "volume": "48.73739983",
      "quoteVolume": "3785149733.32633", "bestBidPrice": "77136000", "bestAskPrice": "77193000", "lastTradedAt": 1725525721041}]},
     lambda t: t.last == D("77136000") and t.ask == D("77193000") and t.volume_24h == D("48.73739983")),
    ("korbit", "place_order", place("korbit", "BTC-KRW"), {"success": True, "data": {"orderId": 1234}},
     lambda o: o.venue_order_id == "1234"),
    ("korbit", "cancel_order", cancel("korbit", "BTC-KRW"), {"success": True},
     lambda c: isinstance(c, CancelAccepted) and c.client_order_id == "c1"),
    ("korbit", "open_orders", OpenOrdersQuery(symbol="BTC-KRW"),
     {"success": True, "data": [{"orderId": 1235, "orderType": "limit", "side": "sell", "price": "5000", "qty": "10",
      "filledQty": "0", "filledAmt": "0", "createdAt": 1700000000000, "status": "open"}]},
     lambda os: [(o.venue_order_id, o.side, o.state) for o in os] == [("1235", "sell", "open")]),
    ("korbit", "balance", BalanceQuery(),
     {"success": True, "data": [{"currency": "btc", "balance": "100", "available": "70", "tradeInUse": "20",
      "withdrawalInUse": "10", "avgPrice": "5000"}]},
     lambda bs: [(b.asset, b.free, b.locked) for b in bs] == [("BTC", D("70"), D("30"))]),
    ("korbit", "trade_history", TradeHistoryQuery(symbol="BTC-KRW"),
     {"success": True, "data": [{"symbol": "btc_krw", "tradeId": 52, "orderId": 382312, "side": "buy", "price": "5000",
      "qty": "10", "amt": "50000", "tradedAt": 1700000000000, "isTaker": True, "feeCurrency": "krw", "feeQty": "50"}]},
     lambda fs: (fs[0].trade_id, fs[0].fee, fs[0].fee_asset, fs[0].liquidity) == ("52", D("50"), "KRW", "taker")),
    # --- Coinone: docs.coinone.co.kr (Ticker, Orderbook, 매수/매도 주문, 주문 취소, 미체결 주문 조회, 잔고 조회, 체결 주문 조회) ---
    ("coinone", "ticker", TickerQuery(symbol="BTC-KRW"),
     {"result": "success", "error_code": "0", "server_time": 1416895635000, "tickers": [{"quote_currency": "KRW",
      "target_currency": "BTC", "timestamp": 1499341142000, "high": "3845000.0", "low": "3819000.0", "first": "3825000.0",
      "last": "3833000.0", "quote_volume": "10000.0", "target_volume": "163.3828", "best_asks": [{"price": "1200.0", "qty": "1.234"}],
      "best_bids": [{"price": "1000.0", "qty": "0.123"}], "id": "1499341142000001"}]},
     lambda t: t.last == D("3833000.0") and t.bid == D("1000.0") and t.ask_size == D("1.234")),
    ("coinone", "orderbook", OrderBookQuery(symbol="BTC-KRW", depth=1),
     {"result": "success", "error_code": "0", "timestamp": 1644458460000, "id": "1644458460000001", "quote_currency": "KRW",
      "target_currency": "BTC", "order_book_unit": "0.0", "bids": [{"price": "52000000", "qty": "0.0125"}],
      "asks": [{"price": "52100000", "qty": "0.2"}]},
     lambda b: b.venue_sequence == 1644458460000001 and b.bids[0].size == D("0.0125")),
    ("coinone", "place_order", place("coinone", "BTC-KRW"),
     {"result": "success", "error_code": "0", "order_id": "0e30219d-1e4d-11e9-9ec7-00e04c3600d1"},
     lambda o: o.venue_order_id == "0e30219d-1e4d-11e9-9ec7-00e04c3600d1"),
    ("coinone", "cancel_order", cancel("coinone", "BTC-KRW"),
     {"result": "success", "error_code": "0", "order_id": "0e30219d-1e4d-11e9-9ec7-00e04c3600d1", "price": "5000000",
      "qty": "1", "remain_qty": "0.6", "side": "BUY", "original_qty": "1", "traded_qty": "0.4", "canceled_qty": "0.6",
      "fee": "0", "fee_rate": "0.002", "avg_price": "5000000", "canceled_at": 1633658411000},
     lambda o: (o.state, o.filled_quantity, o.side) == ("canceled", D("0.4"), "buy")),
    ("coinone", "open_orders", OpenOrdersQuery(symbol="BTC-KRW"),
     {"result": "success", "error_code": "0", "active_orders": [{"order_id": "0e30219d", "type": "LIMIT", "quote_currency": "KRW",
      "target_currency": "BTC", "price": "5000000", "remain_qty": "1", "original_qty": "1", "executed_qty": "0",
      "side": "SELL", "fee": "0", "fee_rate": "0.002", "average_executed_price": "0", "ordered_at": 1633658411000, "user_order_id": "u1"}]},
     lambda os: [(o.venue_order_id, o.client_order_id, o.side) for o in os] == [("0e30219d", "u1", "sell")]),
    ("coinone", "balance", BalanceQuery(),
     {"result": "success", "error_code": "0", "balances": [{"available": "100000", "limit": "5000", "average_price": "0", "currency": "KRW"},
      {"available": "0", "limit": "0", "average_price": "0", "currency": "ETH"}]},
     lambda bs: [(b.asset, b.free, b.locked) for b in bs] == [("KRW", D("100000"), D("5000"))]),
    ("coinone", "trade_history", TradeHistoryQuery(symbol="BTC-KRW"),
     {"result": "success", "error_code": "0", "completed_orders": [{"trade_id": "0e2bb80f", "order_id": "0e2b9627",
      "quote_currency": "KRW", "target_currency": "BTC", "order_type": "LIMIT", "is_ask": True, "is_maker": True,
      "price": "8420", "qty": "0.1599", "timestamp": 1643785711000, "fee_rate": "0.002", "fee": "2.69", "fee_currency": "KRW"}]},
     lambda fs: (fs[0].side, fs[0].fee, fs[0].liquidity) == ("sell", D("2.69"), "maker")),
]


@pytest.mark.parametrize(("venue", "op", "args", "body", "check"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_documented_reply_parses(venue: str, op: str, args: Any, body: Any, check: Callable[[Any], bool]) -> None:
    result = rest_adapter(venue).parse_response(op, 200, {}, json.dumps(body).encode(), args)
    assert not isinstance(result, Exception), result
    assert check(result), result
    items = result if isinstance(result, list) else [result]
    for item in items:
        assert isinstance(item, (Ticker, BookSnapshot, OrderInfo, Balance, Fill, CancelAccepted))


def test_every_venue_builds_every_operation() -> None:
    """Request building for each operation: a signed request to the documented path."""
    from schemas.vault import Credentials
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    import base64

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()).decode()
    creds = {"coinbase": Credentials(api_key="organizations/o/apiKeys/k", secret=pem),
             "kraken": Credentials(api_key="k", secret=base64.b64encode(b"s" * 32).decode())}
    symbols = {"binance": "BTC-USDT", "coinbase": "BTC-USD", "kraken": "BTC-USD", "bitfinex": "BTC-USD", "okx": "BTC-USDT",
               "upbit": "BTC-KRW", "bithumb": "BTC-KRW", "korbit": "BTC-KRW", "coinone": "BTC-KRW"}
    for venue, symbol in symbols.items():
        adapter = rest_adapter(venue)
        args = {"ticker": TickerQuery(symbol=symbol), "orderbook": OrderBookQuery(symbol=symbol, depth=10),
                "place_order": place(venue, symbol), "cancel_order": cancel(venue, symbol),
                "order_status": OrderStatusQuery(symbol=symbol, client_order_id="c1", venue_order_id="o1"),
                "open_orders": OpenOrdersQuery(symbol=symbol), "balance": BalanceQuery(),
                "trade_history": TradeHistoryQuery(symbol=symbol), "instruments": None}
        args["order_history"] = args["closed_orders"] = args["order_status"]  # status follow-ups (Bitfinex, Kraken)
        args["ws_token"] = None  # the private stream's token (Kraken)
        for op, endpoint in adapter.endpoints.items():
            req = adapter.build_request(op, args[op], creds.get(venue, Credentials(api_key="k", secret="s" * 32, passphrase="p")),
                                        1700000000000, nonce=1700000000000000 if adapter.shared_nonce else None)
            assert req.method == endpoint.method, (venue, op)
            assert req.url.startswith(adapter.url), (venue, op)
            if endpoint.signed:
                assert any(h.lower() in ("authorization", "x-mbx-apikey", "api-key", "bfx-apikey", "ok-access-key",
                                         "x-kapi-key", "x-coinone-payload") for h in req.headers), (venue, op)
