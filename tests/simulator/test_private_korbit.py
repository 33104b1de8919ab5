"""Korbit's private WebSocket (``myOrder`` + ``myTrade``): exbus's adapter on the docs' own
examples, and against the simulator (signed handshake, subscriptions, fills, cancel,
refusals) the way the executor drives it.

Sources (docs.korbit.co.kr, the Korean reference): "인증하기" (the Node.js example: its API
key and HMAC secret, ``timestamp`` alone signed and sent in the query with ``signature``,
``X-KAPI-KEY`` header; a refused upgrade's JSON ``error.message``: EXCEED_TIME_WINDOW,
KEY_NOT_FOUND), "서명된 요청 보내기" (hex HMAC-SHA256; ``serverTime - timestamp <=
recvWindow`` (default 5000) and ``timestamp < serverTime + 1000``), "요청 보내기" (requests
are arrays), "응답 메시지" (the control message examples copied below), "내 주문 (MyOrder)"
and "내 체결 (MyTrade)" (the response examples copied below, the field tables: status
values, ``unfilled`` = REST's ``open``), "내 자산 (MyAsset)" (its response example).
The simulator's fills are checked against its core (``sim.venues["korbit"].core``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, AsyncIterator
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import msgspec
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from schemas.vault import Credentials
from services.executor.credentials import paper_keys
from services.simulator import Simulator
from services.simulator.dialects.korbit import text
from services.venues import rest_adapter
from services.venues.http import HttpTransport
from services.venues.korbit.private import KorbitPrivateStream, trading_pairs
from services.venues.privatews import OrderUpdate, StreamReady, private_stream
from services.venues.rules import MarketRules
from services.venues.wsbase import KeepAlive, VenueNotice

from .private_probe import Probe, Trader, open_probe

SYMBOL = "BTC-KRW"
DEMO = paper_keys()[("korbit", "demo")]
MS = 1_000_000

# "인증하기", the Node.js example's key and secret (published as examples)
DOCS_KEY = "XyAZ_apaUv9pg4ZyGzNHTxabfIDrWIRpPBgk5-olIuM"
DOCS_SECRET = "ZwKS2evdxj9j3Neir2s0UHAmpNFfo4a0iHawEElGCBs"
# "응답 메시지" examples
DOCS_SUCCESS = '{"requestId": 1, "status": "success"}'
DOCS_FAIL = '{"requestId": 1, "status": "fail", "code": "INVALID_SYMBOL", "message": "The symbol does not exist (eth_btc)"}'
DOCS_ERROR = '{"status": "error", "message": "..."}'
# "내 주문 (MyOrder)", 응답 (copied as published)
DOCS_MY_ORDER = """{
  "symbol": "btc_krw",
  "timestamp": 1700000000000,
  "channelType": "myOrder",
  "order": {
    "orders": [
      {
        "orderId": 123456,
        "status": "partiallyFilled",
        "side": "buy",
        "orderType": "limit",
        "timeInForce": "gtc",
        "price": "99017000",
        "qty": "0.9",
        "filledQty": "0.53793136",
        "amt": "89115300",
        "filledAmt": "53260583.9536",
        "avgPrice": "99010000",
        "createdAt": 1700000001000,
        "lastFilledAt": 1700000002000,
        "clientOrderId": "tjcfiDfSjq94giNAat31"
      }
    ]
  }
}"""
# "내 체결 (MyTrade)", 응답 (copied as published)
DOCS_MY_TRADE = """{
  "symbol": "btc_krw",
  "timestamp": 1700000001000,
  "channelType": "myTrade",
  "trade": {
    "trades": [
      {
        "tradeId": 123456,
        "orderId": 456789,
        "side": "buy",
        "price": "99051000",
        "qty": "0.0013",
        "fee": "50",
        "feeCurrency": "krw",
        "filledAt": 1700000000000,
        "isTaker": true
      }
    ]
  }
}"""
# "내 자산 (MyAsset)", 응답 (one asset of the example)
DOCS_MY_ASSET = ('{"channelType": "myAsset", "timestamp": 1700000000000, "asset": {"assets": [{"currency": "krw", '
                 '"balance": "100", "available": "70", "tradeInUse": "20", "withdrawalInUse": "10", "avgPrice": "5000", '
                 '"updatedAt": 1700000000000}]}}')
PAIRS = {"BTC-KRW": MarketRules(symbol="BTC-KRW", venue_symbol="btc_krw", trading=True),
         "ETH-KRW": MarketRules(symbol="ETH-KRW", venue_symbol="eth_krw", trading=True),
         "OLD-KRW": MarketRules(symbol="OLD-KRW", venue_symbol="old_krw", trading=False)}


def adapter() -> KorbitPrivateStream:
    stream = private_stream("korbit", rest_adapter("korbit"))
    assert isinstance(stream, KorbitPrivateStream)
    return stream


def docs_sign(secret: str, query: str) -> str:
    """"HMAC-SHA256 서명": hex HMAC-SHA256 of the query string."""
    return hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()


def my_order(**changes: Any) -> dict[str, Any]:
    """The docs' MyOrder example with some of its order's fields changed (None: left out)."""
    message = json.loads(DOCS_MY_ORDER)
    order = message["order"]["orders"][0]
    order.update(changes)
    message["order"]["orders"][0] = {k: v for k, v in order.items() if v is not None}
    return message


def my_trade(**changes: Any) -> dict[str, Any]:
    message = json.loads(DOCS_MY_TRADE)
    message["trade"]["trades"][0].update(changes)
    return message


def frame(message: dict[str, Any]) -> str:
    return json.dumps(message)


# --- the adapter on the docs' examples --------------------------------------------------------

def test_endpoint_keepalive_and_what_opens_the_stream() -> None:
    stream = adapter()
    assert stream.url == "wss://ws-api.korbit.co.kr/v2/private"
    assert stream.keepalive == KeepAlive(interval_s=20.0) and stream.keepalive.message is None  # WebSocket pings
    assert stream.ready_on_connect is False and stream.open_op == "instruments"
    assert stream.max_session_s is None


def test_the_handshake_is_signed_as_the_docs_example_signs_it() -> None:
    creds = Credentials(api_key=DOCS_KEY, secret=DOCS_SECRET)
    target = adapter().connection(PAIRS, creds, 1_719_232_467_910)
    query = "timestamp=1719232467910"
    assert target.url == f"wss://ws-api.korbit.co.kr/v2/private?{query}&signature={docs_sign(DOCS_SECRET, query)}"
    assert target.headers == {"X-KAPI-KEY": DOCS_KEY}
    assert DOCS_KEY not in repr(target) and "signature" not in repr(target)


def test_both_channels_are_subscribed_for_every_trading_pair_with_request_ids() -> None:
    (message,) = adapter().subscribe_messages(DEMO, PAIRS, 0)
    assert json.loads(message) == [
        {"requestId": 1, "method": "subscribe", "type": "myOrder", "symbols": ["btc_krw", "eth_krw"]},
        {"requestId": 2, "method": "subscribe", "type": "myTrade", "symbols": ["btc_krw", "eth_krw"]}]
    for token in (None, {}, {"OLD-KRW": PAIRS["OLD-KRW"]}):
        with pytest.raises(ValueError):
            trading_pairs(token)


def test_the_answer_to_the_last_subscription_makes_the_stream_ready() -> None:
    stream = adapter()
    assert stream.parse_frame(DOCS_SUCCESS, 0) == []
    assert stream.parse_frame('{"requestId": 2, "status": "success"}', 0) == [StreamReady()]
    assert stream.parse_frame('{"status": "success"}', 0) == []


def test_a_failed_subscription_or_an_error_ends_the_session() -> None:
    stream = adapter()
    assert stream.parse_frame(DOCS_FAIL, 0) == [
        VenueNotice("error", "korbit fail: INVALID_SYMBOL The symbol does not exist (eth_btc)")]
    assert stream.parse_frame(DOCS_ERROR, 0) == [VenueNotice("error", "korbit error: ...")]
    (long,) = stream.parse_frame(json.dumps({"status": "error", "message": "x" * 5000}), 0)
    assert isinstance(long, VenueNotice) and len(long.message) < 300


def test_the_docs_my_order_is_the_order_s_totals_with_fills_to_follow() -> None:
    (update,) = adapter().parse_frame(DOCS_MY_ORDER, 0)
    assert update == OrderUpdate(
        venue="korbit", client_order_id="tjcfiDfSjq94giNAat31", venue_order_id="123456", state="partially_filled",
        filled_quantity=Decimal("0.53793136"), ts_event=1700000000000 * MS, symbol="BTC-KRW", side="buy",
        order_type="limit", price=Decimal("99017000"), quantity=Decimal("0.9"), average_price=Decimal("99010000"),
        fills_follow=True)


def test_the_docs_my_trade_is_one_fill_named_by_the_venue_order_id() -> None:
    (update,) = adapter().parse_frame(DOCS_MY_TRADE, 0)
    assert update == OrderUpdate(
        venue="korbit", client_order_id=None, venue_order_id="456789", state="partially_filled",
        filled_quantity=Decimal(0), cumulative=False, ts_event=1700000000000 * MS, symbol="BTC-KRW", side="buy",
        last_fill_price=Decimal("99051000"), last_fill_quantity=Decimal("0.0013"), fee=Decimal("50"),
        fee_asset="KRW", trade_id="123456")


@pytest.mark.parametrize("status, state", [
    ("pending", "open"), ("unfilled", "open"), ("partiallyFilled", "partially_filled"), ("filled", "filled"),
    ("canceled", "canceled"), ("partiallyFilledCanceled", "canceled"), ("expired", "expired")])
def test_every_documented_status(status: str, state: str) -> None:
    (update,) = adapter().parse_frame(frame(my_order(status=status)), 0)
    assert update.state == state


def test_an_unfilled_order_and_a_market_buy_by_amount() -> None:
    (new,) = adapter().parse_frame(frame(my_order(status="unfilled", filledQty="0", filledAmt="0", avgPrice=None,
                                                  lastFilledAt=None, clientOrderId=None)), 0)
    assert (new.state, new.filled_quantity, new.average_price, new.client_order_id) == ("open", 0, None, None)
    (buy,) = adapter().parse_frame(frame(my_order(orderType="market", price=None, qty=None, timeInForce="ioc")), 0)
    assert (buy.order_type, buy.price, buy.quantity) == ("market", None, None)
    (bbo,) = adapter().parse_frame(frame(my_order(orderType="best", price=None)), 0)
    assert bbo.order_type is None


def order_at(stream: KorbitPrivateStream, status: str, filled: str, last_filled_at: int | None = 1700000000000) -> None:
    stream.parse_frame(frame(my_order(orderId=456789, status=status, qty="0.0039", filledQty=filled,
                                      lastFilledAt=last_filled_at)), 0)


def test_the_trade_behind_an_order_s_new_total_carries_its_totals_and_state() -> None:
    """Each myOrder adds a quantity; the trade that accounts for it is that change's fill."""
    stream = adapter()
    order_at(stream, "unfilled", "0", None)
    order_at(stream, "partiallyFilled", "0.0013")
    (first,) = stream.parse_frame(DOCS_MY_TRADE, 0)
    assert (first.state, first.filled_quantity, first.cumulative, first.client_order_id, first.trade_id) == (
        "partially_filled", Decimal("0.0013"), True, "tjcfiDfSjq94giNAat31", "123456")
    assert (first.last_fill_quantity, first.fee, first.fee_asset, first.fills_follow) == (
        Decimal("0.0013"), Decimal("50"), "KRW", False)
    (again,) = stream.parse_frame(DOCS_MY_TRADE, 0)  # a repeat: a fill of its own (the executor knows its id)
    assert (again.cumulative, again.trade_id) == (False, "123456")
    order_at(stream, "filled", "0.0039")  # two trades behind this total: the second completes it
    (one,) = stream.parse_frame(frame(my_trade(tradeId=2)), 0)
    (two,) = stream.parse_frame(frame(my_trade(tradeId=3, qty="0.0013")), 0)
    assert (one.state, one.cumulative) == ("partially_filled", False)
    assert (two.state, two.filled_quantity, two.cumulative, two.trade_id) == ("filled", Decimal("0.0039"), True, "3")
    assert two.average_price == Decimal("99010000") and two.ts_event == 1700000000000 * MS


def test_a_trade_is_not_matched_to_a_total_without_proof() -> None:
    stream = adapter()
    (unknown,) = stream.parse_frame(DOCS_MY_TRADE, 0)  # its order never seen
    assert (unknown.state, unknown.cumulative) == ("partially_filled", False)
    order_at(stream, "filled", "0.0039")  # first seen with fills: what it added is unknown
    (earlier,) = stream.parse_frame(frame(my_trade(tradeId=5, filledAt=1699999999000)), 0)
    assert earlier.cumulative is False  # not the fill at lastFilledAt
    (latest,) = stream.parse_frame(frame(my_trade(tradeId=6)), 0)  # the fill at lastFilledAt
    assert (latest.cumulative, latest.state, latest.filled_quantity) == (True, "filled", Decimal("0.0039"))
    stream = adapter()
    order_at(stream, "unfilled", "0", None)
    order_at(stream, "partiallyFilled", "0.0013", last_filled_at=1699999999999)
    (later,) = stream.parse_frame(frame(my_trade(tradeId=7)), 0)  # filled after that total's last fill
    assert later.cumulative is False
    order_at(stream, "unfilled", "0", None)  # an older total changes nothing
    (behind,) = stream.parse_frame(frame(my_trade(tradeId=8, filledAt=1699999999999)), 0)  # what 0.0013 added
    assert (behind.cumulative, behind.state, behind.filled_quantity) == (True, "partially_filled", Decimal("0.0013"))


def test_a_cancel_after_the_total_keeps_it_and_states_the_end() -> None:
    stream = adapter()
    order_at(stream, "unfilled", "0", None)
    order_at(stream, "partiallyFilled", "0.0013")
    order_at(stream, "partiallyFilledCanceled", "0.0013")  # canceled before its trade came
    (trade,) = stream.parse_frame(DOCS_MY_TRADE, 0)
    assert (trade.state, trade.filled_quantity, trade.cumulative) == ("canceled", Decimal("0.0013"), True)


@pytest.mark.parametrize("data, error", [
    ("not json", msgspec.DecodeError),
    ("[1, 2]", msgspec.ValidationError),
    (frame(my_order(filledQty="lots")), msgspec.ValidationError),
    (frame(my_order(avgPrice="NaN")), msgspec.ValidationError),
    (frame(my_order(status="new")), ValueError),
    (frame(my_order(side="bid")), ValueError),
    (frame(my_order(orderId="123456")), msgspec.ValidationError),
    (frame(my_trade(qty="Infinity")), msgspec.ValidationError),
    (frame(my_trade(qty="0")), msgspec.ValidationError),
    (frame(my_trade(side="ask")), msgspec.ValidationError),
    (frame(my_trade(fee=None)), msgspec.ValidationError),
    ('{"channelType": "myOrder", "symbol": "btc_krw", "timestamp": 1}', msgspec.ValidationError),
    ('{"status": "success", "requestId": "2"}', msgspec.ValidationError),
])
def test_unreadable_frames_raise(data: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        adapter().parse_frame(data, 0)


def test_other_messages_are_no_order_news() -> None:
    stream = adapter()
    assert stream.parse_frame(DOCS_MY_ASSET, 0) == []
    assert stream.parse_frame('{"channelType": "somethingNew", "x": {}}', 0) == []
    assert stream.parse_frame("{}", 0) == []
    assert stream.parse_frame(b'{"symbol": "btc_krw", "timestamp": 1, "channelType": "myTrade", "trade": {"trades": []}}', 0) == []


# --- against the simulator --------------------------------------------------------------------

@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator({"replay": False, "venues": ["korbit"]}) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[HttpTransport]:
    async with HttpTransport() as transport:
        yield transport


def now_ms(offset_ms: int = 0) -> int:
    return time.time_ns() // MS + offset_ms


def signed_url(sim: Simulator, creds: Credentials, query: str) -> str:
    """The private URL signed by the docs' recipe (not exbus's)."""
    return f"{sim.ws_url('korbit')}/v2/private?{query}&signature={docs_sign(creds.secret, query)}"


@asynccontextmanager
async def raw_ws(sim: Simulator, creds: Credentials = DEMO) -> AsyncIterator[ClientConnection]:
    url = signed_url(sim, creds, f"timestamp={now_ms()}")
    async with connect(url, additional_headers={"X-KAPI-KEY": creds.api_key}, open_timeout=2) as ws:
        yield ws


async def reply(ws: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), 2))


async def refusal(url: str, headers: dict[str, str]) -> tuple[int, Any]:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, additional_headers=headers, open_timeout=2):
            pass
    response = refused.value.response
    assert response.headers["Content-Type"].startswith("application/json")
    return response.status_code, json.loads(response.body)


def ahead_of_us(sim: Simulator) -> Decimal:
    """The recorded size at the best bid, which a new buy there waits behind."""
    return sim.venues["korbit"].core.levels(SYMBOL, "buy", 1)[0][1]


def notices(probe: Probe) -> list[VenueNotice]:
    return [e for e in probe.events if isinstance(e, VenueNotice)]


async def test_the_stream_is_ready_once_both_subscriptions_are_acknowledged(sim: Simulator) -> None:
    async with open_probe(sim, "korbit") as probe:
        assert probe.ready
        assert [json.loads(r) for r in probe.raw] == [{"requestId": 1, "status": "success"},
                                                       {"requestId": 2, "status": "success"}]
        assert probe.updates == [] and probe.errors == [] and notices(probe) == []


async def test_a_resting_buy_filled_in_three_takes(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "korbit", http)
    async with open_probe(sim, "korbit") as probe:
        bid = await trader.best_bid(SYMBOL)
        placed = await trader.rest_buy(SYMBOL, "kbws1", Decimal("0.01"), bid)
        await trader.take(SYMBOL, ahead_of_us(sim) - Decimal("0.01") + Decimal("0.003"))
        await trader.take(SYMBOL, Decimal("0.003"))
        await trader.take(SYMBOL, Decimal("0.004"))
        updates = await probe.updates_of("kbws1", 7)
    assert probe.errors == []
    assert {u.venue_order_id for u in probe.updates} == {placed.venue_order_id}  # the taker's orders are not ours
    orders = [u for u in updates if u.trade_id is None]
    assert [(u.state, u.filled_quantity) for u in orders] == [
        ("open", 0), ("partially_filled", Decimal("0.003")), ("partially_filled", Decimal("0.006")),
        ("filled", Decimal("0.01"))]
    assert all((u.client_order_id, u.symbol, u.side, u.order_type, u.price, u.quantity, u.fills_follow) == (
        "kbws1", SYMBOL, "buy", "limit", bid, Decimal("0.01"), True) for u in orders)
    order = sim.venues["korbit"].core.orders[placed.venue_order_id]
    trades = [u for u in updates if u.trade_id is not None]
    assert [(u.trade_id, u.last_fill_quantity, u.last_fill_price, u.fee, u.fee_asset) for u in trades] == [
        (str(f.trade_id), f.quantity, f.price, f.fee, f.fee_asset) for f in order.fills]
    # each trade completes the total its myOrder just reported: the fill with the order's totals and state
    assert [(u.state, u.filled_quantity, u.cumulative) for u in trades] == [
        ("partially_filled", Decimal("0.003"), True), ("partially_filled", Decimal("0.006"), True),
        ("filled", Decimal("0.01"), True)]
    assert all(u.client_order_id == "kbws1" and u.fee >= 0 and not u.fills_follow for u in trades)
    assert orders[-1].average_price == bid and trades[-1].ts_event == order.fills[-1].ts // MS * MS
    # each fill: its order's totals, then the trade (and the rows are the REST dialect's)
    kinds = [json.loads(r).get("channelType") for r in probe.raw[2:]]
    assert kinds == ["myOrder", "myOrder", "myTrade", "myOrder", "myTrade", "myOrder", "myTrade"]
    last_order = json.loads(probe.raw[-2])
    rest = sim.venues["korbit"].render(order)
    assert last_order["symbol"] == rest.pop("symbol") == "btc_krw"
    assert last_order["order"]["orders"] == [rest] and rest["status"] == "filled"


async def test_a_cancel_after_a_partial_fill(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "korbit", http)
    async with open_probe(sim, "korbit") as probe:
        placed = await trader.rest_buy(SYMBOL, "kbws2", Decimal("0.01"), await trader.best_bid(SYMBOL))
        await trader.take(SYMBOL, ahead_of_us(sim) - Decimal("0.01") + Decimal("0.004"))
        await trader.cancel(SYMBOL, "kbws2", placed.venue_order_id)
        updates = await probe.updates_of("kbws2", 4)
    assert [(u.state, u.filled_quantity, u.trade_id is not None) for u in updates] == [
        ("open", 0, False), ("partially_filled", Decimal("0.004"), False),
        ("partially_filled", Decimal("0.004"), True), ("canceled", Decimal("0.004"), False)]
    assert json.loads(probe.raw[-1])["order"]["orders"][0]["status"] == "partiallyFilledCanceled"


async def test_an_order_without_fills_canceled_and_a_post_only_that_would_take(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "korbit", http)
    async with open_probe(sim, "korbit") as probe:
        placed = await trader.rest_buy(SYMBOL, "kbws3", Decimal("0.01"), await trader.best_bid(SYMBOL))
        await trader.cancel(SYMBOL, "kbws3", placed.venue_order_id)
        new, canceled = await probe.updates_of("kbws3", 2)
        ask = sim.venues["korbit"].core.best(SYMBOL, "sell")[0]
        await trader.call("place_order", trader_order("kbpo1", ask, post_only=True))
        (po,) = await probe.updates_of("kbpo1", 1)
    assert [json.loads(r)["order"]["orders"][0]["status"] for r in probe.raw[2:]] == ["unfilled", "canceled", "canceled"]  # the post-only: canceled only
    assert (new.state, canceled.state, po.state, po.filled_quantity) == ("open", "canceled", "canceled", 0)


def trader_order(client_order_id: str, price: Decimal, *, post_only: bool = False) -> Any:
    from schemas import PlaceOrder

    return PlaceOrder(command_id=f"c-{client_order_id}", venue="korbit", account="demo", symbol=SYMBOL,
                      client_order_id=client_order_id, side="buy", order_type="limit", quantity=Decimal("0.01"),
                      price=price, post_only=post_only)


@pytest.mark.parametrize("creds, ts_offset_ms, status, code", [
    (Credentials(api_key="not-a-key", secret=DEMO.secret), 0, 401, "KEY_NOT_FOUND"),
    (Credentials(api_key=DEMO.api_key, secret="not-the-secret"), 0, 401, "INVALID_SIGNATURE"),
    (DEMO, -6000, 401, "EXCEED_TIME_WINDOW"),  # older than recvWindow's default 5000
    (DEMO, 2000, 401, "EXCEED_TIME_WINDOW"),  # "1000 (1초) 이상 큰 값"
])
async def test_a_refused_handshake_is_korbit_s_http_error(sim: Simulator, creds: Credentials, ts_offset_ms: int,
                                                          status: int, code: str) -> None:
    url = signed_url(sim, creds, f"timestamp={now_ms(ts_offset_ms)}")
    assert await refusal(url, {"X-KAPI-KEY": creds.api_key}) == (
        status, {"success": False, "error": {"code": status, "message": code}})


async def test_the_handshake_is_checked_as_a_signed_rest_request(sim: Simulator) -> None:
    base = f"{sim.ws_url('korbit')}/v2/private"
    headers = {"X-KAPI-KEY": DEMO.api_key}
    assert (await refusal(f"{base}?timestamp={now_ms()}", headers))[1]["error"]["message"] == "INVALID_SIGNATURE"
    assert (await refusal(signed_url(sim, DEMO, f"timestamp={now_ms()}"), {}))[1]["error"]["message"] == "KEY_NOT_FOUND"
    assert (await refusal(signed_url(sim, DEMO, "recvWindow=5000"), headers))[1]["error"]["message"] == "BAD_REQUEST"
    # recvWindow widens the window, as for REST; the signature may be upper-case hex
    query = f"timestamp={now_ms(-20_000)}&recvWindow=30000"
    async with connect(signed_url(sim, DEMO, query), additional_headers=headers, open_timeout=2):
        pass
    url = f"{base}?timestamp={(ts := now_ms())}&signature={docs_sign(DEMO.secret, f'timestamp={ts}').upper()}"
    async with connect(url, additional_headers=headers, open_timeout=2):
        pass


async def test_exbus_signs_the_handshake_the_simulator_accepts(sim: Simulator) -> None:
    target = private_stream("korbit", rest_adapter("korbit", sim.url("korbit"))).connection(  # type: ignore[union-attr]
        PAIRS, DEMO, now_ms())
    parts = urlsplit(target.url)
    assert parts.path == "/v2/private" and [k for k, _ in parse_qsl(parts.query)] == ["timestamp", "signature"]
    async with connect(target.url, additional_headers=target.headers, open_timeout=2) as ws:
        pong = await ws.ping()  # the keep-alive: WebSocket pings, answered
        await asyncio.wait_for(pong, 2)


async def test_the_control_messages_written_from_the_docs(sim: Simulator, http: HttpTransport) -> None:
    async with raw_ws(sim) as ws:
        for text in ("hello", '{"method": "subscribe", "type": "myOrder", "symbols": ["btc_krw"]}', "[]"):
            await ws.send(text)
            answer = await reply(ws)
            assert answer["status"] == "error" and "requestId" not in answer and answer["message"]
        await ws.send(json.dumps([{"requestId": 5, "method": "subscribe", "type": "myOrder", "symbols": ["eth_btc"]}]))
        assert await reply(ws) == {"requestId": 5, "status": "fail", "code": "INVALID_SYMBOL",
                                   "message": "The symbol does not exist (eth_btc)"}
        await ws.send(json.dumps([{"method": "subscribe", "type": "myTrade", "symbols": ["btc_krw", "eth_btc"]}]))
        assert await reply(ws) == {"status": "fail", "code": "INVALID_SYMBOL",
                                   "message": "The symbol does not exist (eth_btc)"}  # no requestId: no echo
        bad = [{"requestId": 6, "method": "subscribe", "type": "ticker", "symbols": ["btc_krw"]},
               {"requestId": 7, "method": "subscribe", "type": "myOrder"},
               {"requestId": 8, "method": "list", "type": "myOrder", "symbols": ["btc_krw"]},
               {"requestId": 9, "method": "subscribe", "type": "myPosition", "symbols": ["btc_krw"]},
               "myOrder"]
        await ws.send(json.dumps(bad))
        answers = [await reply(ws) for _ in bad]
        assert [(a.get("requestId"), a["status"], a["code"]) for a in answers] == [
            (6, "fail", "BAD_REQUEST"), (7, "fail", "BAD_REQUEST"), (8, "fail", "BAD_REQUEST"),
            (9, "fail", "BAD_REQUEST"), (None, "fail", "BAD_REQUEST")]
        # a subscribe without requestId is not answered when it succeeds; the next answer is the next request's
        await ws.send(json.dumps([{"method": "subscribe", "type": "myOrder", "symbols": ["btc_krw"]},
                                  {"requestId": 10, "method": "subscribe", "type": "myAsset"}]))
        assert await reply(ws) == {"requestId": 10, "status": "success"}
        trader = Trader(sim, "korbit", http)
        placed = await trader.rest_buy(SYMBOL, "kbraw1", Decimal("0.01"), await trader.best_bid(SYMBOL))
        push = await reply(ws)
        assert (push["channelType"], push["symbol"]) == ("myOrder", "btc_krw") and isinstance(push["timestamp"], int)
        assert [(o["orderId"], o["clientOrderId"], o["status"]) for o in push["order"]["orders"]] == [
            (int(placed.venue_order_id), "kbraw1", "unfilled")]
        # the docs' nested form ([..., [...]]) is read as its items
        await ws.send(json.dumps([{"requestId": 11, "method": "unsubscribe", "type": "myOrder", "symbols": ["btc_krw"]},
                                  [{"requestId": 12, "method": "subscribe", "type": "myTrade", "symbols": ["btc_krw"]}]]))
        assert [await reply(ws), await reply(ws)] == [{"requestId": 11, "status": "success"},
                                                      {"requestId": 12, "status": "success"}]
        await trader.cancel(SYMBOL, "kbraw1", placed.venue_order_id)  # myOrder no longer subscribed
        await ws.send(json.dumps([{"requestId": 13, "method": "subscribe", "type": "myAsset"}]))
        assert await reply(ws) == {"requestId": 13, "status": "success"}  # nothing was pushed before it


async def test_pushes_follow_the_subscribed_types(sim: Simulator, http: HttpTransport) -> None:
    async with raw_ws(sim) as ws:
        await ws.send(json.dumps([{"requestId": 1, "method": "subscribe", "type": "myTrade", "symbols": ["btc_krw"]}]))
        assert await reply(ws) == {"requestId": 1, "status": "success"}
        trader = Trader(sim, "korbit", http)
        placed = await trader.rest_buy(SYMBOL, "kbtr1", Decimal("0.01"), await trader.best_bid(SYMBOL))
        await trader.take(SYMBOL, ahead_of_us(sim) - Decimal("0.01") + Decimal("0.002"))
        push = await reply(ws)  # no myOrder for the new order, only the trade
        assert push["channelType"] == "myTrade"
        (trade,) = push["trade"]["trades"]
        fill = sim.venues["korbit"].core.orders[placed.venue_order_id].fills[0]
        assert trade == {"tradeId": fill.trade_id, "orderId": int(placed.venue_order_id), "side": "buy",
                         "price": text(fill.price), "qty": "0.002", "fee": "0", "feeCurrency": "btc",
                         "filledAt": fill.ts // MS, "isTaker": False}


async def test_a_failed_subscription_ends_exbus_s_session(sim: Simulator) -> None:
    pairs = PAIRS  # eth_krw is not a simulated market
    stream = private_stream("korbit", rest_adapter("korbit", sim.url("korbit")))
    assert stream is not None
    target = stream.connection(pairs, DEMO, now_ms())
    async with connect(target.url, additional_headers=target.headers, open_timeout=2) as ws:
        (message,) = stream.subscribe_messages(DEMO, pairs, now_ms())
        await ws.send(message)
        events = stream.parse_frame(await asyncio.wait_for(ws.recv(), 2), 0)
    assert events == [VenueNotice("error", "korbit fail: INVALID_SYMBOL The symbol does not exist (eth_krw)")]


async def test_a_down_stream_refuses_connections_and_drops_open_ones(sim: Simulator) -> None:
    dialect = sim.venues["korbit"]
    async with open_probe(sim, "korbit") as probe:
        dialect.private_refused = True
        assert dialect.drop_private() == 1
        await asyncio.wait_for(probe.ws.wait_closed(), 5)
    url = signed_url(sim, DEMO, f"timestamp={now_ms()}")
    assert await refusal(url, {"X-KAPI-KEY": DEMO.api_key}) == (
        503, {"success": False, "error": {"code": 503, "message": "SERVICE_UNAVAILABLE"}})
    dialect.private_refused = False
    async with open_probe(sim, "korbit") as again:
        assert again.ready


async def test_a_plain_http_get_of_the_private_path_is_no_websocket(sim: Simulator) -> None:
    url = signed_url(sim, DEMO, f"timestamp={now_ms()}").replace("ws://", "http://", 1)
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers={"X-KAPI-KEY": DEMO.api_key}) as r:
            assert r.status >= 400
