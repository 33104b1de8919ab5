"""Kraken's private ``executions`` stream (WebSocket v2): exbus's adapter on published
examples, and against the simulator (REST token, subscribe, fills, cancel, refusals) the way
the executor drives it.

Sources: docs.kraken.com spot-websocket-v2/executions (the subscribe request and the
``pending_new`` update examples, the subscribe-ack schema), unified-ws/executions (a trade
may say partially_filled when it completes the order; ``filled`` follows),
spot-websocket-v2/ping (pong example), spot-websocket-v2/status (status example), REST
GetWebSocketsToken (15-minute validity, not expiring while its subscription lasts),
guides/general/errors (``ESession:Invalid session``); ccxt pro 4.5.90 kraken.py (its
copies of the docs' ``trade`` and ``canceled`` examples, the GetWebSocketsToken reply, the
v2 error object and the ``heartbeat`` message).
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, AsyncIterator

import msgspec
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from schemas import PlaceOrder
from schemas.queries import TradeHistoryQuery
from schemas.vault import Credentials
from services.executor.credentials import paper_keys
from services.simulator import Simulator
from services.venues import rest_adapter
from services.venues.errors import AuthError
from services.venues.http import HttpTransport
from services.venues.kraken.rest import WsToken
from services.venues.privatews import OrderUpdate, StreamReady, private_stream
from services.venues.wsbase import KeepAlive, VenueNotice

from .private_probe import Probe, Trader, open_probe, rest_call

SYMBOL = "BTC-CHF"
DEMO = paper_keys()[("kraken", "demo")]
REST = rest_adapter("kraken")
ADAPTER = private_stream("kraken", REST)
assert ADAPTER is not None

# ccxt pro kraken.py authenticate(): the GetWebSocketsToken reply
DOCS_TOKEN_REPLY = '{"error":[],"result":{"token":"xeAQ\\/RCChBYNVh53sTv1yZ5H4wIbwDF20PiHtTF+4UI","expires":900}}'
# "executions", Subscribe: Example (copied as published)
DOCS_SUBSCRIBE = """{
    "method": "subscribe",
    "params": {
        "channel": "executions",
        "token": "G38a1tGFzqGiUCmnegBcm8d4nfP3tytiNQz6tkCBYXY",
        "snap_orders": true,
        "snap_trades": true
    }
}"""
# "executions", Subscribe Ack schema (method, result.channel/snap_orders/snap_trades, success, time_in/out)
DOCS_SUBSCRIBED = ('{"method": "subscribe", "result": {"channel": "executions", "snap_orders": true, "snap_trades": '
                   'true}, "success": true, "time_in": "2023-09-22T10:20:11.163201Z", "time_out": '
                   '"2023-09-22T10:20:11.167522Z"}')
# "executions", Update example: pending_new (copied as published)
DOCS_PENDING_NEW = """{
    "channel": "executions",
    "type": "update",
    "data": [
        {
            "order_id": "OK4GJX-KSTLS-7DZZO5",
            "order_userref": 3,
            "symbol": "BTC/USD",
            "order_qty": 0.005,
            "cum_cost": 0.0,
            "time_in_force": "GTC",
            "exec_type": "pending_new",
            "side": "sell",
            "order_type": "limit",
            "limit_price_type": "static",
            "limit_price": 26500.0,
            "stop_price": 0.0,
            "order_status": "pending_new",
            "fee_usd_equiv": 0.0,
            "fee_ccy_pref": "fciq",
            "timestamp": "2023-09-22T10:33:05.709950Z"
        }
    ],
    "sequence": 8
}"""
# ccxt pro kraken.py handle_my_trades: the docs' trade example
DOCS_TRADE = """{
    "channel": "executions",
    "type": "update",
    "data": [
        {
            "order_id": "O6NTZC-K6FRH-ATWBCK",
            "exec_id": "T5DIUI-5N4KO-Z5BPXK",
            "exec_type": "trade",
            "trade_id": 8253473,
            "symbol": "USDC/USD",
            "side": "sell",
            "last_qty": 15.44,
            "last_price": 1.0002,
            "liquidity_ind": "t",
            "cost": 15.443088,
            "order_userref": 0,
            "order_status": "filled",
            "order_type": "market",
            "fee_usd_equiv": 0.03088618,
            "fees": [{"asset": "USD", "qty": 0.3458}]
        }
    ],
    "sequence": 10
}"""
# ccxt pro kraken.py parse_ws_order: a canceled order
DOCS_CANCELED = """{"channel": "executions", "type": "update", "data": [{
    "timestamp": "2025-10-11T15:11:47.695226Z", "order_status": "canceled", "exec_type": "canceled",
    "order_userref": 0, "order_id": "OGAB7Y-BKX5F-PTK5RW", "cum_qty": 0, "cum_cost": 0, "fee_usd_equiv": 0,
    "avg_price": 0, "cancel_reason": "User requested", "reason": "User requested"}], "sequence": 11}"""
DOCS_PONG = '{"method": "pong", "req_id": 101, "time_in": "2023-09-24T14:10:23.799685Z", "time_out": "2023-09-24T14:10:23.799703Z"}'
DOCS_STATUS = ('{"channel": "status", "data": [{"api_version": "v2", "connection_id": 12393906104898154338, '
               '"system": "online", "version": "2.0.0"}], "type": "update"}')
CCXT_HEARTBEAT = '{"channel": "heartbeat"}'
CCXT_V2_ERROR = ('{"error": "Unsupported field: \'price\' for the given msg type: add order", "method": "add_order", '
                 '"success": false, "time_in": "2025-05-13T08:59:44.803511Z", "time_out": "2025-05-13T08:59:44.803542Z"}')
INVALID_SESSION = ('{"error": "ESession:Invalid session", "method": "subscribe", "req_id": 1, "success": false, '
                   '"time_in": "2023-04-19T12:04:41.320119Z", "time_out": "2023-04-19T12:04:41.980119Z"}')


def parse(frame: str | bytes) -> list[Any]:
    return ADAPTER.parse_frame(frame, 123)


def entry(example: str, **changes: Any) -> str:
    """A published example with some fields of its entry changed (None: removed)."""
    message = json.loads(example)
    message["data"][0].update(changes)
    message["data"][0] = {k: v for k, v in message["data"][0].items() if v is not None}
    return json.dumps(message)


# --- the adapter on the published examples -------------------------------------------------

def test_endpoint_token_and_keepalive() -> None:
    assert ADAPTER.url == "wss://ws-auth.kraken.com/v2"
    assert ADAPTER.open_op == "ws_token" and ADAPTER.ready_on_connect is False
    assert ADAPTER.keepalive == KeepAlive(interval_s=20.0, message='{"method":"ping"}')
    assert parse(DOCS_PONG) == [] and parse(DOCS_STATUS) == [] and parse(CCXT_HEARTBEAT) == []


def test_the_token_comes_from_get_websockets_token() -> None:
    request = REST.build_request("ws_token", None, DEMO, 1_700_000_000_000, 1_700_000_000_000_123)
    assert (request.method, request.url) == ("POST", "https://api.kraken.com/0/private/GetWebSocketsToken")
    assert request.body == b"nonce=1700000000000123" and "API-Sign" in request.headers  # the key's shared nonce
    assert REST.endpoints["ws_token"].cost == {"counter": 1}
    token = REST.parse_response("ws_token", 200, {}, DOCS_TOKEN_REPLY.encode())
    assert token == WsToken(token="xeAQ/RCChBYNVh53sTv1yZ5H4wIbwDF20PiHtTF+4UI", expires_s=900)
    assert "xeAQ" not in repr(token)  # a credential
    refused = REST.parse_response("ws_token", 200, {}, b'{"error":["EGeneral:Permission denied"]}')
    assert isinstance(refused, AuthError)


def test_the_subscribe_asks_for_every_transition_and_no_snapshot() -> None:
    (message,) = ADAPTER.subscribe_messages(DEMO, WsToken(token="G38a1tGFzqGiUCmnegBcm8d4nfP3tytiNQz6tkCBYXY"), 0)
    sent = json.loads(message)
    docs = json.loads(DOCS_SUBSCRIBE)
    assert sent["method"] == docs["method"] and sent["params"]["token"] == docs["params"]["token"]
    assert sent["params"] == {**docs["params"], "snap_orders": False, "snap_trades": False, "order_status": True}
    with pytest.raises(ValueError):
        ADAPTER.subscribe_messages(DEMO, None, 0)


def test_the_subscribe_ack_makes_the_stream_ready_and_errors_end_it() -> None:
    assert parse(DOCS_SUBSCRIBED) == [StreamReady()]
    assert parse('{"method": "subscribe", "result": {"channel": "balances"}, "success": true}') == []
    assert parse('{"method": "unsubscribe", "result": {"channel": "executions"}, "success": true}') == []
    assert parse(INVALID_SESSION) == [VenueNotice("error", "kraken subscribe: ESession:Invalid session")]
    assert parse(CCXT_V2_ERROR) == [VenueNotice("error", "kraken add_order: Unsupported field: 'price' for the "
                                                         "given msg type: add order")]
    echo = '{"error": "EGeneral:Invalid arguments: {\\"token\\": \\"G38a1tGFzq\\"}", "method": "subscribe", "success": false}'
    (notice,) = parse(echo)
    assert notice == VenueNotice("error", "kraken subscribe: EGeneral:Invalid arguments") and "G38a" not in repr(notice)


def test_pending_new_is_an_open_order_without_a_fill() -> None:
    (update,) = parse(DOCS_PENDING_NEW)
    assert update == OrderUpdate(
        venue="kraken", client_order_id=None, venue_order_id="OK4GJX-KSTLS-7DZZO5", state="open",
        filled_quantity=Decimal(0), ts_event=1695378785709950000, symbol="BTC-USD", side="sell", order_type="limit",
        price=Decimal("26500.0"), quantity=Decimal("0.005"), cumulative=False)


def test_the_docs_trade_is_one_fill_named_by_exec_id() -> None:
    (update,) = parse(DOCS_TRADE)
    assert update == OrderUpdate(
        venue="kraken", client_order_id=None, venue_order_id="O6NTZC-K6FRH-ATWBCK", state="filled",
        filled_quantity=Decimal("15.44"), ts_event=123, symbol="USDC-USD", side="sell", order_type="market",
        last_fill_price=Decimal("1.0002"), last_fill_quantity=Decimal("15.44"), fee=Decimal("0.3458"), fee_asset="USD",
        trade_id="T5DIUI-5N4KO-Z5BPXK", cumulative=False)  # no cum_qty in the example: this fill only


def test_a_trade_with_totals_is_cumulative_and_completes_the_order() -> None:
    """unified-ws: "A trade event can report order_status: partially_filled even when that trade fills the entire order"."""
    (last,) = parse(entry(DOCS_TRADE, order_status="partially_filled", cum_qty=30.88, order_qty=30.88, avg_price=1.0002,
                          timestamp="2023-09-22T10:33:05.709950Z"))
    assert (last.state, last.filled_quantity, last.cumulative, last.average_price) == (
        "filled", Decimal("30.88"), True, Decimal("1.0002"))
    (partial,) = parse(entry(DOCS_TRADE, order_status="partially_filled", cum_qty=15.44, order_qty=30.88))
    assert (partial.state, partial.filled_quantity, partial.trade_id) == ("partially_filled", Decimal("15.44"), "T5DIUI-5N4KO-Z5BPXK")
    (two,) = parse(entry(DOCS_TRADE, fees=[{"asset": "USD", "qty": 0.3}, {"asset": "USD", "qty": 0.0458}]))
    assert (two.fee, two.fee_asset) == (Decimal("0.3458"), "USD")
    (xbt,) = parse(entry(DOCS_TRADE, fees=[{"asset": "XBT", "qty": 0.00001}]))
    assert xbt.fee_asset == "BTC"


def test_canceled_and_filled_are_totals() -> None:
    (canceled,) = parse(DOCS_CANCELED)
    assert (canceled.state, canceled.filled_quantity, canceled.cumulative, canceled.trade_id, canceled.average_price) == (
        "canceled", Decimal(0), True, None, None)
    assert canceled.ts_event == 1760195507695226000
    (filled,) = parse(entry(DOCS_CANCELED, exec_type="filled", order_status="filled", cum_qty=0.01, avg_price=56000.1,
                            cancel_reason=None, reason=None))
    assert (filled.state, filled.filled_quantity, filled.average_price, filled.last_fill_quantity) == (
        "filled", Decimal("0.01"), Decimal("56000.1"), None)
    (expired,) = parse(entry(DOCS_CANCELED, exec_type="expired", order_status=None))  # state from exec_type
    assert expired.state == "expired"


def test_client_order_ids_map_back_as_the_rest_adapter_sends_them() -> None:
    short = REST.venue_client_order_id("krA1")
    hashed = REST.venue_client_order_id("strategy-7_buy-the-dip-now")  # a UUID5: cannot be reversed
    uuid4 = "9f3c1f8e-2b1a-4c7d-9e0f-1a2b3c4d5e6f"
    assert (short, REST.venue_client_order_id(uuid4)) == ("krA1", uuid4) and hashed != "strategy-7_buy-the-dip-now"
    assert parse(entry(DOCS_PENDING_NEW, cl_ord_id=short))[0].client_order_id == "krA1"
    assert parse(entry(DOCS_PENDING_NEW, cl_ord_id=hashed))[0].client_order_id is None
    assert parse(entry(DOCS_PENDING_NEW, cl_ord_id=uuid4))[0].client_order_id == uuid4


@pytest.mark.parametrize("frame, error", [
    ("not json", msgspec.DecodeError),
    ("[1, 2]", msgspec.ValidationError),
    (entry(DOCS_TRADE, order_id=None), msgspec.ValidationError),
    (entry(DOCS_TRADE, last_qty="lots"), msgspec.ValidationError),
    (entry(DOCS_TRADE, order_status="sleeping"), ValueError),
    (entry(DOCS_TRADE, side="both"), ValueError),
    (entry(DOCS_PENDING_NEW, timestamp="soon"), ValueError),
    ('{"channel": "executions", "type": "update", "data": {"order_id": "O"}}', msgspec.ValidationError),
])
def test_unreadable_frames_raise(frame: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse(frame)


def test_other_channels_are_not_order_news() -> None:
    assert parse('{"channel": "balances", "type": "update", "data": [{"asset": "BTC"}]}') == []
    assert parse('{"channel": "executions", "type": "snapshot", "data": [], "sequence": 1}') == []
    assert parse("{}") == []


# --- against the simulator --------------------------------------------------------------------

@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator({"replay": False, "venues": ["kraken"]}) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[HttpTransport]:
    async with HttpTransport() as transport:
        yield transport


async def new_token(sim: Simulator, http: HttpTransport, creds: Credentials = DEMO) -> Any:
    return await rest_call(rest_adapter("kraken", sim.url("kraken")), http, "ws_token", None, creds)


@asynccontextmanager
async def raw_ws(sim: Simulator) -> AsyncIterator[ClientConnection]:
    async with connect(sim.ws_url("kraken") + "/v2", open_timeout=2) as ws:
        yield ws


async def reply(ws: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), 2))


def subscribe(token: str, req_id: int = 7, **params: Any) -> str:
    return json.dumps({"method": "subscribe", "params": {"channel": "executions", "token": token, **params},
                       "req_id": req_id})


def ahead_of_us(sim: Simulator) -> Decimal:
    """The recorded size at the best bid, which a new buy there waits behind."""
    return sim.venues["kraken"].core.levels(SYMBOL, "buy", 1)[0][1]


def notices(probe: Probe) -> list[VenueNotice]:
    return [e for e in probe.events if isinstance(e, VenueNotice)]


async def test_the_stream_is_ready_after_the_token_and_subscribe(sim: Simulator) -> None:
    async with open_probe(sim, "kraken") as probe:
        assert probe.ready
        ack, snapshot = (json.loads(r) for r in probe.raw[:2])
    assert (ack["method"], ack["success"], ack["req_id"], ack["result"]) == (
        "subscribe", True, 1, {"channel": "executions", "snap_orders": False, "snap_trades": False})
    assert (snapshot["channel"], snapshot["type"], snapshot["data"], snapshot["sequence"]) == (
        "executions", "snapshot", [], 1)
    assert probe.updates == [] and probe.errors == [] and notices(probe) == []


async def test_a_resting_buy_filled_in_three_takes(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "kraken", http)
    async with open_probe(sim, "kraken") as probe:
        bid = await trader.best_bid(SYMBOL)
        placed = await trader.rest_buy(SYMBOL, "krws1", Decimal("0.01"), bid)
        await trader.take(SYMBOL, ahead_of_us(sim) - Decimal("0.01") + Decimal("0.003"))
        await trader.take(SYMBOL, Decimal("0.003"))
        await trader.take(SYMBOL, Decimal("0.004"))
        updates = await probe.updates_of("krws1", 6)
    assert probe.errors == []
    assert {u.venue_order_id for u in probe.updates} == {placed.venue_order_id}  # the taker's orders are not ours
    assert [(u.state, u.filled_quantity, u.cumulative) for u in updates] == [
        ("open", 0, False), ("open", 0, False), ("partially_filled", Decimal("0.003"), False),
        ("partially_filled", Decimal("0.003"), False), ("filled", Decimal("0.004"), False),
        ("filled", Decimal("0.01"), True)]
    assert [json.loads(r)["data"][0]["exec_type"] for r in probe.raw[2:]] == [
        "pending_new", "new", "trade", "trade", "trade", "filled"]
    assert [json.loads(r)["sequence"] for r in probe.raw[1:]] == list(range(1, 8))
    order = sim.venues["kraken"].core.orders[placed.venue_order_id]
    fills = updates[2:5]
    assert [(u.last_fill_quantity, u.last_fill_price, u.fee, u.fee_asset) for u in fills] == [
        (f.quantity, f.price, f.fee, "CHF") for f in order.fills]
    assert all(u.fee > 0 for u in fills) and sum(u.fee for u in fills) == order.fees
    # the trade ids are those REST TradesHistory gives the same fills: the executor sees each once
    history = await trader.call("trade_history", TradeHistoryQuery(symbol=SYMBOL))
    assert [u.trade_id for u in fills] == [f.trade_id for f in history if f.venue_order_id == placed.venue_order_id]
    assert (updates[0].symbol, updates[0].side, updates[0].price, updates[0].quantity) == (SYMBOL, "buy", bid, Decimal("0.01"))
    assert updates[-1].average_price == bid and updates[-1].ts_event == order.fills[-1].ts // 1000 * 1000


async def test_a_cancel_after_a_partial_fill(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "kraken", http)
    async with open_probe(sim, "kraken") as probe:
        bid = await trader.best_bid(SYMBOL)
        placed = await trader.rest_buy(SYMBOL, "krws2", Decimal("0.01"), bid)
        await trader.take(SYMBOL, ahead_of_us(sim) - Decimal("0.01") + Decimal("0.004"))
        await trader.cancel(SYMBOL, "krws2", placed.venue_order_id)
        updates = await probe.updates_of("krws2", 4)
    assert [(u.state, u.filled_quantity, u.trade_id is not None) for u in updates] == [
        ("open", 0, False), ("open", 0, False), ("partially_filled", Decimal("0.004"), True),
        ("canceled", Decimal("0.004"), False)]
    row = json.loads(probe.raw[-1])["data"][0]
    assert (row["exec_type"], row["order_status"], row["reason"], row["cum_qty"], row["avg_price"]) == (
        "canceled", "canceled", "User requested", 0.004, float(bid))


async def test_the_snapshot_has_the_open_orders_and_the_last_trades(sim: Simulator, http: HttpTransport) -> None:
    """snap_orders (default true) and snap_trades, as the docs' subscribe example asks."""
    trader = Trader(sim, "kraken", http)
    placed = await trader.rest_buy(SYMBOL, "krws3", Decimal("0.01"), await trader.best_bid(SYMBOL))
    await trader.take(SYMBOL, ahead_of_us(sim) - Decimal("0.01") + Decimal("0.002"))
    token = await new_token(sim, http)
    async with raw_ws(sim) as ws:
        await ws.send(subscribe(token.token, snap_trades=True))
        assert (await reply(ws))["result"] == {"channel": "executions", "snap_orders": True, "snap_trades": True}
        snapshot = await reply(ws)
    assert (snapshot["type"], snapshot["sequence"]) == ("snapshot", 1)
    order, trade = (u for u in parse(json.dumps(snapshot)) if u.venue_order_id == placed.venue_order_id)
    assert (order.client_order_id, order.state, order.filled_quantity, order.cumulative) == (
        "krws3", "partially_filled", Decimal("0.002"), True)
    (fill,) = sim.venues["kraken"].core.orders[placed.venue_order_id].fills
    assert (trade.trade_id, trade.last_fill_quantity) == (sim.venues["kraken"].trade_txid(fill), Decimal("0.002"))


async def test_a_hashed_client_id_is_matched_by_order_id(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "kraken", http)
    async with open_probe(sim, "kraken") as probe:
        placed = await trader.rest_buy(SYMBOL, "kraken-long-client-id_1", Decimal("0.01"), await trader.best_bid(SYMBOL))
        updates = await probe.until(lambda p: (lambda mine: mine if len(mine) >= 2 else None)(
            [u for u in p.updates if u.venue_order_id == placed.venue_order_id]))
    stored = sim.venues["kraken"].core.orders[placed.venue_order_id].client_order_id
    assert stored == REST.venue_client_order_id("kraken-long-client-id_1") == json.loads(probe.raw[2])["data"][0]["cl_ord_id"]
    assert [(u.client_order_id, u.state) for u in updates] == [(None, "open"), (None, "open")]


async def test_a_post_only_order_that_would_take_is_pushed_canceled(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "kraken", http)
    ask = sim.venues["kraken"].core.best(SYMBOL, "sell")[0]
    order = PlaceOrder(command_id="c-po", venue="kraken", account="demo", symbol=SYMBOL, client_order_id="krpo1",
                       side="buy", order_type="limit", quantity=Decimal("0.01"), price=ask, post_only=True)
    async with open_probe(sim, "kraken") as probe:
        await trader.call("place_order", order)
        updates = await probe.updates_of("krpo1", 3)
    assert [(u.state, u.filled_quantity) for u in updates] == [("open", 0), ("open", 0), ("canceled", 0)]
    assert json.loads(probe.raw[-1])["data"][0]["reason"] == "Post only order"


async def test_get_websockets_token_checks_the_key_and_nonce(sim: Simulator, http: HttpTransport) -> None:
    token = await new_token(sim, http)
    assert isinstance(token, WsToken) and token.expires_s == 900 and len(token.token) == 43
    other = await new_token(sim, http)
    assert other.token != token.token  # one per request
    bad = await new_token(sim, http, Credentials(api_key="not-a-key", secret=DEMO.secret))
    assert isinstance(bad, AuthError) and bad.venue_code == "EAPI:Invalid key"
    forged = await new_token(sim, http, Credentials(api_key=DEMO.api_key, secret="bm90LXRoZS1zZWNyZXQ="))
    assert isinstance(forged, AuthError) and forged.venue_code == "EAPI:Invalid signature"
    rest = rest_adapter("kraken", sim.url("kraken"))
    stale = rest.build_request("ws_token", None, DEMO, int(time.time() * 1000), 1)  # below the key's last nonce
    response = await http.send(stale, idempotent=True)
    answer = rest.parse_response("ws_token", response.status, {}, response.body)
    assert isinstance(answer, AuthError) and answer.venue_code == "EAPI:Invalid nonce"


async def test_a_bad_or_expired_token_is_refused(sim: Simulator, http: HttpTransport) -> None:
    dialect = sim.venues["kraken"]
    token = await new_token(sim, http)
    async with raw_ws(sim) as ws:
        for wrong in ("not-a-token", None):
            await ws.send(subscribe(wrong))  # type: ignore[arg-type]
            answer = await reply(ws)
            assert (answer["error"], answer["method"], answer["req_id"], answer["success"]) == (
                "ESession:Invalid session", "subscribe", 7, False)
            assert parse(json.dumps(answer)) == [VenueNotice("error", "kraken subscribe: ESession:Invalid session")]
        account, issued = dialect.ws_tokens[token.token]
        dialect.ws_tokens[token.token] = (account, issued - dialect.TOKEN_TTL_NS)  # 15 minutes later, unused
        await ws.send(subscribe(token.token))
        assert (await reply(ws))["error"] == "ESession:Invalid session"


async def test_a_token_in_use_does_not_expire(sim: Simulator, http: HttpTransport) -> None:
    dialect = sim.venues["kraken"]
    token = await new_token(sim, http)
    async with raw_ws(sim) as first, raw_ws(sim) as second:
        await first.send(subscribe(token.token))
        assert (await reply(first))["success"] is True
        account, issued = dialect.ws_tokens[token.token]
        dialect.ws_tokens[token.token] = (account, issued - dialect.TOKEN_TTL_NS)
        await second.send(subscribe(token.token))  # still valid: its subscription is maintained
        assert (await reply(second))["success"] is True


async def test_the_protocol_replies(sim: Simulator, http: HttpTransport) -> None:
    token = await new_token(sim, http)
    trader = Trader(sim, "kraken", http)
    async with raw_ws(sim) as ws:
        await ws.send('{"method": "ping", "req_id": 101}')
        pong = await reply(ws)
        assert (pong["method"], pong["req_id"]) == ("pong", 101) and pong["time_in"].endswith("Z")
        assert parse(json.dumps(pong)) == []
        await ws.send("hello")
        assert (await reply(ws))["error"] == "Malformed request"
        await ws.send('{"method": "subscribe", "params": {"channel": "balances", "token": "x"}}')
        assert (await reply(ws))["error"] == "EGeneral:Invalid arguments"
        await ws.send('{"method": "nope"}')
        assert (await reply(ws))["success"] is False

        await ws.send(subscribe(token.token, order_status=False, snap_orders=False))
        ack = await reply(ws)
        assert (ack["success"], ack["req_id"], ack["result"]["snap_orders"]) == (True, 7, False)
        assert (await reply(ws))["type"] == "snapshot"
        await ws.send(subscribe(token.token))
        assert (await reply(ws))["error"] == "Already subscribed"
        placed = await trader.rest_buy(SYMBOL, "krraw1", Decimal("0.01"), await trader.best_bid(SYMBOL))
        push = await reply(ws)  # order_status false: no pending_new, only the open transition
        assert push["type"] == "update" and [(r["order_id"], r["cl_ord_id"], r["exec_type"]) for r in push["data"]] == [
            (placed.venue_order_id, "krraw1", "new")]

        await ws.send(json.dumps({"method": "unsubscribe", "params": {"channel": "executions", "token": token.token}}))
        assert (await reply(ws))["method"] == "unsubscribe"
        await trader.cancel(SYMBOL, "krraw1", placed.venue_order_id)
        await ws.send('{"method": "ping"}')
        assert (await reply(ws))["method"] == "pong"  # the cancel was not pushed: nothing came before the pong


async def test_a_refused_or_dropped_stream(sim: Simulator, http: HttpTransport) -> None:
    dialect = sim.venues["kraken"]
    async with open_probe(sim, "kraken") as probe:
        assert dialect.drop_private() == 1
        await asyncio.wait_for(probe.ws.wait_closed(), 2)
    dialect.private_refused = True
    with pytest.raises(InvalidStatus) as refused:
        async with raw_ws(sim):
            pass
    assert refused.value.response.status_code == 503
    dialect.private_refused = False
    async with open_probe(sim, "kraken") as again:
        assert again.ready
