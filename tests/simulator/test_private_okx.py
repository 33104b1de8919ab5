"""OKX's private ``orders`` stream: exbus's adapter on the docs' own examples, and against the
simulator (login, subscribe, fills, cancel, refusals) the way the executor drives it.

Sources (okx.com/docs-v5/en): "Login" (request and response examples; sign =
Base64(HMAC-SHA256(secret, timestamp + "GET" + "/users/self/verify")), timestamp in Unix
seconds, expiring 30 s after it), "Connect" (text ping/pong), "Notification" (64008
example), "Connection count limit" (``channel-conn-count`` and its error, examples),
"Error Code / WebSocket / Public" (60004-60033 messages), "WS / Order channel" (subscribe
examples, the push data example, the field definitions: ``fillFee`` negative = charged,
"if a tradeId is present, it means a fill"); ccxt pro okx.py for an error echoing a login.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, AsyncIterator

import msgspec
import pytest
from websockets.asyncio.client import ClientConnection, connect

from schemas import PlaceOrder
from schemas.vault import Credentials
from services.executor.credentials import paper_keys
from services.simulator import Simulator
from services.venues import rest_adapter
from services.venues.http import HttpTransport
from services.venues.privatews import OrderUpdate, Send, StreamReady, private_stream
from services.venues.wsbase import KeepAlive, VenueNotice

from .private_probe import Probe, Trader, open_probe

SYMBOL = "BTC-USDT"
DEMO = paper_keys()[("okx", "demo")]
REST = rest_adapter("okx")
ADAPTER = private_stream("okx", REST)
assert ADAPTER is not None

# "WS / Order channel", Push Data Example (copied as published)
DOCS_ORDER_PUSH = """{
    "arg": {
        "channel": "orders",
        "instType": "SPOT",
        "instId": "BTC-USDT",
        "uid": "614488474791936"
    },
    "data": [
        {
            "accFillSz": "0.001",
            "algoClOrdId": "",
            "algoId": "",
            "amendResult": "",
            "amendSource": "",
            "avgPx": "31527.1",
            "cancelSource": "",
            "category": "normal",
            "ccy": "",
            "clOrdId": "",
            "code": "0",
            "cTime": "1654084334977",
            "execType": "M",
            "fee": "-0.02522168",
            "feeCcy": "USDT",
            "fillFee": "-0.02522168",
            "fillFeeCcy": "USDT",
            "fillNotionalUsd": "31.50818374",
            "fillPx": "31527.1",
            "fillSz": "0.001",
            "fillPnl": "0.01",
            "fillTime": "1654084353263",
            "fillPxVol": "",
            "fillPxUsd": "",
            "fillMarkVol": "",
            "fillFwdPx": "",
            "fillMarkPx": "",
            "fillIdxPx": "",
            "instId": "BTC-USDT",
            "instType": "SPOT",
            "lever": "0",
            "msg": "",
            "notionalUsd": "31.50818374",
            "ordId": "452197707845865472",
            "ordType": "limit",
            "pnl": "0",
            "posSide": "",
            "px": "31527.1",
            "pxUsd":"",
            "pxVol":"",
            "pxType":"",
            "quickMgnType": "",
            "rebate": "0",
            "rebateCcy": "BTC",
            "reduceOnly": "false",
            "reqId": "",
            "side": "sell",
            "attachAlgoClOrdId": "",
            "slOrdPx": "",
            "slTriggerPx": "",
            "slTriggerPxType": "last",
            "source": "",
            "state": "filled",
            "stpId": "",
            "stpMode": "",
            "sz": "0.001",
            "tag": "",
            "tdMode": "cash",
            "tgtCcy": "",
            "tpOrdPx": "",
            "tpTriggerPx": "",
            "tpTriggerPxType": "last",
            "attachAlgoOrds": [],
            "tradeId": "242589207",
            "tradeQuoteCcy": "USDT",
            "lastPx": "38892.2",
            "uTime": "1654084353264",
            "isTpLimit": "false",
            "linkedAlgoOrd": {
                "algoId": ""
            }
        }
    ]
}"""
DOCS_LOGIN_OK = '{"event": "login", "code": "0", "msg": "", "connId": "a4d3ae55"}'  # "Login"
DOCS_LOGIN_FAILED = '{"event": "error", "code": "60009", "msg": "Login failed.", "connId": "a4d3ae55"}'
DOCS_SUBSCRIBED = ('{"id": "1512", "event": "subscribe", "arg": {"channel": "orders", "instType": "FUTURES", '
                   '"instId": "BTC-USD-200329"}, "connId": "a4d3ae55"}')  # "WS / Order channel"
DOCS_SUBSCRIBE_FAILED = ('{"id": "1512", "event": "error", "code": "60012", "msg": "Invalid request: {\\"op\\": '
                         '\\"subscribe\\", \\"argss\\":[{ \\"channel\\" : \\"orders\\", \\"instType\\" : \\"FUTURES\\"}]}", '
                         '"connId": "a4d3ae55"}')
DOCS_NOTICE = ('{"event": "notice", "code": "64008", "msg": "The connection will soon be closed for a service '
               'upgrade. Please reconnect.", "connId": "a4d3ae55"}')  # "Notification"
DOCS_CONN_COUNT = '{"event":"channel-conn-count", "channel":"orders", "connCount": "2", "connId":"abcd1234"}'
DOCS_CONN_COUNT_ERROR = '{"event": "channel-conn-count-error", "channel": "orders", "connCount": "30", "connId":"a4d3ae55"}'
CCXT_LOGIN_ECHO = ('{"event": "error", "msg": "Illegal request: {\\"op\\":\\"login\\",\\"args\\":[\\"de89b035-b233-44b2-'
                   '9a13-0ccdd00bda0e\\",\\"7KUcc8YzQhnxBE3K\\",\\"1626691289\\",\\"H57N99mBt5NvW8U19FITrPdOxycAERFMaapQWRqLaSE=\\"]}", '
                   '"code": "60012"}')  # ccxt pro okx.py handle_message comment


def docs_sign(secret: str, timestamp: str) -> str:
    """"Login": Base64(HMAC-SHA256(SecretKey, timestamp + 'GET' + '/users/self/verify'))."""
    return base64.b64encode(hmac.new(secret.encode(), f"{timestamp}GET/users/self/verify".encode(),
                                     hashlib.sha256).digest()).decode()


def docs_login(creds: Credentials, timestamp: str) -> str:
    return json.dumps({"op": "login", "args": [{"apiKey": creds.api_key, "passphrase": creds.passphrase,
                                                "timestamp": timestamp, "sign": docs_sign(creds.secret, timestamp)}]})


def docs_row(**changes: str) -> str:
    """The docs' push example with some fields changed (as the field table defines them)."""
    push = json.loads(DOCS_ORDER_PUSH)
    push["data"][0].update(changes)
    return json.dumps(push)


def parse(frame: str | bytes) -> list[Any]:
    return ADAPTER.parse_frame(frame, 123)


# --- the adapter on the docs' examples --------------------------------------------------------

def test_endpoint_and_keepalive_follow_connect() -> None:
    assert ADAPTER.url == "wss://ws.okx.com:8443/ws/v5/private"
    assert ADAPTER.keepalive == KeepAlive(interval_s=20.0, message="ping")  # under the 30 s idle limit
    assert ADAPTER.ready_on_connect is False and ADAPTER.open_op is None
    assert parse("pong") == [] and parse(b"pong") == []


def test_login_is_signed_as_the_docs_define_it() -> None:
    creds = Credentials(api_key="985d5b66-57ce-40fb-b714-afc0b9787083", secret="22582BD0CFF14C41EDBF1AB98506286D",
                        passphrase="123456")
    (message,) = ADAPTER.subscribe_messages(creds, None, 1_538_054_050_987)
    assert json.loads(message) == {"op": "login", "args": [{
        "apiKey": creds.api_key, "passphrase": "123456", "timestamp": "1538054050",
        "sign": docs_sign(creds.secret, "1538054050")}]}


def test_login_ack_sends_the_subscribe_and_its_ack_makes_the_stream_ready() -> None:
    (send,) = parse(DOCS_LOGIN_OK)
    assert isinstance(send, Send)
    assert json.loads(send.message) == {"op": "subscribe", "args": [{"channel": "orders", "instType": "SPOT"}]}
    assert parse(DOCS_SUBSCRIBED) == [StreamReady()]
    assert parse('{"event": "subscribe", "arg": {"channel": "account"}, "connId": "a4d3ae55"}') == []
    assert parse(DOCS_CONN_COUNT) == []
    assert parse('{"event": "unsubscribe", "arg": {"channel": "orders", "instType": "SPOT"}, "connId": "x"}') == []


def test_refusals_and_notices_end_the_session() -> None:
    assert parse(DOCS_LOGIN_FAILED) == [VenueNotice("error", "okx 60009: Login failed.")]
    assert parse(DOCS_SUBSCRIBE_FAILED) == [VenueNotice("error", "okx 60012: Invalid request")]
    assert parse(DOCS_NOTICE) == [VenueNotice(
        "reconnect", "okx 64008: The connection will soon be closed for a service upgrade. Please reconnect.")]
    assert parse(DOCS_CONN_COUNT_ERROR) == [VenueNotice("error", "okx channel-conn-count-error: orders connection count limit reached")]


def test_an_echoed_login_leaves_no_secret_in_the_notice() -> None:
    (notice,) = parse(CCXT_LOGIN_ECHO)
    assert notice == VenueNotice("error", "okx 60012: Illegal request")
    for secret in ("de89b035", "7KUcc8YzQhnxBE3K", "H57N99mBt5NvW8U19FITrPdOxycAERFMaapQWRqLaSE="):
        assert secret not in repr(notice)


def test_the_docs_order_push_is_one_fill() -> None:
    (update,) = parse(DOCS_ORDER_PUSH)
    assert update == OrderUpdate(
        venue="okx", client_order_id=None, venue_order_id="452197707845865472", state="filled",
        filled_quantity=Decimal("0.001"), ts_event=1654084353263 * 1_000_000, symbol="BTC-USDT", side="sell",
        order_type="limit", price=Decimal("31527.1"), quantity=Decimal("0.001"), average_price=Decimal("31527.1"),
        last_fill_price=Decimal("31527.1"), last_fill_quantity=Decimal("0.001"), fee=Decimal("0.02522168"),
        fee_asset="USDT", trade_id="242589207")


def test_an_update_without_a_trade_is_no_fill() -> None:
    """A new order as the field table describes it: live, nothing filled, fill fields empty."""
    live = docs_row(state="live", accFillSz="0", avgPx="0", fillSz="0", fillPx="", tradeId="", fillTime="",
                    fillFee="0", fillFeeCcy="", execType="", fee="0", clOrdId="okxA1", uTime="1654084334977")
    (update,) = parse(live)
    assert (update.state, update.filled_quantity, update.average_price, update.client_order_id) == (
        "open", Decimal(0), None, "okxA1")
    assert (update.trade_id, update.last_fill_quantity, update.fee, update.fee_asset) == (None, None, None, None)
    assert update.ts_event == 1654084334977 * 1_000_000
    # "for market orders ... state filled while fillSz is 0": the total, no fill
    (market,) = parse(docs_row(ordType="market", px="", tradeId="", fillSz="0", fillPx=""))
    assert (market.state, market.filled_quantity, market.trade_id, market.order_type) == (
        "filled", Decimal("0.001"), None, "market")
    canceled = docs_row(state="mmp_canceled", tradeId="", fillSz="0")
    assert parse(canceled)[0].state == "canceled"


def test_client_order_ids_map_back_as_the_rest_adapter_sends_them() -> None:
    hashed = REST.venue_client_order_id("strategy-7_buy")  # "x" + 31 hex digits: cannot be reversed
    assert hashed != "strategy-7_buy"
    assert parse(docs_row(clOrdId=hashed))[0].client_order_id is None
    assert parse(docs_row(clOrdId=REST.venue_client_order_id("okxB2")))[0].client_order_id == "okxB2"


def test_a_market_buy_sized_in_quote_has_no_base_quantity() -> None:
    """``tgtCcy``: quote_ccy (the default for spot market buys) sizes ``sz`` in the quote currency."""
    for tgt in ("quote_ccy", ""):
        (buy,) = parse(docs_row(ordType="market", side="buy", tgtCcy=tgt, sz="100", px=""))
        assert (buy.quantity, buy.price) == (None, None)
    (sell,) = parse(docs_row(ordType="market", side="sell", tgtCcy="", sz="0.001", px=""))
    assert sell.quantity == Decimal("0.001")


@pytest.mark.parametrize("frame, error", [
    ("not json", msgspec.DecodeError),
    ("[1, 2]", msgspec.ValidationError),
    (docs_row(accFillSz="lots"), ValueError),
    (docs_row(fillSz="NaN"), ValueError),
    (docs_row(state="pending"), ValueError),
    (docs_row(uTime="soon", tradeId="", fillSz="0"), ValueError),
])
def test_unreadable_frames_raise(frame: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse(frame)


def test_a_row_without_an_order_id_raises() -> None:
    push = json.loads(DOCS_ORDER_PUSH)
    del push["data"][0]["ordId"]
    with pytest.raises(msgspec.ValidationError):
        parse(json.dumps(push))


def test_other_channels_and_events_are_not_order_news() -> None:
    assert parse('{"arg": {"channel": "account", "uid": "1"}, "data": [{"ccy": "BTC"}]}') == []
    assert parse('{"arg": {"channel": "orders", "instType": "SPOT"}, "data": []}') == []
    assert parse('{"event": "something-new", "connId": "a4d3ae55"}') == []
    assert parse("{}") == []


# --- against the simulator --------------------------------------------------------------------

@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator({"replay": False, "venues": ["okx"]}) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[HttpTransport]:
    async with HttpTransport() as transport:
        yield transport


@asynccontextmanager
async def raw_ws(sim: Simulator) -> AsyncIterator[ClientConnection]:
    async with connect(sim.ws_url("okx") + "/ws/v5/private", open_timeout=2) as ws:
        yield ws


async def reply(ws: ClientConnection) -> Any:
    text = await asyncio.wait_for(ws.recv(), 2)
    return text if text == "pong" else json.loads(text)


def now_s(offset_s: int = 0) -> str:
    return str(int(time.time()) + offset_s)


def ahead_of_us(sim: Simulator) -> Decimal:
    """The recorded size at the best bid, which a new buy there waits behind."""
    return sim.venues["okx"].core.levels(SYMBOL, "buy", 1)[0][1]


def notices(probe: Probe) -> list[VenueNotice]:
    return [e for e in probe.events if isinstance(e, VenueNotice)]


async def test_the_stream_is_ready_after_login_and_subscribe(sim: Simulator) -> None:
    async with open_probe(sim, "okx") as probe:
        assert probe.ready
        login, subscribed, count = (json.loads(r) for r in probe.raw[:3])
    assert (login["event"], login["code"], login["msg"]) == ("login", "0", "")
    assert subscribed["event"] == "subscribe" and subscribed["arg"] == {"channel": "orders", "instType": "SPOT"}
    assert (count["event"], count["channel"], count["connCount"]) == ("channel-conn-count", "orders", "1")
    assert login["connId"] == subscribed["connId"] == count["connId"]
    assert probe.updates == [] and probe.errors == [] and notices(probe) == []


async def test_a_resting_buy_filled_in_three_takes(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "okx", http)
    async with open_probe(sim, "okx") as probe:
        bid = await trader.best_bid(SYMBOL)
        placed = await trader.rest_buy(SYMBOL, "okxws1", Decimal("0.01"), bid)
        await trader.take(SYMBOL, ahead_of_us(sim) - Decimal("0.01") + Decimal("0.003"))
        await trader.take(SYMBOL, Decimal("0.003"))
        await trader.take(SYMBOL, Decimal("0.004"))
        updates = await probe.updates_of("okxws1", 4)
    assert probe.errors == []
    assert {u.venue_order_id for u in probe.updates} == {placed.venue_order_id}  # the taker's orders are not ours
    assert [(u.state, u.filled_quantity) for u in updates] == [
        ("open", 0), ("partially_filled", Decimal("0.003")), ("partially_filled", Decimal("0.006")),
        ("filled", Decimal("0.01"))]
    order = sim.venues["okx"].core.orders[placed.venue_order_id]
    fills = updates[1:]
    assert [(u.trade_id, u.last_fill_quantity, u.last_fill_price, u.fee, u.fee_asset) for u in fills] == [
        (str(f.trade_id), f.quantity, f.price, f.fee, f.fee_asset) for f in order.fills]
    assert all(u.fee > 0 for u in fills) and sum(u.fee for u in fills) == order.fees
    assert all((u.symbol, u.side, u.order_type, u.price, u.quantity) == (SYMBOL, "buy", "limit", bid, Decimal("0.01"))
               for u in updates)
    assert updates[-1].average_price == bid and updates[-1].ts_event == order.fills[-1].ts // 1_000_000 * 1_000_000


async def test_a_cancel_after_a_partial_fill(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "okx", http)
    async with open_probe(sim, "okx") as probe:
        bid = await trader.best_bid(SYMBOL)
        placed = await trader.rest_buy(SYMBOL, "okxws2", Decimal("0.01"), bid)
        await trader.take(SYMBOL, ahead_of_us(sim) - Decimal("0.01") + Decimal("0.004"))
        await trader.cancel(SYMBOL, "okxws2", placed.venue_order_id)
        updates = await probe.updates_of("okxws2", 3)
    assert [(u.state, u.filled_quantity, u.trade_id is not None) for u in updates] == [
        ("open", 0, False), ("partially_filled", Decimal("0.004"), True), ("canceled", Decimal("0.004"), False)]
    row = json.loads(probe.raw[-1])["data"][0]
    assert (row["state"], row["cancelSource"], row["fillSz"], row["tradeId"]) == ("canceled", "1", "0", "")


async def test_a_hashed_client_id_is_matched_by_order_id(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "okx", http)
    async with open_probe(sim, "okx") as probe:
        placed = await trader.rest_buy(SYMBOL, "okx-hashed_1", Decimal("0.01"), await trader.best_bid(SYMBOL))
        (update,) = await probe.until(lambda p: [u for u in p.updates if u.venue_order_id == placed.venue_order_id])
    assert sim.venues["okx"].core.orders[placed.venue_order_id].client_order_id == REST.venue_client_order_id("okx-hashed_1")
    assert (update.client_order_id, update.state) == (None, "open")


async def test_a_post_only_order_that_would_take_is_pushed_canceled(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "okx", http)
    ask = sim.venues["okx"].core.best(SYMBOL, "sell")[0]
    order = PlaceOrder(command_id="c-po", venue="okx", account="demo", symbol=SYMBOL, client_order_id="okxpo1",
                       side="buy", order_type="limit", quantity=Decimal("0.01"), price=ask, post_only=True)
    async with open_probe(sim, "okx") as probe:
        await trader.call("place_order", order)
        (update,) = await probe.updates_of("okxpo1", 1)
    assert (update.state, update.filled_quantity) == ("canceled", 0)
    assert json.loads(probe.raw[-1])["data"][0]["cancelSource"] == "31"  # "post-only order will take liquidity"


@pytest.mark.parametrize("creds, error", [
    (Credentials(api_key="not-a-key", secret=DEMO.secret, passphrase=DEMO.passphrase), "okx 60005: Invalid apiKey"),
    (Credentials(api_key=DEMO.api_key, secret="not-the-secret", passphrase=DEMO.passphrase), "okx 60007: Invalid sign"),
    (Credentials(api_key=DEMO.api_key, secret=DEMO.secret, passphrase="not-it"), "okx 60024: Wrong passphrase"),
])
async def test_bad_credentials_are_refused(sim: Simulator, creds: Credentials, error: str) -> None:
    async with open_probe(sim, "okx", creds=creds, wait_ready=False) as probe:
        (notice,) = await probe.until(notices)
    assert notice == VenueNotice("error", error)
    assert not probe.ready and json.loads(probe.raw[0])["event"] == "error"


@pytest.mark.parametrize("offset_s, code", [(-40, "60006"), (40, "60004")])
async def test_a_login_outside_30_s_of_its_timestamp_is_refused(sim: Simulator, offset_s: int, code: str) -> None:
    async with raw_ws(sim) as ws:
        await ws.send(docs_login(DEMO, now_s(offset_s)))
        answer = await reply(ws)
        assert (answer["event"], answer["code"]) == ("error", code)
        (notice,) = parse(json.dumps(answer))
        assert notice.kind == "error" and notice.message.startswith(f"okx {code}:")
        await ws.send(docs_login(DEMO, now_s(-25)))  # within the window
        assert (await reply(ws))["event"] == "login"


async def test_the_protocol_replies_written_from_the_docs(sim: Simulator, http: HttpTransport) -> None:
    subscribe = {"id": "1512", "op": "subscribe", "args": [{"channel": "orders", "instType": "SPOT", "instId": SYMBOL}]}
    async with raw_ws(sim) as ws:
        await ws.send("ping")
        assert await reply(ws) == "pong"
        await ws.send(json.dumps(subscribe))
        before_login = await reply(ws)
        assert (before_login["id"], before_login["event"], before_login["code"], before_login["msg"]) == (
            "1512", "error", "60011", "Please log in")
        await ws.send("hello")
        assert (await reply(ws))["code"] == "60012"
        await ws.send(json.dumps({"op": "nope", "args": []}))
        assert (await reply(ws))["code"] == "60019"

        await ws.send(docs_login(DEMO, now_s()))
        assert {k: v for k, v in (await reply(ws)).items() if k != "connId"} == {"event": "login", "code": "0", "msg": ""}
        await ws.send(docs_login(DEMO, now_s()))
        assert (await reply(ws))["code"] == "60031"  # one login per connection
        await ws.send(json.dumps({"op": "subscribe", "args": [{"channel": "account"}]}))
        assert (await reply(ws))["code"] == "60018"
        await ws.send(json.dumps({"op": "subscribe", "args": [{"channel": "orders"}]}))
        assert (await reply(ws))["code"] == "60027"

        await ws.send(json.dumps(subscribe))
        ack = await reply(ws)
        assert (ack["id"], ack["event"], ack["arg"]) == ("1512", "subscribe", subscribe["args"][0])
        assert (await reply(ws))["event"] == "channel-conn-count"
        trader = Trader(sim, "okx", http)
        placed = await trader.rest_buy(SYMBOL, "okxraw1", Decimal("0.01"), await trader.best_bid(SYMBOL))
        push = await reply(ws)
        assert push["arg"] == {**subscribe["args"][0], "uid": push["arg"]["uid"]} and push["arg"]["uid"].isdigit()
        assert [(r["ordId"], r["clOrdId"], r["state"]) for r in push["data"]] == [(placed.venue_order_id, "okxraw1", "live")]

        await ws.send(json.dumps({"op": "unsubscribe", "args": subscribe["args"]}))
        assert (await reply(ws))["event"] == "unsubscribe"
        await trader.cancel(SYMBOL, "okxraw1", placed.venue_order_id)
        await ws.send("ping")
        assert await reply(ws) == "pong"  # the cancel was not pushed: nothing came before the pong


async def test_pushes_follow_the_subscribed_instrument(sim: Simulator, http: HttpTransport) -> None:
    async with raw_ws(sim) as ws:
        await ws.send(docs_login(DEMO, now_s()))
        await reply(ws)
        await ws.send(json.dumps({"op": "subscribe", "args": [{"channel": "orders", "instType": "SPOT", "instId": "ETH-USDT"}]}))
        assert [(await reply(ws))["event"], (await reply(ws))["event"]] == ["subscribe", "channel-conn-count"]
        trader = Trader(sim, "okx", http)
        await trader.rest_buy(SYMBOL, "okxeth1", Decimal("0.01"), await trader.best_bid(SYMBOL))
        await ws.send("ping")
        assert await reply(ws) == "pong"  # a BTC-USDT order is not pushed to an ETH-USDT subscription


async def test_the_connection_count_limit_ends_a_new_subscription(sim: Simulator) -> None:
    sim.venues["okx"].MAX_CONNECTIONS = 1  # OKX: 30 per channel and account
    async with open_probe(sim, "okx") as first:
        async with open_probe(sim, "okx", wait_ready=False) as second:
            (notice,) = await second.until(notices)
        assert notice == VenueNotice("error", "okx channel-conn-count-error: orders connection count limit reached")
        assert json.loads(second.raw[-1])["connCount"] == "1"
        assert first.ready and notices(first) == []
