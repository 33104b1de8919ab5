"""Coinbase Advanced Trade's ``user`` channel: exbus's adapter on published examples, and
against the simulator (JWT subscribes, snapshot, totals per update, heartbeats, refusals) the
way the executor drives it.

Sources: docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis "WebSocket Overview" (one
subscribe per channel, a new JWT for each message, 2 minutes), "WebSocket Authentication"
(WebSocket JWTs carry no request method or path), "WebSocket Channels" (the heartbeats request
and message examples; the ``user`` channel's snapshot example as docs.cloud.coinbase.com
ws-channels#user-channel published it, quoted in ccxt pro 4.5.90 coinbase.py
``handle_order``); the AsyncAPI description (production: integer ``heartbeat_counter``);
nautechsystems/nautilus_trader crates/adapters/coinbase/test_data/ws_user.json and
ws_subscriptions.json; ccxt pro coinbase.py ``handle_subscription_status`` (a subscriptions
message); coinbase/coinbase-advanced-py jwt_generator.build_ws_jwt (the SDK's JWT: iss "cdp",
no aud, no uri) and issue #92 (``{"type":"error","message":"authentication failure"}``).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, AsyncIterator

import jwt
import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from schemas.vault import Credentials
from services.simulator import Simulator
from services.simulator.dialects.coinbase import CoinbaseDialect
from services.venues import rest_adapter
from services.venues.http import HttpTransport
from services.venues.privatews import OrderUpdate, StreamReady, private_stream
from services.venues.wsbase import KeepAlive, VenueNotice

from .private_probe import Probe, Trader, open_probe

SYMBOL = "BTC-USD"
DEMO, TAKER = (Credentials(api_key=a.api_key, secret=a.secret) for a in CoinbaseDialect.DEFAULT_ACCOUNTS)
REST = rest_adapter("coinbase")
ADAPTER = private_stream("coinbase", REST)
assert ADAPTER is not None

# docs.cloud.coinbase.com ws-channels#user-channel, as ccxt pro coinbase.py quotes it (its
# trailing comma after the order removed)
DOCS_USER_SNAPSHOT = """{
    "channel": "user",
    "client_id": "",
    "timestamp": "2023-02-09T20:33:57.609931463Z",
    "sequence_num": 0,
    "events": [
        {
            "type": "snapshot",
            "orders": [
                {
                    "order_id": "XXX",
                    "client_order_id": "YYY",
                    "cumulative_quantity": "0",
                    "leaves_quantity": "0.000994",
                    "avg_price": "0",
                    "total_fees": "0",
                    "status": "OPEN",
                    "product_id": "BTC-USD",
                    "creation_time": "2022-12-07T19:42:18.719312Z",
                    "order_side": "BUY",
                    "order_type": "Limit"
                }
            ]
        }
    ]
}"""
NAUTILUS_WS_USER = """{
  "channel": "user",
  "client_id": "",
  "timestamp": "2026-04-07T14:30:06.000000Z",
  "sequence_num": 1,
  "events": [
    {
      "type": "snapshot",
      "orders": [
        {
          "order_id": "a1b2c3d4-e5f6-7890-abcd-ef1234567890",
          "client_order_id": "11111-000000-000001",
          "cumulative_quantity": "0",
          "leaves_quantity": "0.001",
          "avg_price": "0",
          "total_fees": "0",
          "status": "OPEN",
          "product_id": "BTC-USD",
          "creation_time": "2026-04-07T14:29:55.123456Z",
          "order_side": "BUY",
          "order_type": "Limit",
          "cancel_reason": "",
          "reject_reason": "",
          "total_value_after_fees": "68.90050000",
          "contract_expiry_type": "UNKNOWN_CONTRACT_EXPIRY_TYPE",
          "product_type": "SPOT",
          "risk_managed_by": "UNKNOWN_RISK_MANAGEMENT_TYPE",
          "time_in_force": "GOOD_UNTIL_CANCELLED",
          "trigger_status": "INVALID_ORDER_TYPE"
        }
      ]
    }
  ]
}"""
DOCS_HEARTBEATS_REQUEST = {"type": "subscribe", "product_ids": ["ETH-USD"], "channel": "heartbeats", "jwt": "XYZ"}
DOCS_HEARTBEAT = """{
  "channel": "heartbeats",
  "client_id": "",
  "timestamp": "2023-06-23T20:31:26.122969572Z",
  "sequence_num": 0,
  "events": [
    {
      "current_time": "2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105",
      "heartbeat_counter": "3049"
    }
  ]
}"""
CCXT_SUBSCRIPTIONS = ('{"channel": "subscriptions", "client_id": "", "timestamp": "2025-09-15T17:02:49.90120868Z", '
                      '"sequence_num": 3, "events": [{"subscriptions": {}}]}')
NAUTILUS_SUBSCRIPTIONS = ('{"channel": "subscriptions", "client_id": "", "timestamp": "2026-04-07T14:30:00.000000Z", '
                          '"sequence_num": 0, "events": [{"subscriptions": {"level2": ["BTC-USD"], '
                          '"market_trades": ["BTC-USD", "ETH-USD"]}}]}')
AUTH_FAILURE = '{"type":"error","message":"authentication failure"}'  # coinbase-advanced-py issue #92


def docs_update(**changes: Any) -> str:
    """The docs' snapshot example as an ``update`` with some order fields changed."""
    msg = json.loads(DOCS_USER_SNAPSHOT)
    msg["events"][0]["type"] = "update"
    msg["events"][0]["orders"][0].update(changes)
    return json.dumps(msg)


def parse(frame: str | bytes) -> list[Any]:
    return ADAPTER.parse_frame(frame, 123)


def public_key(creds: Credentials) -> Any:
    return serialization.load_pem_private_key(creds.secret.encode(), password=None).public_key()


def other_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


def sdk_ws_jwt(creds: Credentials) -> str:
    """coinbase-advanced-py jwt_generator.build_ws_jwt: sub, iss "cdp", nbf, exp; kid + nonce."""
    now = int(time.time())
    return jwt.encode({"sub": creds.api_key, "iss": "cdp", "nbf": now, "exp": now + 120}, creds.secret,
                      algorithm="ES256", headers={"kid": creds.api_key, "nonce": secrets.token_hex()})


# --- the adapter on the published examples ------------------------------------------------------

def test_endpoint_keepalive_and_readiness() -> None:
    assert ADAPTER.url == "wss://advanced-trade-ws-user.coinbase.com"
    assert ADAPTER.keepalive == KeepAlive(interval_s=20.0)  # WebSocket pings; heartbeats keep the subscription
    assert ADAPTER.ready_on_connect is False and ADAPTER.open_op is None and ADAPTER.max_session_s is None


def test_one_subscribe_per_channel_each_with_its_own_ws_jwt() -> None:
    now_ms = int(time.time() * 1000)
    messages = [json.loads(m) for m in ADAPTER.subscribe_messages(DEMO, None, now_ms)]
    assert [(m["type"], m["channel"]) for m in messages] == [("subscribe", "user"), ("subscribe", "heartbeats")]
    assert all(set(m) == {"type", "channel", "jwt"} for m in messages)  # no product_ids: every product
    assert set(DOCS_HEARTBEATS_REQUEST) - {"product_ids"} == set(messages[1])
    nonces = set()
    for m in messages:
        header = jwt.get_unverified_header(m["jwt"])
        claims = jwt.decode(m["jwt"], public_key(DEMO), algorithms=["ES256"], options={"verify_aud": False})
        assert header["alg"] == "ES256" and header["kid"] == DEMO.api_key
        assert claims["sub"] == DEMO.api_key and claims["nbf"] == now_ms // 1000 and claims["exp"] == claims["nbf"] + 120
        assert "uri" not in claims  # "WebSocket JWTs ... are not built with a request method or request path"
        nonces.add(header["nonce"])
    assert len(nonces) == 2  # "a different JWT for each websocket message sent"


def test_the_rest_jwt_still_names_its_request() -> None:
    request = REST.sign("GET", "/api/v3/brokerage/accounts", [], DEMO, int(time.time() * 1000))
    token = request.headers["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, public_key(DEMO), algorithms=["ES256"], options={"verify_aud": False})
    assert claims["uri"] == "GET api.coinbase.com/api/v3/brokerage/accounts"


def test_the_docs_snapshot_is_the_order_and_marks_the_stream_ready() -> None:
    update, ready = parse(DOCS_USER_SNAPSHOT)
    assert update == OrderUpdate(
        venue="coinbase", client_order_id="YYY", venue_order_id="XXX", state="open", filled_quantity=Decimal(0),
        ts_event=1675974837_609931463, symbol="BTC-USD", side="buy", order_type="limit",
        quantity=Decimal("0.000994"), fees_total=Decimal(0))
    assert ready == StreamReady()
    assert (update.trade_id, update.last_fill_quantity, update.fee, update.average_price) == (None, None, None, None)
    (nautilus, ready) = parse(NAUTILUS_WS_USER)
    assert (nautilus.venue_order_id, nautilus.client_order_id, nautilus.quantity) == (
        "a1b2c3d4-e5f6-7890-abcd-ef1234567890", "11111-000000-000001", Decimal("0.001"))
    assert ready == StreamReady()


def test_an_update_reports_the_totals() -> None:
    (partial,) = parse(docs_update(cumulative_quantity="0.0004", leaves_quantity="0.000594", avg_price="22000.5",
                                   total_fees="0.0528012", limit_price="22000.5"))
    assert (partial.state, partial.filled_quantity, partial.average_price, partial.fees_total, partial.fee_asset) == (
        "partially_filled", Decimal("0.0004"), Decimal("22000.5"), Decimal("0.0528012"), "USD")
    assert (partial.quantity, partial.price, partial.cumulative) == (Decimal("0.000994"), Decimal("22000.5"), True)
    assert (partial.trade_id, partial.fee, partial.last_fill_price) == (None, None, None)  # totals only
    (filled,) = parse(docs_update(cumulative_quantity="0.000994", leaves_quantity="0", status="FILLED", avg_price="22000"))
    assert (filled.state, filled.quantity) == ("filled", Decimal("0.000994"))
    (canceled,) = parse(docs_update(cumulative_quantity="0.0004", leaves_quantity="0", status="CANCELLED"))
    assert (canceled.state, canceled.filled_quantity, canceled.quantity) == ("canceled", Decimal("0.0004"), None)
    for status, state in [("PENDING", "open"), ("CANCEL_QUEUED", "open"), ("EDIT_QUEUED", "open"),
                          ("EXPIRED", "expired"), ("FAILED", "rejected"), ("QUEUED", "open")]:
        assert parse(docs_update(status=status))[0].state == state
    (market,) = parse(docs_update(order_type="Market", order_side="SELL", client_order_id=""))
    assert (market.order_type, market.side, market.quantity, market.client_order_id) == ("market", "sell", None, None)


def test_heartbeats_and_subscriptions_are_no_news() -> None:
    assert parse(DOCS_HEARTBEAT) == []
    assert parse(DOCS_HEARTBEAT.replace('"3049"', "3049")) == []  # production: an integer
    assert parse(CCXT_SUBSCRIPTIONS) == [] and parse(NAUTILUS_SUBSCRIPTIONS) == []
    assert parse('{"channel": "user", "timestamp": "2023-02-09T20:33:57Z", "sequence_num": 5, "events": []}') == []
    assert parse('{"channel": "futures_balance_summary", "events": [{"type": "snapshot"}]}') == []
    assert parse("{}") == []


def test_an_error_ends_the_session_without_echoing_a_jwt() -> None:
    assert parse(AUTH_FAILURE) == [VenueNotice("error", "coinbase: authentication failure")]
    token = sdk_ws_jwt(DEMO)
    (notice,) = parse(json.dumps({"type": "error", "message": "Failed to subscribe", "reason": f"bad jwt {token}"}))
    assert notice == VenueNotice("error", "coinbase: Failed to subscribe: bad jwt <jwt>")
    assert token.split(".")[2] not in repr(notice)


@pytest.mark.parametrize("frame, error", [
    ("not json", msgspec.DecodeError),
    ("[1, 2]", msgspec.ValidationError),
    ('{"channel": "user", "events": {"type": "snapshot"}}', msgspec.ValidationError),
    (docs_update(cumulative_quantity="lots"), ValueError),
    (docs_update(cumulative_quantity="NaN"), ValueError),
    (docs_update(total_fees="-1"), ValueError),
    (docs_update(status="UNKNOWN_ORDER_STATUS"), ValueError),
    (docs_update(order_side="UNKNOWN_ORDER_SIDE"), ValueError),
    (DOCS_USER_SNAPSHOT.replace("2023-02-09T20:33:57.609931463Z", "soon"), ValueError),
])
def test_unreadable_frames_raise(frame: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse(frame)


def test_an_order_without_an_id_raises() -> None:
    msg = json.loads(DOCS_USER_SNAPSHOT)
    del msg["events"][0]["orders"][0]["order_id"]
    with pytest.raises(msgspec.ValidationError):
        parse(json.dumps(msg))


# --- against the simulator ------------------------------------------------------------------------

@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator({"replay": False, "venues": ["coinbase"]}) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[HttpTransport]:
    async with HttpTransport() as transport:
        yield transport


@asynccontextmanager
async def raw_ws(sim: Simulator) -> AsyncIterator[ClientConnection]:
    async with connect(sim.ws_url("coinbase"), open_timeout=2) as ws:
        yield ws


async def reply(ws: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), 2))


def subscribe(channel: str, token: str | None, **extra: Any) -> str:
    return json.dumps({"type": "subscribe", "channel": channel, **({"jwt": token} if token else {}), **extra})


def ahead_of_us(sim: Simulator) -> Decimal:
    return sim.venues["coinbase"].core.levels(SYMBOL, "buy", 1)[0][1]


def notices(probe: Probe) -> list[VenueNotice]:
    return [e for e in probe.events if isinstance(e, VenueNotice)]


def sequence_numbers(probe: Probe) -> list[int]:
    return [json.loads(r)["sequence_num"] for r in probe.raw]


async def test_the_snapshot_makes_the_stream_ready(sim: Simulator) -> None:
    async with open_probe(sim, "coinbase") as probe:
        assert probe.ready
        await probe.until(lambda p: len(p.raw) >= 3)
    subscribed, snapshot, both = (json.loads(r) for r in probe.raw[:3])
    assert subscribed["channel"] == "subscriptions" and subscribed["events"] == [{"subscriptions": {"user": []}}]
    assert (snapshot["channel"], snapshot["events"]) == ("user", [{"type": "snapshot", "orders": []}])
    assert both["events"] == [{"subscriptions": {"heartbeats": [], "user": []}}]
    assert sequence_numbers(probe) == list(range(len(probe.raw)))  # per connection, from 0
    assert probe.updates == [] and probe.errors == [] and notices(probe) == []


async def test_a_resting_buy_filled_in_three_takes_reports_totals(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "coinbase", http)
    async with open_probe(sim, "coinbase") as probe:
        bid = await trader.best_bid(SYMBOL)
        placed = await trader.rest_buy(SYMBOL, "cbws1", Decimal("0.01"), bid)
        await trader.take(SYMBOL, ahead_of_us(sim) - Decimal("0.01") + Decimal("0.003"))
        await trader.take(SYMBOL, Decimal("0.003"))
        await trader.take(SYMBOL, Decimal("0.004"))
        updates = await probe.updates_of("cbws1", 4)
    assert probe.errors == []
    assert {u.venue_order_id for u in probe.updates} == {placed.venue_order_id}  # the taker's orders are not ours
    assert [(u.state, u.filled_quantity) for u in updates] == [
        ("open", 0), ("partially_filled", Decimal("0.003")), ("partially_filled", Decimal("0.006")),
        ("filled", Decimal("0.01"))]
    order = sim.venues["coinbase"].core.orders[placed.venue_order_id]
    fees = [sum((f.fee for f in order.fills[:n]), Decimal(0)) for n in range(4)]
    assert [u.fees_total for u in updates] == fees and fees[-1] == order.fees > 0
    assert all(u.trade_id is None and u.fee is None and u.last_fill_quantity is None for u in updates)
    assert all((u.symbol, u.side, u.order_type, u.price, u.quantity) == (SYMBOL, "buy", "limit", bid, Decimal("0.01"))
               for u in updates)
    assert updates[-1].average_price == bid and updates[-1].fee_asset == "USD"
    assert sequence_numbers(probe) == list(range(len(probe.raw)))  # heartbeats and updates share one sequence
    rest_row = sim.venues["coinbase"]._order(order)
    row = json.loads(probe.raw[-1])["events"][0]["orders"][0]
    assert (row["order_id"], row["client_order_id"], row["status"], row["number_of_fills"]) == (
        rest_row["order_id"], "cbws1", "FILLED", "3")
    assert Decimal(row["cumulative_quantity"]) == rest_row["filled_size"] and Decimal(row["leaves_quantity"]) == 0


async def test_a_cancel_after_a_partial_fill(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "coinbase", http)
    async with open_probe(sim, "coinbase") as probe:
        bid = await trader.best_bid(SYMBOL)
        placed = await trader.rest_buy(SYMBOL, "cbws2", Decimal("0.01"), bid)
        await trader.take(SYMBOL, ahead_of_us(sim) - Decimal("0.01") + Decimal("0.004"))
        await trader.cancel(SYMBOL, "cbws2", placed.venue_order_id)
        updates = await probe.updates_of("cbws2", 3)
    assert [(u.state, u.filled_quantity) for u in updates] == [
        ("open", 0), ("partially_filled", Decimal("0.004")), ("canceled", Decimal("0.004"))]
    row = json.loads(probe.raw[-1])["events"][0]["orders"][0]
    assert (row["status"], row["cancel_reason"], row["leaves_quantity"]) == ("CANCELLED", "User requested cancel", "0")


async def test_a_new_connection_snapshots_the_open_orders(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "coinbase", http)
    bid = await trader.best_bid(SYMBOL)
    placed = await trader.rest_buy(SYMBOL, "cbws3", Decimal("0.01"), bid)
    await trader.take(SYMBOL, ahead_of_us(sim) - Decimal("0.01") + Decimal("0.002"))
    async with open_probe(sim, "coinbase") as probe:
        (update,) = probe.updates
    assert (update.venue_order_id, update.client_order_id, update.state, update.filled_quantity, update.quantity) == (
        placed.venue_order_id, "cbws3", "partially_filled", Decimal("0.002"), Decimal("0.01"))
    assert update.fees_total == sim.venues["coinbase"].core.orders[placed.venue_order_id].fees


async def test_the_snapshot_comes_in_batches_of_50(sim: Simulator, http: HttpTransport) -> None:
    sim.venues["coinbase"].SNAPSHOT_BATCH = 2
    trader = Trader(sim, "coinbase", http)
    bid = await trader.best_bid(SYMBOL)
    for n in range(3):
        await trader.rest_buy(SYMBOL, f"cbbatch{n}", Decimal("0.001"), bid - n)
    async with raw_ws(sim) as ws:
        await ws.send(subscribe("user", sdk_ws_jwt(DEMO)))  # the SDK's own JWT form is accepted
        assert (await reply(ws))["channel"] == "subscriptions"
        batches = [(await reply(ws))["events"] for _ in range(2)]
    assert [[len(e["orders"]) for e in events] for events in batches] == [[2], [1]]
    assert {e[0]["type"] for e in batches} == {"snapshot"}


@pytest.mark.parametrize("creds", [
    Credentials(api_key="organizations/x/apiKeys/unknown", secret=DEMO.secret),
    Credentials(api_key=DEMO.api_key, secret=other_key_pem()),
])
async def test_bad_credentials_are_refused(sim: Simulator, creds: Credentials) -> None:
    async with open_probe(sim, "coinbase", creds=creds, wait_ready=False) as probe:
        (notice, *_) = await probe.until(notices)
    assert notice == VenueNotice("error", "coinbase: authentication failure")
    assert not probe.ready and json.loads(probe.raw[0]) == json.loads(AUTH_FAILURE)


async def test_an_expired_or_missing_jwt_is_refused(sim: Simulator) -> None:
    old = ADAPTER.subscribe_messages(DEMO, None, int(time.time() * 1000) - 121_000)[0]
    async with raw_ws(sim) as ws:
        await ws.send(old)
        assert await reply(ws) == json.loads(AUTH_FAILURE)  # "expires after 2 minutes"
        await ws.send(subscribe("user", None))
        assert await reply(ws) == json.loads(AUTH_FAILURE)  # the user channel needs a JWT
        await ws.send(subscribe("user", "not.a.jwt"))
        assert await reply(ws) == json.loads(AUTH_FAILURE)
        await ws.send(ADAPTER.subscribe_messages(DEMO, None, int(time.time() * 1000) - 100_000)[0])
        assert (await reply(ws))["channel"] == "subscriptions"  # still within its 2 minutes


async def test_malformed_and_unknown_messages(sim: Simulator) -> None:
    async with raw_ws(sim) as ws:
        for message, reason in [
            ("hello", "malformed JSON"),
            ('{"type": "ping"}', "ping is not a valid message type"),
            (subscribe("level2", None), "level2 is not a valid channel"),
            (subscribe("heartbeats", None, product_ids="BTC-USD"), "product_ids must be a list of product ids"),
            (subscribe("heartbeats", None, product_ids=["DOGE-XYZ"]), "DOGE-XYZ is not a valid product"),
        ]:
            await ws.send(message)
            answer = await reply(ws)
            assert answer == {"type": "error", "message": "Failed to subscribe", "reason": reason}
            (notice,) = parse(json.dumps(answer))
            assert notice.kind == "error"
        await ws.send(subscribe("heartbeats", None))  # the connection is still open; heartbeats need no JWT
        assert (await reply(ws))["events"] == [{"subscriptions": {"heartbeats": []}}]


async def test_heartbeats_every_second_count_up(sim: Simulator) -> None:
    sim.venues["coinbase"].HEARTBEAT_S = 0.02  # Coinbase: every second
    async with raw_ws(sim) as ws:
        await ws.send(subscribe("heartbeats", sdk_ws_jwt(DEMO)))
        ack, *beats = [await reply(ws) for _ in range(4)]
        await ws.send(json.dumps({"type": "unsubscribe", "channel": "heartbeats"}))
        pong = await ws.ping()
        await asyncio.wait_for(pong, 2)  # the transport's keep-alive: WebSocket ping frames are answered
    assert ack["channel"] == "subscriptions"
    assert [b["channel"] for b in beats] == ["heartbeats"] * 3
    assert [b["events"][0]["heartbeat_counter"] for b in beats] == [1, 2, 3]
    assert [b["sequence_num"] for b in [ack, *beats]] == [0, 1, 2, 3]
    assert " +0000 UTC m=+" in beats[0]["events"][0]["current_time"]
    assert all(parse(json.dumps(b)) == [] for b in beats)


async def test_an_unsubscribed_user_channel_pushes_nothing(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "coinbase", http)
    async with raw_ws(sim) as ws:
        await ws.send(subscribe("user", sdk_ws_jwt(DEMO), product_ids=[SYMBOL]))
        assert (await reply(ws))["events"] == [{"subscriptions": {"user": [SYMBOL]}}]
        assert (await reply(ws))["events"][0]["type"] == "snapshot"
        placed = await trader.rest_buy(SYMBOL, "cbraw1", Decimal("0.001"), await trader.best_bid(SYMBOL))
        push = await reply(ws)
        assert push["events"][0]["type"] == "update"
        assert [(o["order_id"], o["client_order_id"], o["status"]) for o in push["events"][0]["orders"]] == [
            (placed.venue_order_id, "cbraw1", "OPEN")]
        await ws.send(json.dumps({"type": "unsubscribe", "channel": "user", "product_ids": [SYMBOL],
                                  "jwt": sdk_ws_jwt(DEMO)}))
        assert (await reply(ws))["events"] == [{"subscriptions": {}}]
        await trader.cancel(SYMBOL, "cbraw1", placed.venue_order_id)
        await ws.send(subscribe("heartbeats", None))
        assert (await reply(ws))["channel"] == "subscriptions"  # the cancel was not pushed before it


async def test_one_account_per_connection(sim: Simulator) -> None:
    async with raw_ws(sim) as ws:
        await ws.send(subscribe("user", sdk_ws_jwt(DEMO)))
        assert [(await reply(ws))["channel"], (await reply(ws))["channel"]] == ["subscriptions", "user"]
        await ws.send(subscribe("user", sdk_ws_jwt(TAKER)))
        assert await reply(ws) == json.loads(AUTH_FAILURE)


async def test_a_dropped_stream_and_a_refused_reconnect(sim: Simulator) -> None:
    dialect = sim.venues["coinbase"]
    async with open_probe(sim, "coinbase") as probe:
        dialect.private_refused = True
        assert dialect.drop_private() == 1
        await asyncio.wait_for(probe.ws.wait_closed(), 2)
    with pytest.raises(InvalidStatus) as refused:
        async with raw_ws(sim):
            pass
    assert refused.value.response.status_code == 503
    dialect.private_refused = False
    async with open_probe(sim, "coinbase") as again:
        assert again.ready and sequence_numbers(again)[0] == 0
