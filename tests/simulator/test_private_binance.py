"""Binance's user data stream on the WebSocket API: exbus's adapter on the documented
payloads, and against the simulator as the executor drives it.

Sources, binance/binance-spot-api-docs@a5e0bc3:
- web-socket-api.md: "General API Information" (``wss://ws-api.binance.com:443/ws-api/v3``,
  24 h connections), "Response format" (the failed-response shape), "SIGNED request example
  (HMAC)" (the example key, secret, payload and signature copied below), "Session
  Authentication" (the revoked-key reply), "Connection events" (``serverShutdown``), "User
  Data Stream requests" (``userDataStream.subscribe.signature`` request and response);
- user-data-stream.md: the example events (``executionReport``, ``outboundAccountPosition``,
  ``balanceUpdate``, ``listStatus``, ``eventStreamTerminated``, ``externalLockUpdate``);
- errors.md: -1021, -1022, -2014, -2015 texts; CHANGELOG.md 2026-01-21 (listenKey retired).
The simulator's fills are checked against its core (``sim.binance.core``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from decimal import Decimal
from typing import Any, AsyncIterator

import aiohttp
import msgspec
import pytest
from websockets.asyncio.client import ClientConnection, connect

from schemas.vault import Credentials
from services.executor.credentials import paper_keys
from services.simulator import Simulator
from services.simulator.dialects.binance_private import signature_payload
from services.venues import rest_adapter
from services.venues.binance.private import BinanceUserStream, subscribe_payload
from services.venues.http import HttpTransport
from services.venues.privatews import OrderUpdate, StreamReady, private_stream
from services.venues.wsbase import VenueNotice

from .private_probe import Trader, open_probe

# --- the docs' examples ----------------------------------------------------------------------

DOC_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_PARAMS = {  # web-socket-api.md, SIGNED request example (HMAC), first example
    "symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01000000",
    "price": "52000.00", "recvWindow": 100, "timestamp": 1645423376532, "apiKey": DOC_API_KEY,
}
DOC_PAYLOAD = ("apiKey=vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A&price=52000.00"
               "&quantity=0.01000000&recvWindow=100&side=SELL&symbol=BTCUSDT&timeInForce=GTC"
               "&timestamp=1645423376532&type=LIMIT")
DOC_SIGNATURE = "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"

DOC_SUBSCRIBE_RESPONSE = {"id": "d3df8a22-98ea-4fe0-9f4e-0fcea5d418b7", "status": 200, "result": {"subscriptionId": 0}}

DOC_EXECUTION_REPORT = {  # user-data-stream.md, Order Update (comments removed)
    "subscriptionId": 0,
    "event": {
        "e": "executionReport", "E": 1499405658658, "s": "ETHBTC", "c": "mUvoqJxFIILMdfAW5iGSOW", "S": "BUY",
        "o": "LIMIT", "f": "GTC", "q": "1.00000000", "p": "0.10264410", "P": "0.00000000", "F": "0.00000000",
        "g": -1, "C": "", "x": "NEW", "X": "NEW", "r": "NONE", "i": 4293153, "l": "0.00000000",
        "z": "0.00000000", "L": "0.00000000", "n": "0", "N": None, "T": 1499405658657, "t": -1, "v": 3,
        "I": 8641984, "w": True, "m": False, "M": False, "O": 1499405658657, "Z": "0.00000000",
        "Y": "0.00000000", "Q": "0.00000000", "W": 1499405658657, "V": "NONE",
    },
}
DOC_OTHER_EVENTS = [  # user-data-stream.md
    {"subscriptionId": 0, "event": {"e": "outboundAccountPosition", "E": 1564034571105, "u": 1564034571073,
                                    "B": [{"a": "ETH", "f": "10000.000000", "l": "0.000000"}]}},
    {"subscriptionId": 0, "event": {"e": "balanceUpdate", "E": 1573200697110, "a": "BTC", "d": "100.00000000",
                                    "T": 1573200697068}},
    {"subscriptionId": 0, "event": {"e": "listStatus", "E": 1564035303637, "s": "ETHBTC", "g": 2, "c": "OCO",
                                    "l": "EXEC_STARTED", "L": "EXECUTING", "r": "NONE", "C": "F4QN4G8DlFATFlIUQ0cjdD",
                                    "T": 1564035303625, "O": [{"s": "ETHBTC", "i": 17, "c": "AJYsMjErWJesZvqlJCTUgL"},
                                                              {"s": "ETHBTC", "i": 18, "c": "bfYPSQdLoqAJeNrOr9adzq"}]}},
    {"subscriptionId": 0, "event": {"e": "externalLockUpdate", "E": 1581557507324, "a": "NEO", "d": "10.00000000",
                                    "T": 1581557507268}},
]
DOC_STREAM_TERMINATED = {"subscriptionId": 0, "event": {"e": "eventStreamTerminated", "E": 1728973001334}}
DOC_SERVER_SHUTDOWN = {"event": {"e": "serverShutdown", "E": 1770123456789}}  # web-socket-api.md


def doc_sign(secret: str, params: dict[str, Any]) -> str:
    """The docs' recipe: params but signature sorted by name, ``name=value`` joined by ``&``,
    HMAC-SHA256 with the secret, hex."""
    payload = "&".join(f"{name}={params[name]}" for name in sorted(params) if name != "signature")
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def adapter(url: str | None = None) -> BinanceUserStream:
    stream = private_stream("binance", rest_adapter("binance", url))
    assert isinstance(stream, BinanceUserStream)
    return stream


def frame(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


# --- unit: the adapter on the documented payloads ----------------------------------------------


def test_the_test_signer_and_both_payload_builders_match_the_docs_example() -> None:
    assert doc_sign(DOC_SECRET, DOC_PARAMS) == DOC_SIGNATURE
    assert subscribe_payload(DOC_PARAMS) == DOC_PAYLOAD  # exbus's adapter
    assert signature_payload(DOC_PARAMS) == DOC_PAYLOAD  # the simulator's verifier


def test_the_subscribe_request_is_signed_as_documented() -> None:
    creds = Credentials(api_key=DOC_API_KEY, secret=DOC_SECRET)
    (message,) = adapter().subscribe_messages(creds, None, 1747385641636)  # the subscribe example's timestamp
    request = json.loads(message)
    assert request["method"] == "userDataStream.subscribe.signature"
    params = request["params"]
    assert {k: v for k, v in params.items() if k != "signature"} == {
        "apiKey": DOC_API_KEY, "timestamp": 1747385641636, "recvWindow": 5000}
    assert params["signature"] == doc_sign(DOC_SECRET, params)
    assert DOC_SECRET not in message


def test_the_documented_subscribe_answer_to_our_request_marks_the_stream_ready() -> None:
    stream = adapter()
    (message,) = stream.subscribe_messages(Credentials(api_key=DOC_API_KEY, secret=DOC_SECRET), None, 0)
    ours = DOC_SUBSCRIBE_RESPONSE | {"id": json.loads(message)["id"]}
    assert stream.parse_frame(frame(ours), 0) == [StreamReady()]
    assert stream.parse_frame(frame(DOC_SUBSCRIBE_RESPONSE), 0) == []  # someone else's request id


@pytest.mark.parametrize(("reply", "text"), [
    ({"id": "exbus-user-data", "status": 400, "error": {"code": -1022, "msg": "Signature for this request is not valid."}},
     "binance -1022: Signature for this request is not valid."),
    ({"id": "exbus-user-data", "status": 400, "error": {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}},
     "binance -1021: Timestamp for this request is outside of the recvWindow."),
    ({"id": "exbus-user-data", "status": 401, "error": {"code": -2014, "msg": "API-key format invalid."}},
     "binance -2014: API-key format invalid."),
    ({"id": None, "status": 401, "error": {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}},
     "binance -2015: Invalid API-key, IP, or permissions for action."),  # Session Authentication: a key revoked
])
def test_error_replies_end_the_session(reply: dict[str, Any], text: str) -> None:
    assert adapter().parse_frame(frame(reply), 0) == [VenueNotice("error", text)]


def test_the_documented_execution_report() -> None:
    (update,) = adapter().parse_frame(frame(DOC_EXECUTION_REPORT), 0)
    assert update == OrderUpdate(
        venue="binance", client_order_id="mUvoqJxFIILMdfAW5iGSOW", venue_order_id="4293153", state="open",
        filled_quantity=Decimal("0.00000000"), ts_event=1499405658657 * 1_000_000, symbol="ETH-BTC", side="buy",
        order_type="limit", price=Decimal("0.10264410"), quantity=Decimal("1.00000000"))


def test_other_documented_events_are_no_order_news() -> None:
    for event in DOC_OTHER_EVENTS:
        assert adapter().parse_frame(frame(event), 0) == [], event["event"]["e"]


@pytest.mark.parametrize("event", [DOC_STREAM_TERMINATED, DOC_SERVER_SHUTDOWN])
def test_the_end_of_a_stream_asks_for_a_reconnect(event: dict[str, Any]) -> None:
    (notice,) = adapter().parse_frame(frame(event), 0)
    assert notice == VenueNotice("reconnect", f"binance user data stream ended: {event['event']['e']}")


@pytest.mark.parametrize(("data", "error"), [
    (b"not json", msgspec.DecodeError),
    (b"[1, 2]", msgspec.ValidationError),
    (frame({"subscriptionId": 0, "event": DOC_EXECUTION_REPORT["event"] | {"z": None}}), msgspec.ValidationError),
    (frame({"subscriptionId": 0, "event": "executionReport"}), msgspec.ValidationError),
    (frame({"id": "exbus-user-data", "status": 200, "result": {}}), ValueError),
])
def test_unreadable_frames_raise(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        adapter().parse_frame(data, 0)


def test_frames_of_nothing_are_ignored() -> None:
    for data in (b"{}", frame({"id": 7, "status": 200, "result": {}}), frame({"subscriptionId": 0, "event": {"e": "new"}})):
        assert adapter().parse_frame(data, 0) == []


def test_endpoint_and_session_limits() -> None:
    stream = adapter()
    assert stream.url == "wss://ws-api.binance.com:443/ws-api/v3"
    assert (stream.open_op, stream.ready_on_connect, stream.max_session_s) == (None, False, 24 * 3600)
    assert stream.keepalive.message is None  # WebSocket pings (the server pings every 20 s)
    assert stream.connection(None, Credentials(api_key=DOC_API_KEY, secret=DOC_SECRET), 0).headers == {}
    assert adapter("http://127.0.0.1:9000").url == "ws://127.0.0.1:9000/ws-api/v3"


# --- against the simulator ----------------------------------------------------------------------

MARKET, TICK = "NKN-USDT", Decimal("0.0001")
REQUEST_ID = "exbus-user-data"


@pytest.fixture
async def http() -> AsyncIterator[HttpTransport]:
    async with HttpTransport() as transport:
        yield transport


def demo() -> Credentials:
    return paper_keys()[("binance", "demo")]


def sim_adapter(simulator: Simulator) -> BinanceUserStream:
    return adapter(simulator.url("binance"))


async def request(ws: ClientConnection, message: dict[str, Any] | str) -> dict[str, Any]:
    """Send one request; the next frame that answers something (a response, not an event)."""
    await ws.send(message if isinstance(message, str) else json.dumps(message))
    while True:
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if "status" in reply:
            return reply


def signed_subscribe(creds: Credentials, *, ts_ms: int | None = None, req_id: Any = "s1",
                     upper: bool = False) -> dict[str, Any]:
    """A subscribe signed by the docs' recipe (not exbus's), params in another order."""
    params: dict[str, Any] = {"timestamp": ts_ms or time.time_ns() // 1_000_000, "apiKey": creds.api_key}
    signature = doc_sign(creds.secret, params)
    return {"id": req_id, "method": "userDataStream.subscribe.signature",
            "params": {"signature": signature.upper() if upper else signature, **params}}


async def test_a_resting_buy_filled_in_three_takes_streams_every_fill(simulator: Simulator, http: HttpTransport) -> None:
    trader = Trader(simulator, "binance", http)
    async with open_probe(simulator, "binance") as probe:
        assert probe.ready
        price = await trader.best_bid(MARKET) + TICK
        placed = await trader.rest_buy(MARKET, "pb1", Decimal(1000), price)
        for quantity in (300, 300, 400):
            await trader.take(MARKET, Decimal(quantity))
        updates = await probe.updates_of("pb1", 4)
    assert not probe.errors
    assert [(u.state, u.filled_quantity) for u in updates] == [
        ("open", 0), ("partially_filled", 300), ("partially_filled", 600), ("filled", 1000)]
    assert {u.venue_order_id for u in updates} == {placed.venue_order_id}
    order = simulator.binance.core.orders[placed.venue_order_id]
    fills = [f for o, f in simulator.binance.core.trades["demo"] if o is order]
    assert [(u.trade_id, u.last_fill_quantity, u.last_fill_price, u.fee, u.fee_asset) for u in updates[1:]] == [
        (str(f.trade_id), f.quantity, f.price, f.fee, f.fee_asset) for f in fills]
    assert [f.quantity for f in fills] == [300, 300, 400] and all(f.price == price for f in fills)
    assert updates[0].trade_id is None and updates[-1].average_price == price


async def test_a_cancel_streams_the_order_s_own_client_id(simulator: Simulator, http: HttpTransport) -> None:
    trader = Trader(simulator, "binance", http)
    async with open_probe(simulator, "binance") as probe:
        placed = await trader.rest_buy(MARKET, "pb2", Decimal(1000), await trader.best_bid(MARKET) - 10 * TICK)
        await trader.cancel(MARKET, "pb2")
        opened, canceled = await probe.updates_of("pb2", 2)
    assert (opened.state, canceled.state, canceled.filled_quantity) == ("open", "canceled", 0)
    assert canceled.venue_order_id == placed.venue_order_id and canceled.last_fill_quantity is None
    report = json.loads(next(r for r in probe.raw if '"CANCELED"' in r))
    assert report["subscriptionId"] == 0 and report["event"]["C"] == "pb2"  # "c" is the cancel's own id


@pytest.mark.parametrize(("creds", "age_ms", "status", "code", "msg"), [
    (Credentials(api_key="sim-binance-demo-key", secret="not-the-secret"), 0, 400, -1022,
     "Signature for this request is not valid."),
    (Credentials(api_key="no-such-key", secret="x"), 0, 401, -2015, "Invalid API-key, IP, or permissions for action."),
    (None, 10_000, 400, -1021, "Timestamp for this request is outside of the recvWindow."),
    (None, -2_000, 400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."),
])
async def test_refused_subscriptions_get_binance_s_error_and_end_the_session(
        simulator: Simulator, creds: Credentials | None, age_ms: int, status: int, code: int, msg: str) -> None:
    stream = sim_adapter(simulator)
    async with connect(stream.url) as ws:
        (message,) = stream.subscribe_messages(creds or demo(), None, time.time_ns() // 1_000_000 - age_ms)
        reply = await request(ws, message)
    assert (reply["id"], reply["status"], reply["error"]) == (REQUEST_ID, status, {"code": code, "msg": msg})
    assert stream.parse_frame(json.dumps(reply), 0) == [VenueNotice("error", f"binance {code}: {msg}")]
    assert not simulator.binance.private_sessions or all(s.account is None for s in simulator.binance.private_sessions)


async def test_the_signature_is_checked_as_the_docs_define_it(simulator: Simulator) -> None:
    """Params in any order, an upper-case hex signature; one param changed after signing fails."""
    creds = demo()
    async with connect(sim_adapter(simulator).url) as ws:
        ok = await request(ws, signed_subscribe(creds, upper=True))
        assert (ok["id"], ok["status"], ok["result"]) == ("s1", 200, {"subscriptionId": 0})
        assert ok["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT" and ok["rateLimits"][0]["count"] >= 4
        tampered = signed_subscribe(paper_keys()[("binance", "taker")], req_id=2)
        tampered["params"]["timestamp"] += 1
        bad = await request(ws, tampered)
        assert (bad["id"], bad["status"], bad["error"]["code"]) == (2, 400, -1022)
        taker = await request(ws, signed_subscribe(paper_keys()[("binance", "taker")], req_id=3))
        assert taker["result"] == {"subscriptionId": 1}  # a second account on the same connection
        listed = await request(ws, {"id": 4, "method": "session.subscriptions"})
        assert listed["result"] == [{"subscriptionId": 0}, {"subscriptionId": 1}]


@pytest.mark.parametrize(("message", "reply_id", "code"), [
    ({"id": 1, "method": "userDataStream.start", "params": {"apiKey": "sim-binance-demo-key"}}, 1, -1020),  # retired
    ({"id": 2, "method": "no.such.method"}, 2, -1020),
    ({"id": 3, "method": "userDataStream.subscribe.signature", "params": ["x"]}, 3, -1135),
    ({"id": 4, "method": "userDataStream.subscribe.signature", "params": {"timestamp": 1, "signature": "ab"}}, 4, -1102),
    ("not json", None, -1135),
])
async def test_unknown_retired_and_malformed_requests(simulator: Simulator, message: Any, reply_id: Any,
                                                      code: int) -> None:
    stream = sim_adapter(simulator)
    async with connect(stream.url) as ws:
        reply = await request(ws, message)
    assert (reply["id"], reply["status"], reply["error"]["code"]) == (reply_id, 400, code)
    (notice,) = stream.parse_frame(json.dumps(reply), 0)
    assert notice.kind == "error" and str(code) in notice.message


async def test_balances_are_pushed_on_the_subscription_and_are_no_order_news(
        simulator: Simulator, http: HttpTransport) -> None:
    trader = Trader(simulator, "binance", http)
    async with open_probe(simulator, "binance") as probe:
        await trader.rest_buy(MARKET, "pb3", Decimal(100), await trader.best_bid(MARKET) - 10 * TICK)
        await probe.updates_of("pb3", 1)
        positions = await probe.until(lambda p: [json.loads(r) for r in p.raw if "outboundAccountPosition" in r])
    assert positions[0]["subscriptionId"] == 0
    balances = {b["a"]: b for b in positions[0]["event"]["B"]}
    wallet = simulator.binance.core.exchange.wallets["demo"]
    assert Decimal(balances["USDT"]["l"]) == wallet.locked["USDT"] > 0
    assert len(probe.updates) == 1 and not probe.errors


async def test_unsubscribe_and_server_shutdown_end_the_stream(simulator: Simulator) -> None:
    async with open_probe(simulator, "binance") as probe:
        await probe.ws.send(json.dumps({"id": 9, "method": "userDataStream.unsubscribe"}))
        await probe.until(lambda p: any(isinstance(e, VenueNotice) for e in p.events))
        assert probe.events[-1] == VenueNotice("reconnect", "binance user data stream ended: eventStreamTerminated")
        assert json.loads(probe.raw[-1]) == {"id": 9, "status": 200, "result": {}, "rateLimits": [
            json.loads(probe.raw[-1])["rateLimits"][0]]}
    async with open_probe(simulator, "binance") as probe:
        assert simulator.binance.announce_shutdown() == 1
        await probe.until(lambda p: any(isinstance(e, VenueNotice) for e in p.events))
        assert probe.events[-1] == VenueNotice("reconnect", "binance user data stream ended: serverShutdown")


async def test_a_down_stream_refuses_connections_and_drops_open_ones(simulator: Simulator) -> None:
    async with open_probe(simulator, "binance") as probe:
        simulator.binance.private_refused = True
        assert simulator.binance.drop_private() == 1
        await asyncio.wait_for(probe.ws.wait_closed(), 5)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(sim_adapter(simulator).url)
    assert refused.value.status == 503


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_the_listen_key_endpoints_are_gone(simulator: Simulator, method: str) -> None:
    """Retired 2026-02-20; Binance answers 410 with its front end's page (136 bytes, as reported)."""
    headers = {"X-MBX-APIKEY": demo().api_key}
    async with aiohttp.ClientSession() as session:
        async with session.request(method, simulator.url("binance") + "/api/v3/userDataStream", headers=headers) as r:
            body = await r.read()
    assert (r.status, len(body), r.content_type) == (410, 136, "text/html") and b"410 Gone" in body
