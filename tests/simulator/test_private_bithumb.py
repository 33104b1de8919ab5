"""Bithumb's private WebSocket v2 (``myOrder``): exbus's adapter on frames of the documented
v2 shape, and against the simulator (bearer JWT handshake with its ``timestamp`` claim,
request, fills, cancel, refusals, formats, drop and refusal of the stream) the way the
executor drives it.

Sources (apidocs.bithumb.com): "기본 정보" (``/websocket/v2/private``), "요청 방법 및 포맷"
(the REST JWT in the handshake: access_key, nonce, timestamp), "인증 헤더 만들기" and "API 주요
에러 코드" (401 jwt_verification, invalid_access_key, expired_jwt), "연결 관리" (PING ->
{"status":"UP"}), "내 주문 및 체결 (MyOrder)" (Private v2 field table: the frames below are
built from it, values of the documented types; no published example message was found),
"Private v2 마이그레이션 가이드" (names and SIMPLE abbreviations). The simulator's fills are
checked against its core.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from decimal import Decimal
from typing import AsyncIterator

import jwt
import msgspec
import pytest
from websockets.exceptions import InvalidStatus

from schemas.vault import Credentials
from services.executor.credentials import paper_keys
from services.simulator import Simulator
from services.venues import rest_adapter
from services.venues.bithumb.private import BithumbPrivateStream
from services.venues.http import HttpTransport
from services.venues.privatews import OrderUpdate, StreamReady, private_stream
from services.venues.wsbase import VenueNotice

from .private_probe import Probe, Trader, open_probe
from .upbitlike_ws import ahead_of_us, bearer, raw_ws, refusal, reply, subscribe

SYMBOL = "BTC-KRW"
PATH = "/websocket/v2/private"
DEMO = paper_keys()[("bithumb", "demo")]
ADAPTER = private_stream("bithumb", rest_adapter("bithumb"))
assert isinstance(ADAPTER, BithumbPrivateStream)

# "내 주문 및 체결 (MyOrder)" v2: a fill of a limit buy, every field of the table
V2_TRADE = {
    "type": "myOrder", "stream_type": "REALTIME", "code": "KRW-BTC", "order_id": "C0106000000123456789",
    "client_order_id": "my-order-1", "side": "buy", "order_type": "limit", "state": "trade",
    "time_in_force": "post_only", "order_price": 95000000, "order_quantity": 0.002, "order_amount": 190000,
    "trade_id": "T0106000000987654321", "trade_price": 95000000, "trade_quantity": 0.0005, "trade_amount": 47500,
    "remaining_quantity": 0.0015, "executed_quantity": 0.0005, "executed_amount": 47500,
    "reserved_fee": 76, "remaining_fee": 57, "paid_fee": 19, "trade_timestamp": 1767139200123,
    "order_timestamp": 1767139100000, "timestamp": 1767139200130,
}
NO_FILL = ("trade_id", "trade_price", "trade_quantity", "trade_amount", "trade_timestamp")
"""Fields only a fill has ("fields without a value are omitted")."""


def frame(*, drop: tuple[str, ...] = (), **changes: object) -> str:
    return json.dumps({k: v for k, v in {**V2_TRADE, **changes}.items() if k not in drop})


# --- the adapter ------------------------------------------------------------------------------

def test_endpoint_and_the_rest_jwt_in_the_handshake() -> None:
    assert ADAPTER.url == "wss://ws-api.bithumb.com/websocket/v2/private" and ADAPTER.ready_on_connect is False
    secret = "doc-secret-" + "x" * 32
    target = ADAPTER.connection(None, Credentials(api_key="doc-key", secret=secret), 1_767_139_200_000)
    scheme, token = target.headers["Authorization"].split(" ")
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    assert scheme == "Bearer" and set(claims) == {"access_key", "nonce", "timestamp"}
    assert (claims["access_key"], claims["timestamp"]) == ("doc-key", 1_767_139_200_000)
    uuid.UUID(claims["nonce"])
    request, ping = ADAPTER.subscribe_messages(DEMO, None, 0)
    ticket, kind, fmt = json.loads(request)
    assert set(ticket) == {"ticket"} and kind == {"type": "myOrder"} and fmt == {"format": "DEFAULT"} and ping == "PING"


def test_a_trade_is_one_fill_whose_fee_is_in_the_order_s_total() -> None:
    (update,) = ADAPTER.parse_frame(frame(), 0)
    assert update == OrderUpdate(
        venue="bithumb", client_order_id="my-order-1", venue_order_id="C0106000000123456789",
        state="partially_filled", filled_quantity=Decimal("0.0005"), ts_event=1767139200123 * 1_000_000,
        symbol="BTC-KRW", side="buy", order_type="limit", price=Decimal(95000000), quantity=Decimal("0.002"),
        average_price=Decimal(95000000), last_fill_price=Decimal(95000000), last_fill_quantity=Decimal("0.0005"),
        fee=None, fee_asset="KRW", trade_id="T0106000000987654321", fees_total=Decimal(19))


@pytest.mark.parametrize("state, remaining, executed, expected", [
    ("wait", 0.002, 0, "open"), ("trade", 0.0015, 0.0005, "partially_filled"), ("trade", 0, 0.002, "filled"),
    ("done", 0, 0.002, "filled"), ("cancel", 0.0015, 0.0005, "canceled"), ("cancel", 0.002, 0, "canceled"),
])
def test_every_documented_state(state: str, remaining: float, executed: float, expected: str) -> None:
    drop = () if state == "trade" else NO_FILL
    (update,) = ADAPTER.parse_frame(frame(state=state, remaining_quantity=remaining, executed_quantity=executed,
                                          drop=drop), 0)
    assert update.state == expected and (update.trade_id is not None) == (state == "trade")


def test_omitted_fields_and_market_orders() -> None:
    (new,) = ADAPTER.parse_frame(frame(state="wait", executed_quantity=0, executed_amount=0, paid_fee=0,
                                       drop=(*NO_FILL, "client_order_id", "time_in_force")), 0)
    assert (new.client_order_id, new.average_price, new.fees_total, new.ts_event) == (
        None, None, 0, 1767139200130 * 1_000_000)
    # a market buy spends order_amount: order_price and order_quantity are 0
    (buy,) = ADAPTER.parse_frame(frame(order_type="price", order_price=0, order_quantity=0, order_amount=100000,
                                       drop=("remaining_quantity",)), 0)
    assert (buy.order_type, buy.price, buy.quantity, buy.state) == ("market", None, None, "partially_filled")
    (sell,) = ADAPTER.parse_frame(frame(order_type="market", side="sell", order_price=0, order_amount=0), 0)
    assert (sell.side, sell.price, sell.quantity) == ("sell", None, Decimal("0.002"))


def test_control_frames() -> None:
    assert ADAPTER.parse_frame(b'{"status":"UP"}', 0) == [StreamReady()]
    assert ADAPTER.parse_frame(b'{"error": {"name": "NO_TYPE", "message": "The request has no type."}}', 0) == [
        VenueNotice("error", "bithumb NO_TYPE: The request has no type.")]
    asset = {"type": "myAsset", "asset_uuid": "e635f223", "assets": [{"currency": "KRW", "balance": 1, "locked": 0}],
             "asset_timestamp": 1, "timestamp": 1, "stream_type": "REALTIME"}
    assert ADAPTER.parse_frame(json.dumps(asset), 0) == []


@pytest.mark.parametrize("data, error", [
    ("not json", msgspec.DecodeError),
    ("[1, 2]", msgspec.ValidationError),
    (frame(drop=("order_id",)), msgspec.ValidationError),
    (frame(executed_quantity="lots"), msgspec.ValidationError),
    (frame(side="BID"), ValueError),  # v1's value
    (frame(state="pending"), ValueError),
])
def test_unreadable_frames_raise(data: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        ADAPTER.parse_frame(data, 0)


def test_a_v1_message_is_not_read_as_v2() -> None:
    """v1 names (``uuid``, ``ask_bid``, ``executed_volume``) have no ``order_id``: unreadable."""
    v1 = {"type": "myOrder", "code": "KRW-BTC", "uuid": "C0106000000123456789", "ask_bid": "BID",
          "order_type": "limit", "state": "trade", "executed_volume": 0.0005, "timestamp": 1}
    with pytest.raises(msgspec.ValidationError):
        ADAPTER.parse_frame(json.dumps(v1), 0)


# --- against the simulator --------------------------------------------------------------------

@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator({"replay": False, "venues": ["bithumb"]}) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[HttpTransport]:
    async with HttpTransport() as transport:
        yield transport


def notices(probe: Probe) -> list[VenueNotice]:
    return [e for e in probe.events if isinstance(e, VenueNotice)]


async def test_the_ping_after_the_request_makes_the_stream_ready(sim: Simulator) -> None:
    async with open_probe(sim, "bithumb") as probe:
        assert probe.ready and probe.raw == [b'{"status":"UP"}'] and notices(probe) == []


async def test_a_resting_buy_filled_in_three_takes(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "bithumb", http)
    async with open_probe(sim, "bithumb") as probe:
        bid = await trader.best_bid(SYMBOL)
        placed = await trader.rest_buy(SYMBOL, "bhws1", Decimal("0.01"), bid)
        await trader.take(SYMBOL, ahead_of_us(sim, "bithumb", SYMBOL) - Decimal("0.01") + Decimal("0.003"))
        await trader.take(SYMBOL, Decimal("0.003"))
        await trader.take(SYMBOL, Decimal("0.004"))
        updates = await probe.updates_of("bhws1", 5)
    assert probe.errors == [] and {u.venue_order_id for u in probe.updates} == {placed.venue_order_id}
    assert [(u.state, u.filled_quantity) for u in updates] == [
        ("open", 0), ("partially_filled", Decimal("0.003")), ("partially_filled", Decimal("0.006")),
        ("filled", Decimal("0.01")), ("filled", Decimal("0.01"))]
    dialect = sim.venues["bithumb"]
    order = dialect.core.orders[placed.venue_order_id]
    fills = [u for u in updates if u.trade_id is not None]
    assert [(u.trade_id, u.last_fill_quantity, u.last_fill_price) for u in fills] == [
        (dialect.trade_id_of(f), f.quantity, f.price) for f in order.fills]
    running = [sum((f.fee for f in order.fills[:n]), Decimal(0)) for n in (1, 2, 3)]
    assert [u.fees_total for u in fills] == running and updates[-1].fees_total == order.fees
    assert updates[-1].average_price == bid and all(u.price == bid and u.quantity == Decimal("0.01") for u in updates)
    pushed = [json.loads(r) for r in probe.raw[1:]]
    assert [p["state"] for p in pushed] == ["wait", "trade", "trade", "trade", "done"]
    assert all("trade_id" not in p for p in (pushed[0], pushed[-1]))  # omitted outside a fill
    rest = dialect._order(order)  # the REST dialect's view of the same order
    assert (pushed[-1]["order_id"], pushed[-1]["client_order_id"]) == (rest["uuid"], rest["client_order_id"])
    assert [p["trade_id"] for p in dialect.push_log] == [f.trade_id for f in order.fills]


async def test_a_cancel_after_a_partial_fill(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "bithumb", http)
    async with open_probe(sim, "bithumb") as probe:
        placed = await trader.rest_buy(SYMBOL, "bhws2", Decimal("0.01"), await trader.best_bid(SYMBOL))
        await trader.take(SYMBOL, ahead_of_us(sim, "bithumb", SYMBOL) - Decimal("0.01") + Decimal("0.004"))
        await trader.cancel(SYMBOL, "bhws2", placed.venue_order_id)
        updates = await probe.updates_of("bhws2", 3)
    assert [(u.state, u.filled_quantity, u.trade_id is not None) for u in updates] == [
        ("open", 0, False), ("partially_filled", Decimal("0.004"), True), ("canceled", Decimal("0.004"), False)]
    canceled = json.loads(probe.raw[-1])
    assert (canceled["state"], canceled["remaining_quantity"]) == ("cancel", 0.006) and "cancel_type" not in canceled


def token(creds: Credentials, **claims: object) -> dict[str, str]:
    payload = {"access_key": creds.api_key, "nonce": str(uuid.uuid4()), "timestamp": int(time.time() * 1000), **claims}
    return {"Authorization": f"Bearer {jwt.encode(payload, creds.secret, algorithm='HS256')}"}


@pytest.mark.parametrize("headers, status, name", [
    (lambda: {}, 401, "invalid_access_key"),
    (lambda: token(Credentials(api_key="not-a-key", secret=DEMO.secret)), 401, "invalid_access_key"),
    (lambda: token(Credentials(api_key=DEMO.api_key, secret="not-the-secret-" + "x" * 32)), 401, "jwt_verification"),
    (lambda: token(DEMO, timestamp=int(time.time() * 1000) - 60_000), 401, "expired_jwt"),
])
async def test_a_refused_handshake_is_bithumb_s_rest_error(sim: Simulator, headers, status: int, name: str) -> None:
    code, body = await refusal(sim.ws_url("bithumb") + PATH, headers())
    assert (code, body["error"]["name"]) == (status, name) and set(body["error"]) == {"name", "message"}


async def test_bad_credentials_never_reach_the_stream(sim: Simulator) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with open_probe(sim, "bithumb", creds=Credentials(api_key=DEMO.api_key, secret="x" * 40)):
            pass
    assert refused.value.response.status_code == 401


async def test_the_request_errors_and_formats(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "bithumb", http)
    async with raw_ws(sim, "bithumb", PATH, DEMO) as ws:
        for text, name in [("not json", "WRONG_FORMAT"), ('[{"type": "myOrder"}]', "NO_TICKET"),
                           ('[{"ticket": "t"}, {"type": "orderbook", "codes": ["KRW-BTC"]}]', "INVALID_PARAM")]:
            await ws.send(text)
            (notice,) = ADAPTER.parse_frame(json.dumps(await reply(ws)), 0)
            assert notice.kind == "error" and notice.message.startswith(f"bithumb {name}: "), text
        await subscribe(ws, {"type": "myOrder", "codes": ["KRW-ETH"]})
        placed = await trader.rest_buy(SYMBOL, "bhws3", Decimal("0.01"), await trader.best_bid(SYMBOL))
        await ws.send("PING")
        assert await reply(ws) == {"status": "UP"}  # a KRW-BTC order is not pushed to a KRW-ETH request

        await subscribe(ws, {"type": "myOrder", "codes": ["KRW-BTC"]}, {"type": "myAsset"}, fmt="SIMPLE")
        await trader.cancel(SYMBOL, "bhws3", placed.venue_order_id)
        messages = [await reply(ws), await reply(ws)]
    (simple,) = [m for m in messages if m["ty"] == "myOrder"]
    (asset,) = [m for m in messages if m["ty"] == "myAsset"]
    assert (simple["oid"], simple["coid"], simple["sd"], simple["s"], simple["cd"]) == (
        placed.venue_order_id, "bhws3", "buy", "cancel", "KRW-BTC")
    assert {"op", "oq", "oa", "rq", "eq", "ea", "pf", "otms", "tms", "st"} <= set(simple)
    assert "KRW" in {a["cu"] for a in asset["ast"]}


async def test_a_down_stream_refuses_connections_and_drops_open_ones(sim: Simulator) -> None:
    dialect = sim.venues["bithumb"]
    async with open_probe(sim, "bithumb") as probe:
        dialect.private_refused = True
        assert dialect.drop_private() == 1
        await asyncio.wait_for(probe.ws.wait_closed(), 5)
    code, body = await refusal(sim.ws_url("bithumb") + PATH, bearer(sim, "bithumb", DEMO))
    assert (code, body["error"]["name"]) == (503, "service_unavailable")
    dialect.private_refused = False
    async with open_probe(sim, "bithumb") as again:
        assert again.ready


async def test_the_ended_v1_path_is_not_served(sim: Simulator) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with raw_ws(sim, "bithumb", "/websocket/v1/private", DEMO):
            pass
    assert refused.value.response.status_code == 404
