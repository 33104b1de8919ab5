"""Upbit's private ``myOrder`` stream: exbus's adapter on frames of the documented shape, and
against the simulator (bearer JWT handshake, request, fills, cancel, refusals, formats,
drop and refusal of the stream) the way the executor drives it.

Sources (docs.upbit.com): "WebSocket 사용 및 에러 안내" (``Authorization: Bearer <JWT>`` in
the handshake; request [ticket, type..., format]; ``PING`` -> ``{"status":"UP"}``; errors
``{"error": {"name", "message"}}``: WRONG_FORMAT, NO_TICKET, NO_TYPE, INVALID_PARAM;
DEFAULT/SIMPLE/JSON_LIST/SIMPLE_LIST), "인증" (REST error names: no_authorization_token,
invalid_access_key, jwt_verification, nonce_used), "내 주문 및 체결 (MyOrder)" (the field
table and SIMPLE abbreviations: the frame below has every field of it, with values of the
documented types; tests/executor/test_order_streams.py checks the same frame field by
field), "내 자산 (MyAsset)". The simulator's fills are checked against its core.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal
from typing import AsyncIterator

import jwt
import msgspec
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from schemas.vault import Credentials
from services.executor.credentials import paper_keys
from services.simulator import Simulator
from services.venues import rest_adapter
from services.venues.http import HttpTransport
from services.venues.privatews import StreamReady, private_stream
from services.venues.upbit.private import UpbitPrivateStream
from services.venues.wsbase import KeepAlive, VenueNotice

from .private_probe import Probe, Trader, open_probe
from .upbitlike_ws import ahead_of_us, bearer, raw_ws, refusal, reply, subscribe

SYMBOL, CODE = "LAMB-KRW", "KRW-LAMB"
PATH = "/websocket/v1/private"
DEMO = paper_keys()[("upbit", "demo")]
ADAPTER = private_stream("upbit", rest_adapter("upbit"))
assert isinstance(ADAPTER, UpbitPrivateStream)

# "내 주문 및 체결 (MyOrder)": every field of the table, values of the documented types
MY_ORDER_TRADE = {
    "type": "myOrder", "code": "KRW-BTC", "uuid": "ac2dc2a3-fce9-40a2-a4f6-5987c25c438f", "ask_bid": "BID",
    "order_type": "limit", "state": "trade", "trade_uuid": "68315169-fba4-4175-ade3-aff14a616657",
    "price": 0.001453, "avg_price": 0.00145372, "volume": 30925891.29839369,
    "remaining_volume": 29968038.09235948, "executed_volume": 30925891.29839369, "trades_count": 1,
    "reserved_fee": 44.23943970238218, "remaining_fee": 21.77177967409916, "paid_fee": 22.467660028283017,
    "locked": 43565.33250074177, "executed_funds": 44935.32005656603, "time_in_force": None,
    "trade_fee": 22.467660028283017, "is_maker": True, "identifier": "test-1", "smp_type": None,
    "prevented_volume": 0, "prevented_locked": 0, "trade_timestamp": 1710751590421,
    "order_timestamp": 1710751590000, "timestamp": 1710751597500, "stream_type": "REALTIME",
}


def frame(**changes: object) -> str:
    return json.dumps({**MY_ORDER_TRADE, **changes})


# --- the adapter ------------------------------------------------------------------------------

def test_endpoint_keepalive_and_handshake() -> None:
    assert ADAPTER.url == "wss://api.upbit.com/websocket/v1/private"
    assert ADAPTER.keepalive == KeepAlive(interval_s=20.0) and ADAPTER.ready_on_connect is False
    target = ADAPTER.connection(None, Credentials(api_key="doc-key", secret="doc-secret-" + "x" * 32), 0)
    scheme, token = target.headers["Authorization"].split(" ")
    claims = jwt.decode(token, "doc-secret-" + "x" * 32, algorithms=["HS256"])
    assert scheme == "Bearer" and set(claims) == {"access_key", "nonce"} and claims["access_key"] == "doc-key"
    assert "doc-secret" not in repr(target)


def test_a_trade_is_one_fill_with_its_own_fee() -> None:
    (update,) = ADAPTER.parse_frame(frame(), 0)
    assert (update.state, update.trade_id, update.fee, update.fee_asset, update.fees_total) == (
        "partially_filled", "68315169-fba4-4175-ade3-aff14a616657", Decimal("22.467660028283017"), "KRW", None)
    assert (update.last_fill_price, update.last_fill_quantity) == (Decimal("0.001453"), Decimal("30925891.29839369"))


@pytest.mark.parametrize("state, remaining, executed, expected", [
    ("wait", 1, 0, "open"), ("watch", 1, 0, "open"), ("trade", 1, 1, "partially_filled"), ("trade", 0, 2, "filled"),
    ("done", 0, 2, "filled"), ("cancel", 1, 1, "canceled"), ("prevented", 0, 1, "canceled"),
    ("prevented", 1, 1, "partially_filled"),
])
def test_every_documented_state(state: str, remaining: int, executed: int, expected: str) -> None:
    (update,) = ADAPTER.parse_frame(frame(state=state, remaining_volume=remaining, executed_volume=executed), 0)
    assert update.state == expected
    assert (update.trade_id is not None) == (state == "trade")


def test_a_market_buy_by_price_has_no_quantity() -> None:
    (update,) = ADAPTER.parse_frame(frame(order_type="price", state="wait", price=10000, volume=None,
                                          remaining_volume=None, executed_volume=0, trade_uuid=None), 0)
    assert (update.order_type, update.quantity, update.price, update.side) == ("market", None, None, "buy")


def test_control_frames() -> None:
    assert ADAPTER.parse_frame(b'{"status":"UP"}', 0) == [StreamReady()]
    assert ADAPTER.parse_frame(b'{"error": {"name": "NO_TICKET", "message": "The request has no ticket."}}', 0) == [
        VenueNotice("error", "upbit NO_TICKET: The request has no ticket.")]
    asset = {"type": "myAsset", "asset_uuid": "e635f223", "assets": [{"currency": "KRW", "balance": 1, "locked": 0}],
             "asset_timestamp": 1, "timestamp": 1, "stream_type": "REALTIME"}
    assert ADAPTER.parse_frame(json.dumps(asset), 0) == []


@pytest.mark.parametrize("data, error", [
    ("not json", msgspec.DecodeError),
    ("[1, 2]", msgspec.ValidationError),
    (json.dumps({k: v for k, v in MY_ORDER_TRADE.items() if k != "uuid"}), msgspec.ValidationError),
    (frame(executed_volume="lots"), msgspec.ValidationError),
    (frame(state="pending"), ValueError),
])
def test_unreadable_frames_raise(data: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        ADAPTER.parse_frame(data, 0)


# --- against the simulator --------------------------------------------------------------------

@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator({"replay": False, "venues": ["upbit"]}) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[HttpTransport]:
    async with HttpTransport() as transport:
        yield transport


def notices(probe: Probe) -> list[VenueNotice]:
    return [e for e in probe.events if isinstance(e, VenueNotice)]


async def test_the_ping_after_the_request_makes_the_stream_ready(sim: Simulator) -> None:
    async with open_probe(sim, "upbit") as probe:
        assert probe.ready and probe.raw == [b'{"status":"UP"}'] and notices(probe) == []


async def test_a_resting_buy_filled_in_three_takes(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "upbit", http)
    async with open_probe(sim, "upbit") as probe:
        bid = await trader.best_bid(SYMBOL)
        placed = await trader.rest_buy(SYMBOL, "upws1", Decimal("1000"), bid)
        await trader.take(SYMBOL, ahead_of_us(sim, "upbit", CODE) - Decimal("1000") + Decimal("300"))
        await trader.take(SYMBOL, Decimal("300"))
        await trader.take(SYMBOL, Decimal("400"))
        updates = await probe.updates_of("upws1", 5)
    assert probe.errors == [] and {u.venue_order_id for u in probe.updates} == {placed.venue_order_id}
    assert [(u.state, u.filled_quantity) for u in updates] == [
        ("open", 0), ("partially_filled", 300), ("partially_filled", 600), ("filled", 1000), ("filled", 1000)]
    dialect = sim.venues["upbit"]
    order = dialect.core.orders[placed.venue_order_id]
    fills = [u for u in updates if u.trade_id is not None]
    assert [(u.trade_id, u.last_fill_quantity, u.last_fill_price, u.fee) for u in fills] == [
        (dialect.trade_uuids[f.trade_id], f.quantity, f.price, f.fee) for f in order.fills]
    assert all(u.fee > 0 for u in fills) and sum(u.fee for u in fills) == order.fees
    assert [json.loads(r)["state"] for r in probe.raw[1:]] == ["wait", "trade", "trade", "trade", "done"]
    assert [p["trade_id"] for p in dialect.push_log] == [f.trade_id for f in order.fills]


async def test_a_cancel_after_a_partial_fill(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "upbit", http)
    async with open_probe(sim, "upbit") as probe:
        placed = await trader.rest_buy(SYMBOL, "upws2", Decimal("1000"), await trader.best_bid(SYMBOL))
        await trader.take(SYMBOL, ahead_of_us(sim, "upbit", CODE) - Decimal("1000") + Decimal("400"))
        await trader.cancel(SYMBOL, "upws2", placed.venue_order_id)
        updates = await probe.updates_of("upws2", 3)
    assert [(u.state, u.filled_quantity, u.trade_id is not None) for u in updates] == [
        ("open", 0, False), ("partially_filled", 400, True), ("canceled", 400, False)]
    assert json.loads(probe.raw[-1])["state"] == "cancel"


def token(creds: Credentials, **claims: object) -> dict[str, str]:
    payload = {"access_key": creds.api_key, "nonce": str(uuid.uuid4()), **claims}
    return {"Authorization": f"Bearer {jwt.encode(payload, creds.secret, algorithm='HS256')}"}


async def test_a_refused_handshake_is_upbit_s_rest_error(sim: Simulator) -> None:
    url = sim.ws_url("upbit") + PATH
    assert await refusal(url, {}) == (401, {"error": {"name": "no_authorization_token",
                                                      "message": "Authorization token does not exist."}})
    unknown = Credentials(api_key="not-a-key", secret=DEMO.secret)
    assert (await refusal(url, token(unknown)))[1]["error"]["name"] == "invalid_access_key"
    forged = Credentials(api_key=DEMO.api_key, secret="not-the-secret-" + "x" * 32)
    assert await refusal(url, token(forged)) == (401, {"error": {"name": "jwt_verification",
                                                                 "message": "Failed to verify Jwt token."}})
    used = token(DEMO)
    async with connect(url, additional_headers=used, open_timeout=2):
        pass
    assert (await refusal(url, used))[1]["error"]["name"] == "nonce_used"  # a token opens one connection


async def test_bad_credentials_never_reach_the_stream(sim: Simulator) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with open_probe(sim, "upbit", creds=Credentials(api_key="not-a-key", secret=DEMO.secret)):
            pass
    assert refused.value.response.status_code == 401


async def test_the_request_errors_written_from_the_docs(sim: Simulator) -> None:
    async with raw_ws(sim, "upbit", PATH, DEMO) as ws:
        for text, name in [("not json", "WRONG_FORMAT"), ('{"ticket": "t"}', "WRONG_FORMAT"),
                           ('[{"type": "myOrder"}]', "NO_TICKET"), ('[{"ticket": "t"}]', "NO_TYPE"),
                           ('[{"ticket": "t"}, {"type": "trade", "codes": ["KRW-LAMB"]}]', "INVALID_PARAM")]:
            await ws.send(text)
            answer = await reply(ws)
            assert answer["error"]["name"] == name, text
            (notice,) = ADAPTER.parse_frame(json.dumps(answer), 0)
            assert notice.kind == "error" and notice.message.startswith(f"upbit {name}: ")
        await ws.send("PING")
        assert await reply(ws) == {"status": "UP"}


async def test_simple_format_codes_and_my_asset(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "upbit", http)
    async with raw_ws(sim, "upbit", PATH, DEMO) as ws:
        await subscribe(ws, {"type": "myOrder", "codes": ["KRW-BTC"]}, {"type": "myAsset"}, fmt="SIMPLE")
        placed = await trader.rest_buy(SYMBOL, "upws3", Decimal("1000"), await trader.best_bid(SYMBOL))
        asset = await reply(ws)  # KRW locked by the buy; its myOrder is not for KRW-BTC
        krw = {a["cu"]: a for a in asset["ast"]}["KRW"]
        assert asset["ty"] == "myAsset" and krw["l"] > 0 and {"b", "l"} <= set(krw)
        await ws.send("PING")
        assert await reply(ws) == {"status": "UP"}

        await subscribe(ws, {"type": "myOrder", "codes": [CODE]}, fmt="SIMPLE_LIST")
        await trader.cancel(SYMBOL, "upws3", placed.venue_order_id)
        (canceled,) = await reply(ws)
    assert (canceled["ty"], canceled["cd"], canceled["uid"], canceled["s"], canceled["id"]) == (
        "myOrder", CODE, placed.venue_order_id, "cancel", "upws3")
    assert {"ab", "ot", "p", "v", "rv", "ev", "pf", "otms", "tms", "st"} <= set(canceled)


async def test_a_down_stream_refuses_connections_and_drops_open_ones(sim: Simulator) -> None:
    dialect = sim.venues["upbit"]
    async with open_probe(sim, "upbit") as probe:
        dialect.private_refused = True
        assert dialect.drop_private() == 1
        await asyncio.wait_for(probe.ws.wait_closed(), 5)
    assert await refusal(sim.ws_url("upbit") + PATH, bearer(sim, "upbit", DEMO)) == (
        503, {"error": {"name": "server_error", "message": "Internal server error."}})
    dialect.private_refused = False
    async with open_probe(sim, "upbit") as again:
        assert again.ready


async def test_the_public_path_serves_no_private_types(sim: Simulator) -> None:
    async with connect(sim.ws_url("upbit") + "/websocket/v1", open_timeout=2) as ws:
        await ws.send(json.dumps([{"ticket": "t"}, {"type": "myOrder"}]))
        assert (await reply(ws))["error"]["name"] == "INVALID_PARAM"
