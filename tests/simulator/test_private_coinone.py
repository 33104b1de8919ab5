"""Coinone's private ``MYORDER`` stream: exbus's adapter on the docs' own examples, and against
the simulator (handshake auth, subscribe, fills, cancel, refusals) the way the executor drives it.

Sources (docs.coinone.co.kr): "Private 웹소켓" (reference/private-websocket-1: the handshake
headers X-COINONE-PAYLOAD = base64(JSON {access_token, nonce: UUID v4, timestamp: ms}) and
X-COINONE-SIGNATURE = HMAC-SHA512(payload, secret).hexdigest(); 4280 close code when the
authentication fails, 4290 beyond 20 connections per account; the CONNECTED example; the error
codes 160010-160012 and the ERROR example), "커넥션 관리 (PING)" (PING / PONG examples) and
"내 주문 변동 (MYORDER)" (DEFAULT request, SUBSCRIBED response, the stream examples 체결대기,
예약 주문 대기, 체결, 체결 완료, 취소, Post-only 주문 실패 취소, and the SHORT field names),
"내 자산 변동 (MYASSET)" (its stream example, not order news).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, AsyncIterator

import msgspec
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from schemas import PlaceOrder
from schemas.queries import TradeHistoryQuery
from schemas.vault import Credentials
from services.executor.credentials import paper_keys
from services.executor.fills import advance, apply_step
from services.executor.state import OrderRecord
from services.simulator import Simulator
from services.venues import rest_adapter
from services.venues.http import HttpTransport
from services.venues.privatews import OrderUpdate, StreamReady, private_stream
from services.venues.wsbase import KeepAlive, VenueNotice

from .private_probe import Probe, Trader, open_probe

SYMBOL = "BTC-KRW"
DEMO = paper_keys()[("coinone", "demo")]
REST = rest_adapter("coinone")
ADAPTER = private_stream("coinone", REST)
assert ADAPTER is not None
S = 1_000_000_000

# "내 주문 변동 (MYORDER)", DEFAULT Format Stream (copied as published)
DOCS_WAIT = """{
  "response_type": "DATA", "channel": "MYORDER",
  "data": {
    "quote_currency": "KRW", "target_currency": "ETH", "order_id": "1b48b023-1e4d-11e9-9ec7-00e04c3600d7",
    "type": "LIMIT", "status": "wait", "side": "BID", "order_price": "6000000.0000", "order_qty": "1.00000000",
    "order_amount": null, "trade_id": null, "is_maker": null, "executed_price": null, "executed_qty": null,
    "executed_fee": null, "remain_qty": null, "remain_amount": null,
    "user_order_id": "74cd2974-b006-4773-a462-717b026f2778", "prevented_qty": null, "executed_timestamp": null,
    "order_timestamp": 1761017305, "timestamp": 1761017305
  }
}"""
DOCS_WATCH = """{
  "response_type": "DATA", "channel": "MYORDER",
  "data": {
    "quote_currency": "KRW", "target_currency": "ETH", "order_id": "1b48b028-1e4d-11e9-9ec7-00e04c3600d7",
    "type": "LIMIT", "status": "watch", "side": "BID", "order_price": "6234000.0000", "order_qty": "1.00000000",
    "order_amount": null, "trade_id": null, "is_maker": null, "executed_price": null, "executed_qty": null,
    "executed_fee": null, "remain_qty": null, "remain_amount": null,
    "user_order_id": "80744d42-6c89-4ab4-ac7a-1f46e2c7a04b", "prevented_qty": null, "executed_timestamp": 1761022828,
    "order_timestamp": null, "timestamp": 1761022828
  }
}"""
DOCS_TRADE = """{
  "response_type": "DATA", "channel": "MYORDER",
  "data": {
    "quote_currency": "KRW", "target_currency": "ETH", "order_id": "1b48b02b-1e4d-11e9-9ec7-00e04c3600d7",
    "type": "LIMIT", "status": "trade", "side": "BID", "order_price": null, "order_qty": null, "order_amount": null,
    "trade_id": "1e9c062e-1e4d-11e9-9ec7-00e04c3600d7", "is_maker": false, "executed_price": "6244000",
    "executed_qty": "0.01", "executed_fee": "0.00000000", "remain_qty": "0.00000000", "remain_amount": "0",
    "user_order_id": "80744d42-6c89-4ab4-ac7a-1f46e2c7a041", "prevented_qty": null, "executed_timestamp": 1761024895,
    "order_timestamp": 1761024895, "timestamp": 1761024907
  }
}"""
DOCS_TRADE_DONE = DOCS_TRADE.replace('"status": "trade"', '"status": "trade_done"')  # the docs' 체결 완료: only the status differs
DOCS_CANCEL = """{
  "response_type": "DATA", "channel": "MYORDER",
  "data": {
    "quote_currency": "KRW", "target_currency": "ETH", "order_id": "1b48b029-1e4d-11e9-9ec7-00e04c3600d7",
    "type": "LIMIT", "status": "cancel", "side": "ASK", "order_price": null, "order_qty": null, "order_amount": null,
    "trade_id": null, "is_maker": null, "executed_price": null, "executed_qty": "0.07520000", "executed_fee": null,
    "remain_qty": "0.00000000", "remain_amount": null, "user_order_id": null, "prevented_qty": null,
    "executed_timestamp": 1761023061, "order_timestamp": null, "timestamp": 1761025545
  }
}"""
DOCS_CANCEL_POST_ONLY = """{
  "response_type": "DATA", "channel": "MYORDER",
  "data": {
    "quote_currency": "KRW", "target_currency": "ETH", "order_id": "1b48b02c-1e4d-11e9-9ec7-00e04c3600d7",
    "type": "LIMIT", "status": "cancel_post_only", "side": "BID", "order_price": null, "order_qty": null,
    "order_amount": null, "trade_id": null, "is_maker": null, "executed_price": null, "executed_qty": "0.01000000",
    "executed_fee": null, "remain_qty": null, "remain_amount": null,
    "user_order_id": "80744d42-6c89-4ab4-ac7a-1f46e2c7a042", "prevented_qty": null, "executed_timestamp": 0,
    "order_timestamp": null, "timestamp": 1761025685
  }
}"""
DOCS_SHORT_TRADE = """{"r": "DATA", "c": "MYORDER", "d": {"qc": "KRW", "tc": "ETH",
  "oi": "1b48b02b-1e4d-11e9-9ec7-00e04c3600d7", "t": "LIMIT", "st": "trade", "s": "BID", "op": null, "oq": null,
  "oa": null, "ti": "1e9c062e-1e4d-11e9-9ec7-00e04c3600d7", "im": false, "ep": "6244000", "eq": "0.01",
  "ef": "0.00000000", "rq": "0.00000000", "ra": "0", "ui": "80744d42-6c89-4ab4-ac7a-1f46e2c7a041", "pq": null,
  "et": 1761024895, "ot": 1761024895, "ts": 1761024907}}"""
DOCS_SUBSCRIBE = '{"request_type":"SUBSCRIBE","channel":"MYORDER","topic":[{"quote_currency":"KRW","target_currency":"XRP"}]}'
DOCS_SUBSCRIBED = '{"response_type":"SUBSCRIBED","channel":"MYORDER","data":[{"quote_currency":"KRW","target_currency":"XRP"}]}'
DOCS_MYASSET_SUBSCRIBED = '{"response_type":"SUBSCRIBED","channel":"MYASSET"}'  # "내 자산 변동 (MYASSET)"
DOCS_MYASSET = ('{"response_type": "DATA", "channel": "MYASSET", "data": {"assets": [{"currency": "KRW", '
                '"available": "205620364.5029", "limit": "8400.0000"}], "type": "deposit", "timestamp": 1760939843}}')
DOCS_CONNECTED = '{"response_type":"CONNECTED","data":{"session_id":"57a97041-a6ee-aa86-fb6d-6f51f626dc4c"}}'
DOCS_ERROR = '{"response_type":"ERROR","error_code":160012,"message":"Invalid Topic"}'
DOCS_PONG = '{"response_type":"PONG"}'


def docs_row(example: str, **changes: Any) -> str:
    """A docs example with some fields changed (as the field table defines them)."""
    message = json.loads(example)
    message["data"].update(changes)
    return json.dumps(message)


def parse(frame: str | bytes) -> list[Any]:
    return ADAPTER.parse_frame(frame, 123)


# --- the adapter on the docs' examples --------------------------------------------------------

def test_endpoint_and_keepalive_follow_the_docs() -> None:
    assert ADAPTER.url == "wss://stream.coinone.co.kr/v1/private"
    assert ADAPTER.keepalive == KeepAlive(interval_s=20.0, message='{"request_type":"PING"}')  # well under 30 min
    assert ADAPTER.ready_on_connect is False and ADAPTER.open_op is None
    assert parse(DOCS_PONG) == [] and parse(DOCS_CONNECTED) == []


def test_the_handshake_is_signed_as_the_docs_define_it() -> None:
    """"Private 웹소켓 연결 방법": payload = base64(JSON {access_token, nonce, timestamp ms}),
    signature = hex HMAC-SHA512 of the payload with the secret key."""
    creds = Credentials(api_key="5a3e35e4-0778-4619-a117-7c60740b22a2", secret="9974e540-9451-4898-bdd6-4e6c7872a86a")
    target = ADAPTER.connection(None, creds, 1_761_017_305_123)
    assert target.url == ADAPTER.url and set(target.headers) == {"X-COINONE-PAYLOAD", "X-COINONE-SIGNATURE"}
    payload = target.headers["X-COINONE-PAYLOAD"]
    body = json.loads(base64.b64decode(payload))
    assert body["access_token"] == creds.api_key and body["timestamp"] == 1_761_017_305_123
    assert uuid.UUID(body["nonce"]).version == 4
    assert target.headers["X-COINONE-SIGNATURE"] == hmac.new(creds.secret.encode(), payload.encode(),
                                                             hashlib.sha512).hexdigest()
    assert creds.secret not in repr(target) and payload not in repr(target)
    again = ADAPTER.connection(None, creds, 1_761_017_305_123)
    assert json.loads(base64.b64decode(again.headers["X-COINONE-PAYLOAD"]))["nonce"] != body["nonce"]  # used once


def test_the_subscription_is_myorder_and_its_answer_makes_the_stream_ready() -> None:
    (message,) = ADAPTER.subscribe_messages(DEMO, None, 0)
    assert json.loads(message) == {"request_type": "SUBSCRIBE", "channel": "MYORDER"}  # every market
    assert parse(DOCS_SUBSCRIBED) == [StreamReady()]
    assert parse(DOCS_MYASSET_SUBSCRIBED) == []


def test_an_error_ends_the_session() -> None:
    assert parse(DOCS_ERROR) == [VenueNotice("error", "coinone 160012: Invalid Topic")]
    (notice,) = parse('{"response_type":"ERROR","error_code":160011,"message":"Invalid Type : {\\"access_token\\": \\"k\\"}"}')
    assert notice == VenueNotice("error", "coinone 160011: Invalid Type :")  # nothing after "{"


def test_a_new_order_is_open_without_a_fill() -> None:
    (update,) = parse(DOCS_WAIT)
    assert update == OrderUpdate(
        venue="coinone", client_order_id="74cd2974-b006-4773-a462-717b026f2778",
        venue_order_id="1b48b023-1e4d-11e9-9ec7-00e04c3600d7", state="open", filled_quantity=Decimal(0),
        cumulative=False, ts_event=1761017305 * S, symbol="ETH-KRW", side="buy", order_type="limit",
        price=Decimal("6000000.0000"), quantity=Decimal("1.00000000"))
    (watch,) = parse(DOCS_WATCH)
    assert (watch.state, watch.trade_id, watch.last_fill_quantity, watch.ts_event) == ("open", None, None, 1761022828 * S)


def test_the_docs_trade_is_one_fill_and_its_trade_done_repeats_it() -> None:
    (trade,) = parse(DOCS_TRADE)
    assert trade == OrderUpdate(
        venue="coinone", client_order_id="80744d42-6c89-4ab4-ac7a-1f46e2c7a041",
        venue_order_id="1b48b02b-1e4d-11e9-9ec7-00e04c3600d7", state="filled", filled_quantity=Decimal(0),
        cumulative=False, ts_event=1761024895 * S, symbol="ETH-KRW", side="buy", order_type="limit",
        last_fill_price=Decimal("6244000"), last_fill_quantity=Decimal("0.01"), fee=Decimal("0.00000000"),
        fee_asset="KRW", trade_id="1e9c062e-1e4d-11e9-9ec7-00e04c3600d7")
    (done,) = parse(DOCS_TRADE_DONE)
    assert done == trade
    assert parse(DOCS_SHORT_TRADE) == []  # the SHORT format is never asked for


def test_trade_then_trade_done_count_the_fill_once() -> None:
    """Through the executor's fill logic: the second message names a trade id seen before."""
    record = OrderRecord(command_id="c", phase="done", symbol="ETH-KRW", status="accepted", tracking=True)
    steps = []
    for frame in (DOCS_TRADE, DOCS_TRADE_DONE):
        (update,) = parse(frame)
        step = advance(record, update)
        steps.append(step)
        if step is not None:
            apply_step(record, step, update.venue_order_id)
    assert steps[0] is not None and steps[0].fill is not None and steps[0].fill.quantity == Decimal("0.01")
    assert steps[1] is None
    assert (record.status, record.filled_quantity, record.fill_ids) == (
        "filled", Decimal("0.01"), ["1e9c062e-1e4d-11e9-9ec7-00e04c3600d7"])


def test_a_fill_that_leaves_a_remainder_is_partial() -> None:
    (update,) = parse(docs_row(DOCS_TRADE, remain_qty="0.04", remain_amount=None, executed_fee="31.22"))
    assert (update.state, update.last_fill_quantity, update.fee) == ("partially_filled", Decimal("0.01"), Decimal("31.22"))
    (unknown,) = parse(docs_row(DOCS_TRADE, remain_qty=None, remain_amount=None))
    assert unknown.state == "partially_filled"  # trade_done (or a poll) says when it is over


def test_a_market_buy_is_sized_in_krw() -> None:
    """order_amount / remain_amount: "시장가 매수"."""
    (new,) = parse(docs_row(DOCS_WAIT, type="MARKET", order_price=None, order_qty=None, order_amount="100000"))
    assert (new.order_type, new.price, new.quantity) == ("market", None, None)
    (fill,) = parse(docs_row(DOCS_TRADE, type="MARKET", remain_qty=None, remain_amount="0"))
    assert (fill.state, fill.quantity, fill.last_fill_quantity) == ("filled", None, Decimal("0.01"))
    (sell,) = parse(docs_row(DOCS_WAIT, type="MARKET", side="ASK", order_price=None, order_qty="0.5"))
    assert (sell.side, sell.quantity, sell.price) == ("sell", Decimal("0.5"), None)


def test_cancels_are_never_fills() -> None:
    """``executed_qty`` of a cancel is the quantity canceled ("체결수량 또는 취소수량")."""
    (cancel,) = parse(DOCS_CANCEL)
    assert (cancel.state, cancel.client_order_id, cancel.side) == ("canceled", None, "sell")
    assert (cancel.last_fill_quantity, cancel.trade_id, cancel.fee, cancel.ts_event) == (None, None, None, 1761025545 * S)
    (post_only,) = parse(DOCS_CANCEL_POST_ONLY)
    assert (post_only.state, post_only.last_fill_quantity, post_only.trade_id) == ("canceled", None, None)
    assert post_only.client_order_id == "80744d42-6c89-4ab4-ac7a-1f46e2c7a042"


def test_millisecond_times_are_read_as_milliseconds() -> None:
    (update,) = parse(docs_row(DOCS_TRADE, executed_timestamp=1761024895123))
    assert update.ts_event == 1761024895123 * 1_000_000


def test_client_order_ids_map_back_as_the_rest_adapter_sends_them() -> None:
    order = PlaceOrder(command_id="c1", venue="coinone", account="demo", symbol=SYMBOL, client_order_id="strat-7_buy.1",
                       side="buy", order_type="limit", quantity=Decimal("0.01"), price=Decimal("90000000"))
    assert REST.venue_client_order_id("strat-7_buy.1") == "strat-7_buy.1"
    assert ("user_order_id", "strat-7_buy.1") in REST.params_place_order(order)
    assert parse(docs_row(DOCS_WAIT, user_order_id="strat-7_buy.1"))[0].client_order_id == "strat-7_buy.1"
    assert parse(docs_row(DOCS_WAIT, user_order_id=""))[0].client_order_id is None


@pytest.mark.parametrize("frame, error", [
    ("not json", msgspec.DecodeError),
    ("[1, 2]", msgspec.ValidationError),
    ('{"response_type": "DATA", "channel": "MYORDER", "data": [1]}', msgspec.ValidationError),
    (docs_row(DOCS_TRADE, executed_qty="lots"), msgspec.ValidationError),
    (docs_row(DOCS_TRADE, executed_qty="NaN"), ValueError),
    (docs_row(DOCS_TRADE, status="pending"), ValueError),
    (docs_row(DOCS_TRADE, side="BUY"), ValueError),
    (docs_row(DOCS_TRADE, type="STOP"), ValueError),
    (docs_row(DOCS_TRADE, timestamp="soon"), msgspec.ValidationError),
])
def test_unreadable_frames_raise(frame: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse(frame)


def test_a_message_without_an_order_id_raises() -> None:
    message = json.loads(DOCS_TRADE)
    del message["data"]["order_id"]
    with pytest.raises(msgspec.ValidationError):
        parse(json.dumps(message))


def test_other_channels_and_replies_are_not_order_news() -> None:
    assert parse(DOCS_MYASSET) == []
    assert parse('{"response_type": "UNSUBSCRIBED", "channel": "MYORDER"}') == []
    assert parse('{"response_type": "SOMETHING_NEW"}') == [] and parse("{}") == []


# --- against the simulator --------------------------------------------------------------------

@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator({"replay": False, "venues": ["coinone"]}) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[HttpTransport]:
    async with HttpTransport() as transport:
        yield transport


def headers(creds: Credentials = DEMO) -> dict[str, str]:
    return ADAPTER.connection(None, creds, time.time_ns() // 1_000_000).headers


@asynccontextmanager
async def raw_ws(sim: Simulator, creds: Credentials = DEMO) -> AsyncIterator[ClientConnection]:
    async with connect(sim.ws_url("coinone") + "/v1/private", additional_headers=headers(creds), open_timeout=2) as ws:
        yield ws


async def reply(ws: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), 2))


async def request(ws: ClientConnection, message: Any) -> Any:
    await ws.send(message if isinstance(message, str) else json.dumps(message))
    return await reply(ws)


def ahead_of_us(sim: Simulator) -> Decimal:
    """The recorded size at the best bid, which a new buy there waits behind."""
    return sim.venues["coinone"].core.levels(SYMBOL, "buy", 1)[0][1]


def pushes(probe: Probe) -> list[dict[str, Any]]:
    return [m["data"] for m in map(json.loads, probe.raw) if m.get("response_type") == "DATA"]


async def test_the_stream_is_ready_once_subscribed(sim: Simulator) -> None:
    async with open_probe(sim, "coinone") as probe:
        assert probe.ready
        connected, subscribed = (json.loads(r) for r in probe.raw[:2])
    assert connected["response_type"] == "CONNECTED" and uuid.UUID(connected["data"]["session_id"])
    assert subscribed == {"response_type": "SUBSCRIBED", "channel": "MYORDER"}
    assert probe.updates == [] and probe.errors == []


async def test_a_resting_buy_filled_in_three_takes(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "coinone", http)
    async with open_probe(sim, "coinone") as probe:
        bid = await trader.best_bid(SYMBOL)
        placed = await trader.rest_buy(SYMBOL, "cows1", Decimal("0.01"), bid)
        await trader.take(SYMBOL, ahead_of_us(sim) - Decimal("0.01") + Decimal("0.003"))
        await trader.take(SYMBOL, Decimal("0.003"))
        await trader.take(SYMBOL, Decimal("0.004"))
        updates = await probe.updates_of("cows1", 5)
    assert probe.errors == []
    assert {u.venue_order_id for u in probe.updates} == {placed.venue_order_id}  # the taker's orders are not ours
    assert [(u.state, u.last_fill_quantity) for u in updates] == [
        ("open", None), ("partially_filled", Decimal("0.003")), ("partially_filled", Decimal("0.003")),
        ("filled", Decimal("0.004")), ("filled", Decimal("0.004"))]  # the last: trade, then trade_done
    assert [m["status"] for m in pushes(probe)] == ["wait", "trade", "trade", "trade", "trade_done"]
    assert [Decimal(m["remain_qty"]) for m in pushes(probe)[1:4]] == [Decimal("0.007"), Decimal("0.004"), 0]
    assert updates[0] == OrderUpdate(venue="coinone", client_order_id="cows1", venue_order_id=placed.venue_order_id,
                                     state="open", filled_quantity=Decimal(0), cumulative=False,
                                     ts_event=updates[0].ts_event, symbol=SYMBOL, side="buy", order_type="limit",
                                     price=bid, quantity=Decimal("0.01"))
    order = sim.venues["coinone"].core.orders[placed.venue_order_id]
    fills = updates[1:4]
    assert [(u.trade_id, u.last_fill_quantity, u.last_fill_price, u.fee, u.fee_asset) for u in fills] == [
        (str(f.trade_id), f.quantity, f.price, f.fee, f.fee_asset) for f in order.fills]
    assert updates[4].trade_id == updates[3].trade_id
    assert all(u.fee > 0 and u.cumulative is False for u in fills) and sum(u.fee for u in fills) == order.fees
    assert all(u.ts_event == f.ts // S * S for u, f in zip(fills, order.fills))  # seconds, as in the docs
    # the same trade ids as find-completed-orders lists them (a recovery after a drop matches them)
    history = await trader.call("trade_history", TradeHistoryQuery(symbol=SYMBOL, limit=10))
    assert {f.trade_id for f in history if f.venue_order_id == placed.venue_order_id} == {u.trade_id for u in fills}


async def test_a_cancel_after_a_partial_fill(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "coinone", http)
    async with open_probe(sim, "coinone") as probe:
        bid = await trader.best_bid(SYMBOL)
        placed = await trader.rest_buy(SYMBOL, "cows2", Decimal("0.01"), bid)
        await trader.take(SYMBOL, ahead_of_us(sim) - Decimal("0.01") + Decimal("0.004"))
        await trader.cancel(SYMBOL, "cows2", placed.venue_order_id)
        updates = await probe.updates_of("cows2", 3)
    assert [(u.state, u.last_fill_quantity, u.trade_id is not None) for u in updates] == [
        ("open", None, False), ("partially_filled", Decimal("0.004"), True), ("canceled", None, False)]
    cancel = pushes(probe)[-1]
    assert (cancel["status"], Decimal(cancel["executed_qty"]), Decimal(cancel["remain_qty"]), cancel["trade_id"]) == (
        "cancel", Decimal("0.006"), 0, None)


async def test_a_market_sell_fills_at_once(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "coinone", http)
    order = PlaceOrder(command_id="c-mkt", venue="coinone", account="demo", symbol=SYMBOL, client_order_id="cowsmkt",
                       side="sell", order_type="market", quantity=Decimal("0.002"))
    async with open_probe(sim, "coinone") as probe:
        placed = await trader.call("place_order", order)
        updates = await probe.updates_of("cowsmkt", 3)
    assert [(u.state, u.order_type, u.side, u.quantity) for u in updates] == [
        ("open", "market", "sell", Decimal("0.002")), ("filled", "market", "sell", None),
        ("filled", "market", "sell", None)]
    (fill,) = sim.venues["coinone"].core.orders[placed.venue_order_id].fills
    assert (updates[1].trade_id, updates[1].last_fill_quantity) == (str(fill.trade_id), Decimal("0.002"))


@pytest.mark.parametrize("creds", [
    Credentials(api_key="not-a-key", secret=DEMO.secret),
    Credentials(api_key=DEMO.api_key, secret="not-the-secret"),
])
async def test_bad_credentials_close_the_connection_with_4280(sim: Simulator, creds: Credentials) -> None:
    async with raw_ws(sim, creds) as ws:
        with pytest.raises(ConnectionClosedError) as closed:
            await asyncio.wait_for(ws.recv(), 2)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4280


async def test_a_reused_nonce_is_refused(sim: Simulator) -> None:
    signed = headers()
    async with connect(sim.ws_url("coinone") + "/v1/private", additional_headers=signed, open_timeout=2) as ws:
        assert (await request(ws, '{"request_type":"PING"}'))["response_type"] == "CONNECTED"
    async with connect(sim.ws_url("coinone") + "/v1/private", additional_headers=signed, open_timeout=2) as ws:
        with pytest.raises(ConnectionClosedError) as closed:
            await asyncio.wait_for(ws.recv(), 2)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4280


async def test_a_connection_beyond_the_limit_is_closed_with_4290(sim: Simulator) -> None:
    sim.venues["coinone"].MAX_CONNECTIONS = 1  # Coinone: 20 per account
    async with open_probe(sim, "coinone") as first:
        async with raw_ws(sim) as ws:
            with pytest.raises(ConnectionClosedError) as closed:
                await asyncio.wait_for(ws.recv(), 2)
        async with raw_ws(sim, paper_keys()[("coinone", "taker")]) as other:  # another account's are counted apart
            assert (await request(other, '{"request_type":"PING"}'))["response_type"] == "CONNECTED"
        assert first.ready
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4290


async def test_the_protocol_replies_written_from_the_docs(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "coinone", http)
    async with raw_ws(sim) as ws:
        assert (await request(ws, '{"request_type":"PING"}'))["response_type"] == "CONNECTED"
        assert await reply(ws) == {"response_type": "PONG"}
        placed = await trader.rest_buy(SYMBOL, "cowsraw1", Decimal("0.01"), await trader.best_bid(SYMBOL))
        assert await request(ws, '{"request_type":"PING"}') == {"response_type": "PONG"}  # not subscribed: no push
        errors = [("hello", 160010, "Invalid Request"), ("[]", 160010, "Invalid Request"),
                  ('{"request_type":"subscribe","channel":"MYORDER"}', 160011, "Invalid Type : request_type"),
                  ('{"request_type":"SUBSCRIBE","channel":"ORDERS"}', 160011, "Invalid Type : channel"),
                  ('{"request_type":"SUBSCRIBE","channel":"MYORDER","format":"TINY"}', 160011, "Invalid Type : format"),
                  (DOCS_SUBSCRIBE, 160012, "Invalid Topic")]  # KRW/XRP is not a simulated market
        for message, code, text in errors:
            assert await request(ws, message) == {"response_type": "ERROR", "error_code": code, "message": text}
        btc = DOCS_SUBSCRIBE.replace("XRP", "BTC")
        assert await request(ws, btc) == json.loads(DOCS_SUBSCRIBED.replace("XRP", "BTC"))
        await trader.cancel(SYMBOL, "cowsraw1", placed.venue_order_id)
        push = await reply(ws)
        assert (push["response_type"], push["channel"]) == ("DATA", "MYORDER")
        assert (push["data"]["order_id"], push["data"]["user_order_id"], push["data"]["status"]) == (
            placed.venue_order_id, "cowsraw1", "cancel")
        assert await request(ws, {"request_type": "UNSUBSCRIBE", "channel": "MYORDER"}) == {
            "response_type": "UNSUBSCRIBED", "channel": "MYORDER"}
        await trader.rest_buy(SYMBOL, "cowsraw2", Decimal("0.01"), await trader.best_bid(SYMBOL))
        assert await request(ws, '{"request_type":"PING"}') == {"response_type": "PONG"}  # unsubscribed: no push


async def test_the_short_format_uses_the_short_field_names(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "coinone", http)
    async with raw_ws(sim) as ws:
        await request(ws, {"request_type": "SUBSCRIBE", "channel": "MYORDER", "format": "SHORT"})
        assert await reply(ws) == {"response_type": "SUBSCRIBED", "channel": "MYORDER"}
        placed = await trader.rest_buy(SYMBOL, "cowsshort", Decimal("0.01"), await trader.best_bid(SYMBOL))
        push = await reply(ws)
    short = json.loads(DOCS_SHORT_TRADE)
    assert (push["r"], push["c"], set(push["d"])) == ("DATA", "MYORDER", set(short["d"]))
    assert (push["d"]["oi"], push["d"]["ui"], push["d"]["st"], push["d"]["s"]) == (
        placed.venue_order_id, "cowsshort", "wait", "BID")
    assert parse(json.dumps(push)) == []  # exbus subscribes in DEFAULT format


async def test_a_refused_stream_and_a_dropped_one(sim: Simulator) -> None:
    dialect = sim.venues["coinone"]
    async with open_probe(sim, "coinone") as probe:
        assert dialect.drop_private() == 1
        await asyncio.wait_for(probe.ws.wait_closed(), 2)
    dialect.private_refused = True
    with pytest.raises(InvalidStatus) as refused:
        async with raw_ws(sim):
            pass
    assert refused.value.response.status_code == 503
    dialect.private_refused = False
    async with open_probe(sim, "coinone") as again:
        assert again.ready
