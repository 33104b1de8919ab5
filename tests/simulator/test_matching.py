"""Matching against the recorded book and resting simulated orders, and balance movement.

Books: NKNUSDT from the /api/v3/depth snapshot in ../shared/data/recorded/BINANCE.http.0.0
(top: bids 0.3521 x 672, 0.3520 x 1144; asks 0.3525 x 3959, 0.3526 x 3199, 0.3527 x 4201);
KRW-LAMB from the last orderbook frame of UPBIT.ws.62.0 (bid 126.0, ask 127.0).
Filters: NKNUSDT in BINANCE.0 (tick 0.0001, step 1, minNotional 10). Order response shapes
from binance-spot-api-docs rest-api.md; Upbit's from docs.upbit.com (주문 생성, 개별 주문 조회).
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from services.simulator.clock import ManualClock
from services.simulator.matching import Exchange, FeeModel, Market, Order, OrderRejected, Wallet


async def balances(client: Any) -> dict[str, tuple[D, D]]:
    reply = await client.signed("GET", "/api/v3/account")
    assert reply.status == 200, reply
    return {b["asset"]: (D(b["free"]), D(b["locked"])) for b in reply.json["balances"]}


async def test_a_crossing_limit_buy_walks_the_recorded_asks(binance: Any) -> None:
    reply = await binance.order(symbol="NKNUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                quantity="5000", price="0.3526", newClientOrderId="walk-1")
    assert reply.status == 200, reply
    r = reply.json
    assert (r["status"], r["executedQty"], r["cummulativeQuoteQty"]) == ("FILLED", "5000.00000000", "1762.60410000")
    assert [(f["price"], f["qty"], f["commission"], f["commissionAsset"]) for f in r["fills"]] == [
        ("0.35250000", "3959.00000000", "3.95900000", "NKN"),
        ("0.35260000", "1041.00000000", "1.04100000", "NKN"),
    ]
    assert (await balances(binance))["USDT"] == (D("8237.3959"), 0)  # 10000 - 3959 x 0.3525 - 1041 x 0.3526
    assert (await balances(binance))["NKN"] == (D("54995"), 0)       # + 5000 - 0.1 % commission
    depth = (await binance.public("/api/v3/depth", symbol="NKNUSDT", limit=2)).json
    assert depth["asks"] == [["0.35260000", "2158.00000000"], ["0.35270000", "4201.00000000"]]


async def test_a_resting_order_locks_funds_until_canceled(binance: Any) -> None:
    placed = await binance.order(symbol="NKNUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                 quantity="1000", price="0.3500", newClientOrderId="rest-1")
    assert (placed.status, placed.json["status"], placed.json["fills"]) == (200, "NEW", [])
    assert (await balances(binance))["USDT"] == (D("9650"), D("350"))
    depth = (await binance.public("/api/v3/depth", symbol="NKNUSDT", limit=1000)).json
    assert ["0.35000000", str(D("18286") + 1000) + ".00000000"] in depth["bids"]  # recorded 18286 + ours
    canceled = await binance.signed("DELETE", "/api/v3/order", {"symbol": "NKNUSDT", "origClientOrderId": "rest-1"})
    assert (canceled.status, canceled.json["status"], canceled.json["origClientOrderId"]) == (200, "CANCELED", "rest-1")
    assert (await balances(binance))["USDT"] == (D("10000"), 0)


async def test_simulated_orders_match_each_other_maker_and_taker(binance: Any, binance_b: Any) -> None:
    ask = await binance.order(symbol="NKNUSDT", side="SELL", type="LIMIT", timeInForce="GTC",
                              quantity="100", price="0.3523", newClientOrderId="maker-1")
    assert ask.json["status"] == "NEW"  # inside the recorded spread: it rests
    bid = await binance_b.order(symbol="NKNUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                quantity="100", price="0.3524", newClientOrderId="taker-1")
    assert bid.json["status"] == "FILLED"
    assert [(f["price"], f["qty"]) for f in bid.json["fills"]] == [("0.35230000", "100.00000000")]  # the maker's price
    maker = await binance.signed("GET", "/api/v3/order", {"symbol": "NKNUSDT", "origClientOrderId": "maker-1"})
    assert maker.json["status"] == "FILLED"
    assert (await balances(binance))["USDT"] == (D("10035.19477"), 0)  # 35.23 - 0.1 % in USDT
    assert (await balances(binance))["NKN"] == (D("49900"), 0)
    assert (await balances(binance_b))["NKN"] == (D("50099.9"), 0)
    trades = (await binance.signed("GET", "/api/v3/myTrades", {"symbol": "NKNUSDT"})).json
    assert [(t["isMaker"], t["isBuyer"], t["qty"], t["commission"], t["commissionAsset"]) for t in trades] == [
        (True, False, "100.00000000", "0.03523000", "USDT")]


async def test_market_buy_by_quote_quantity_spends_the_funds_in_whole_steps(binance: Any) -> None:
    reply = await binance.order(symbol="NKNUSDT", side="BUY", type="MARKET", quoteOrderQty="100")
    r = reply.json
    assert (r["status"], r["executedQty"], r["cummulativeQuoteQty"]) == ("FILLED", "283.00000000", "99.75750000")
    assert r["origQuoteOrderQty"] == "100.00000000" and r["timeInForce"] == "GTC"


async def test_market_sell_by_quantity_hits_the_bids(binance: Any) -> None:
    r = (await binance.order(symbol="NKNUSDT", side="SELL", type="MARKET", quantity="1000")).json
    assert r["status"] == "FILLED"
    assert [(f["price"], f["qty"]) for f in r["fills"]] == [("0.35210000", "672.00000000"), ("0.35200000", "328.00000000")]


async def test_ioc_fills_what_it_can_and_expires_the_rest(binance: Any) -> None:
    r = (await binance.order(symbol="NKNUSDT", side="BUY", type="LIMIT", timeInForce="IOC",
                             quantity="5000", price="0.3525")).json
    assert (r["status"], r["executedQty"]) == ("EXPIRED", "3959.00000000")
    assert (await balances(binance))["USDT"][1] == 0  # nothing stays locked


async def test_fok_that_cannot_fill_completely_does_not_trade(binance: Any) -> None:
    r = (await binance.order(symbol="NKNUSDT", side="BUY", type="LIMIT", timeInForce="FOK",
                             quantity="5000", price="0.3525")).json
    assert (r["status"], r["executedQty"], r["fills"]) == ("EXPIRED", "0.00000000", [])
    assert (await balances(binance))["USDT"] == (D("10000"), 0)


async def test_limit_maker_that_would_take_is_rejected(binance: Any) -> None:
    reply = await binance.order(symbol="NKNUSDT", side="BUY", type="LIMIT_MAKER", quantity="100", price="0.3525")
    assert (reply.status, reply.json) == (400, {"code": -2010, "msg": "Order would immediately match and take."})
    ok = await binance.order(symbol="NKNUSDT", side="BUY", type="LIMIT_MAKER", quantity="100", price="0.3522")
    assert ok.json == {"symbol": "NKNUSDT", "orderId": ok.json["orderId"], "orderListId": -1,
                       "clientOrderId": ok.json["clientOrderId"], "transactTime": ok.json["transactTime"]}  # ACK


async def test_insufficient_balance(binance_b: Any) -> None:
    reply = await binance_b.order(symbol="NKNUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                  quantity="100000", price="0.3500")
    assert (reply.status, reply.json) == (400, {"code": -2010, "msg": "Account has insufficient balance for requested action."})


@pytest.mark.parametrize("quantity, price, failure", [
    ("100", "0.35205", "PRICE_FILTER"),   # tickSize 0.0001
    ("10.5", "0.3500", "LOT_SIZE"),       # stepSize 1
    ("10", "0.3500", "MIN_NOTIONAL"),     # 3.5 < 10
])
async def test_filter_failures(binance: Any, quantity: str, price: str, failure: str) -> None:
    reply = await binance.order(symbol="NKNUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                quantity=quantity, price=price)
    assert (reply.status, reply.json) == (400, {"code": -1013, "msg": f"Filter failure: {failure}"})


@pytest.mark.parametrize("params, code, msg", [
    ({"symbol": "NOPE", "side": "BUY", "type": "MARKET", "quantity": "1"}, -1121, "Invalid symbol."),
    ({"symbol": "NKNUSDT", "side": "BUY", "type": "LIMIT", "quantity": "100", "price": "0.35"}, -1102,
     "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed."),
    ({"symbol": "NKNUSDT", "side": "BUY", "type": "MARKET"}, -1102,
     "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"),
    ({"symbol": "NKNUSDT", "side": "BUY", "type": "MARKET", "quantity": "100", "price": "0.35"}, -1106,
     "Parameter 'price' sent when not required."),
    ({"symbol": "NKNUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1e3", "price": "0.35"},
     -1100, "Illegal characters found in parameter 'quantity'; legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'."),
])
async def test_malformed_orders(binance: Any, params: dict, code: int, msg: str) -> None:
    reply = await binance.order(**params)
    assert (reply.status, reply.json) == (400, {"code": code, "msg": msg})


# -- the engine alone: the replayed market moving through resting orders -------------------


def engine() -> tuple[Exchange, ManualClock]:
    clock = ManualClock(0)
    fees = FeeModel(maker=lambda m: D("0.001"), taker=lambda m: D("0.001"), in_quote=False)
    ex = Exchange({"XY": Market("XY", "X", "Y")}, {"a": Wallet({"X": D(100), "Y": D(1000)})}, fees, clock)
    ex.apply_depth("XY", [(D(9), D(5))], [(D(11), D(5))], snapshot=True)
    return ex, clock


def limit(side: str, qty: str, price: str, oid: int) -> Order:
    return Order(order_id=oid, client_order_id=f"c{oid}", account="a", symbol="XY", side=side,  # type: ignore[arg-type]
                 order_type="limit", quantity=D(qty), price=D(price))


def test_a_recorded_trade_through_a_resting_order_fills_it_up_to_the_trade_size() -> None:
    ex, _ = engine()
    first, second = ex.place(limit("sell", "3", "10", 1)), ex.place(limit("sell", "3", "10", 2))
    ex.apply_trade("XY", D("10.5"), D("4"), "buy")  # an aggressive buy printed at 10.5
    assert (first.status, first.filled, second.status, second.filled) == ("filled", 3, "partially_filled", 1)
    assert first.fills[0].is_maker and first.fills[0].price == 10  # at the resting order's price
    ex.apply_trade("XY", D("10.5"), D("9"), "sell")  # a sell aggressor does not lift asks
    assert second.filled == 1


def test_a_recorded_book_that_crosses_a_resting_bid_fills_it() -> None:
    ex, _ = engine()
    bid = ex.place(limit("buy", "4", "10", 1))
    assert bid.status == "new" and ex.wallets["a"].locked["Y"] == 40
    ex.apply_depth("XY", [], [(D("9.5"), D(3)), (D(11), D(0))])  # asks move down through the bid
    assert (bid.status, bid.filled, bid.fills[0].price) == ("partially_filled", 3, 10)
    assert ex.books["XY"].asks == {}  # the crossing recorded liquidity was consumed
    ex.cancel(bid)
    assert ex.wallets["a"].locked["Y"] == 0 and ex.wallets["a"].free["Y"] == 970


def test_a_rejected_order_changes_nothing() -> None:
    ex, _ = engine()
    with pytest.raises(OrderRejected) as e:
        ex.place(limit("buy", "1000", "10", 1))
    assert e.value.reason == OrderRejected.INSUFFICIENT_BALANCE
    assert ex.wallets["a"].free == {"X": 100, "Y": 1000} and ex.books["XY"].resting_bids == {}


# -- Upbit ------------------------------------------------------------------------------------


async def upbit_balances(upbit: Any) -> dict[str, tuple[D, D]]:
    reply = await upbit.request("GET", "/v1/accounts")
    return {a["currency"]: (D(a["balance"]), D(a["locked"])) for a in reply.json}


async def test_upbit_limit_bid_reserves_price_volume_and_fee(upbit: Any) -> None:
    reply = await upbit.order(market="KRW-LAMB", side="bid", volume="100", price="120", ord_type="limit")
    assert reply.status == 201, reply
    r = reply.json
    assert (r["state"], r["side"], r["ord_type"], r["price"], r["volume"], r["remaining_volume"]) == \
        ("wait", "bid", "limit", "120.0", "100.0", "100.0")
    assert (r["reserved_fee"], r["locked"], r["executed_volume"], r["trades_count"]) == ("6.0", "12006.0", "0.0", 0)
    assert (await upbit_balances(upbit))["KRW"] == (D("9987994"), D("12006"))


async def test_upbit_crossing_bid_trades_and_pays_the_fee_in_krw(upbit: Any) -> None:
    r = (await upbit.order(market="KRW-LAMB", side="bid", volume="100", price="127", ord_type="limit")).json
    assert (r["state"], r["executed_volume"], r["paid_fee"], r["locked"]) == ("done", "100.0", "6.35", "0.0")
    detail = (await upbit.request("GET", "/v1/order", params={"uuid": r["uuid"]})).json
    assert [(t["price"], t["volume"], t["funds"], t["side"]) for t in detail["trades"]] == [("127.0", "100.0", "12700.0", "bid")]
    b = await upbit_balances(upbit)
    assert b["KRW"] == (D("9987293.65"), 0) and b["LAMB"] == (D("100100"), 0)


async def test_upbit_market_buy_by_price_and_market_sell_by_volume(upbit: Any) -> None:
    buy = (await upbit.order(market="KRW-LAMB", side="bid", price="10000", ord_type="price")).json
    assert (buy["ord_type"], buy["price"], buy["volume"]) == ("price", "10000.0", None)
    assert buy["state"] == "done" and D(buy["executed_volume"]) == D("78.74015748")  # 10000 / 127, 8 decimals
    sell = (await upbit.order(market="KRW-LAMB", side="ask", volume="100", ord_type="market")).json
    assert (sell["state"], sell["executed_volume"], sell["price"]) == ("done", "100.0", None)
    assert D(sell["paid_fee"]) == D("6.3")  # 100 x 126 x 0.05 %


async def test_upbit_post_only_at_a_taker_price_is_canceled(upbit: Any) -> None:
    taker = (await upbit.order(market="KRW-LAMB", side="bid", volume="100", price="127", ord_type="limit",
                               time_in_force="post_only")).json
    assert (taker["state"], taker["executed_volume"], taker["time_in_force"]) == ("cancel", "0.0", "post_only")
    maker = (await upbit.order(market="KRW-LAMB", side="bid", volume="100", price="125", ord_type="limit",
                               time_in_force="post_only")).json
    assert maker["state"] == "wait"


@pytest.mark.parametrize("body, status, name", [
    ({"market": "KRW-LAMB", "side": "bid", "volume": "1", "price": "100", "ord_type": "limit"}, 400, "under_min_total_bid"),
    ({"market": "KRW-LAMB", "side": "bid", "volume": "1000000", "price": "126", "ord_type": "limit"}, 400, "insufficient_funds_bid"),
    ({"market": "KRW-LAMB", "side": "ask", "volume": "1000000", "price": "130", "ord_type": "limit"}, 400, "insufficient_funds_ask"),
    ({"market": "KRW-LAMB", "side": "bid", "volume": "1", "price": "10000", "ord_type": "price"}, 400, "create_bid_error"),
    ({"market": "KRW-LAMB", "side": "ask", "volume": "100", "price": "127", "ord_type": "market"}, 400, "create_ask_error"),
    ({"market": "KRW-LAMB", "side": "bid", "ord_type": "limit"}, 400, "create_bid_error"),
    ({"market": "KRW-LAMB", "side": "buy", "volume": "1", "price": "100", "ord_type": "limit"}, 400, "validation_error"),
])
async def test_upbit_refusals(upbit: Any, body: dict, status: int, name: str) -> None:
    reply = await upbit.order(**body)
    assert (reply.status, reply.json["error"]["name"]) == (status, name)


async def test_upbit_cancel_answers_the_order_as_it_was_then_it_is_canceled(upbit: Any) -> None:
    placed = (await upbit.order(market="KRW-LAMB", side="ask", volume="100", price="130", ord_type="limit")).json
    canceled = await upbit.request("DELETE", "/v1/order", params={"uuid": placed["uuid"]})
    assert (canceled.status, canceled.json["state"]) == (200, "wait")
    assert (await upbit.request("GET", "/v1/order", params={"uuid": placed["uuid"]})).json["state"] == "cancel"
    again = await upbit.request("DELETE", "/v1/order", params={"uuid": placed["uuid"]})
    assert (again.status, again.json["error"]["name"]) == (404, "order_not_found")
    assert (await upbit_balances(upbit))["LAMB"] == (D("100000"), 0)


async def test_upbit_ioc_and_best_orders_never_rest(upbit: Any) -> None:
    ioc = (await upbit.order(market="KRW-WAVES", side="bid", volume="60", price="20240", ord_type="limit",
                             time_in_force="ioc")).json  # only 50 offered at 20240 (UPBIT.ws.62.0)
    assert (ioc["state"], ioc["executed_volume"], ioc["locked"]) == ("cancel", "50.0", "0.0")
    best = (await upbit.order(market="KRW-WAVES", side="ask", volume="30", ord_type="best",
                              time_in_force="ioc")).json  # the best bid level only: 23.55726098 at 20230
    assert (best["ord_type"], best["state"], D(best["executed_volume"])) == ("best", "cancel", D("23.55726098"))


async def test_binance_unknown_and_finished_orders(binance: Any) -> None:
    missing = await binance.signed("GET", "/api/v3/order", {"symbol": "NKNUSDT", "origClientOrderId": "never"})
    assert (missing.status, missing.json) == (400, {"code": -2013, "msg": "Order does not exist."})
    filled = (await binance.order(symbol="NKNUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="100",
                                  price="0.3525", newClientOrderId="done-1")).json
    assert filled["status"] == "FILLED"
    cancel = await binance.signed("DELETE", "/api/v3/order", {"symbol": "NKNUSDT", "orderId": filled["orderId"]})
    assert (cancel.status, cancel.json) == (400, {"code": -2011, "msg": "Unknown order sent."})
    mismatch = await binance.signed("GET", "/api/v3/order", {"symbol": "NKNUSDT", "orderId": filled["orderId"],
                                                              "origClientOrderId": "other"})
    assert mismatch.json["code"] == -2013
    opened = await binance.signed("GET", "/api/v3/openOrders", {"symbol": "NKNUSDT"})
    assert opened.json == []
