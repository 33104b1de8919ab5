"""Upbit REST v1 adapter: JWT query-hash signing against ccxt and the derived vectors of
the research notes, the recorded market list, error names from docs.upbit.com, and the
order cycle against the venue simulator (which verifies tokens from the docs)."""

from __future__ import annotations

import hashlib
import json
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest

from schemas import CancelOrder, PlaceOrder
from schemas.queries import BalanceQuery, OpenOrdersQuery, OrderBookQuery, OrderStatusQuery
from schemas.vault import Credentials
from services.venues import rest_adapter
from services.venues.errors import AuthError, DuplicateOrder, InsufficientBalance, InvalidOrder, OrderNotFound, RateLimited
from services.venues.http import HttpTransport

adapter = rest_adapter("upbit")
CREDS = Credentials(api_key="ACCESS", secret="SECRETKEY")
NONCE = "00000000-0000-4000-8000-000000000000"


def _claims(req) -> dict:
    token = req.headers["Authorization"].removeprefix("Bearer ")
    return jwt.decode(token, "SECRETKEY", algorithms=["HS256"])


def test_token_equals_ccxt_for_the_same_query(monkeypatch: pytest.MonkeyPatch) -> None:
    """ccxt 4.5.90 upbit.sign() with its uuid pinned is the reference (HS256 over the
    unescaped query; SHA512 query_hash). The research notes' derived vector for this query
    gives the signature 3BUunvFx..."""
    import ccxt

    ex = ccxt.upbit({"apiKey": "ACCESS", "secret": "SECRETKEY"})
    monkeypatch.setattr(ex, "uuid", lambda: NONCE)
    ref = ex.sign("order", ["private"], "GET", {"uuid": "abc", "identifier": "my-id-1"})
    ours = adapter.sign("GET", "/v1/order", [("uuid", "abc"), ("identifier", "my-id-1")], CREDS, 0, NONCE)
    assert ours.headers["Authorization"] == ref["headers"]["Authorization"]
    assert ours.headers["Authorization"].endswith("3BUunvFxuLmn4kFhLBT7YHy-bDXr4UHLsgnuv1BuUvE")
    assert _claims(ours)["query_hash"] == hashlib.sha512(b"uuid=abc&identifier=my-id-1").hexdigest()


def test_post_orders_send_json_and_hash_the_same_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    import ccxt

    ex = ccxt.upbit({"apiKey": "ACCESS", "secret": "SECRETKEY"})
    monkeypatch.setattr(ex, "uuid", lambda: NONCE)
    order = PlaceOrder(command_id="c", venue="upbit", account="main", symbol="BTC-KRW", client_order_id="id-1",
                       side="buy", order_type="limit", quantity=Decimal("0.01"), price=Decimal("100000000"))
    ours = adapter.build_request("place_order", order, CREDS, 0, NONCE)
    body = json.loads(ours.body)
    assert body == {"market": "KRW-BTC", "side": "bid", "volume": "0.01", "price": "100000000", "ord_type": "limit", "identifier": "id-1"}
    ref = ex.sign("orders", ["private"], "POST", body)
    assert ours.headers["Authorization"] == ref["headers"]["Authorization"]


def test_no_query_no_query_hash() -> None:
    claims = _claims(adapter.build_request("balance", BalanceQuery(), CREDS, 0, NONCE))
    assert claims == {"access_key": "ACCESS", "nonce": NONCE}


def test_market_orders_by_quote_amount_and_volume() -> None:
    def body(**kw) -> dict:
        o = PlaceOrder(command_id="c", venue="upbit", account="a", symbol="BTC-KRW", client_order_id="x", order_type="market", **kw)
        return json.loads(adapter.build_request("place_order", o, CREDS, 0, NONCE).body)

    assert body(side="buy", quote_quantity=Decimal("5000"))["ord_type"] == "price"
    assert body(side="sell", quantity=Decimal("0.1"))["ord_type"] == "market"
    with pytest.raises(ValueError, match="quote_quantity"):
        body(side="buy", quantity=Decimal("0.1"))


def test_recorded_market_list(shared_data: Path) -> None:
    """../shared/data/recorded/UPBIT.0: GET /v1/market/all."""
    line = (shared_data / "recorded" / "UPBIT.0").read_text().splitlines()[0]
    body = line.split(": ", 1)[1].encode()
    rules = adapter.parse_response("instruments", 200, {}, body)
    assert rules["BTC-KRW"].venue_symbol == "KRW-BTC" and rules["ETH-BTC"].venue_symbol == "BTC-ETH"
    assert len(rules) == len(json.loads(body))


def test_numbers_in_replies_are_exact_decimals() -> None:
    body = b'[{"market":"KRW-BTC","timestamp":1618678262000,"orderbook_units":[{"ask_price":71000000.0,"bid_price":70990000.0,"ask_size":0.10000001,"bid_size":1.1}]}]'
    book = adapter.parse_response("orderbook", 200, {}, body, OrderBookQuery(symbol="BTC-KRW", depth=5))
    assert book.asks[0].size == Decimal("0.10000001") and book.bids[0].size == Decimal("1.1")


@pytest.mark.parametrize(
    ("status", "name", "expected"),
    [
        (400, "insufficient_funds_bid", InsufficientBalance),
        (400, "under_min_total_bid", InvalidOrder),
        (404, "order_not_found", OrderNotFound),
        (401, "jwt_verification", AuthError),
        (401, "nonce_used", AuthError),
        (400, "duplicate_identifier", DuplicateOrder),
        (429, "too_many_requests", RateLimited),
    ],
)
def test_error_names(status: int, name: str, expected: type) -> None:
    body = json.dumps({"error": {"name": name, "message": "..."}}).encode()
    err = adapter.parse_response("place_order", status, {"Retry-After": "1"}, body)
    assert type(err) is expected and err.venue_code == name


async def test_order_cycle_against_the_simulator(simulator) -> None:
    from services.simulator.config import sim_config

    account = sim_config({}).upbit.accounts[0]
    creds = Credentials(api_key=account.api_key, secret=account.secret)
    venue = rest_adapter("upbit", simulator.upbit_url)
    async with HttpTransport() as http:
        async def call(op, args):
            req = venue.build_request(op, args, creds, time.time_ns() // 1_000_000)
            resp = await http.send(req, idempotent=op not in ("place_order", "cancel_order"))
            return venue.parse_response(op, resp.status, resp.headers, resp.body, args)

        book = await call("orderbook", OrderBookQuery(symbol="WAVES-KRW", depth=5))
        price = book.bids[0].price
        order = PlaceOrder(command_id="c", venue="upbit", account="demo", symbol="WAVES-KRW", client_order_id="up-cycle-1",
                           side="buy", order_type="limit", quantity=Decimal("10"), price=price)
        placed = await call("place_order", order)
        assert placed.client_order_id == "up-cycle-1" and placed.state in ("open", "partially_filled", "filled")
        status = await call("order_status", OrderStatusQuery(symbol="WAVES-KRW", client_order_id="up-cycle-1"))
        assert status.venue_order_id == placed.venue_order_id
        assert isinstance(await call("place_order", order), DuplicateOrder)  # identifiers are single-use
        listed = await call("open_orders", OpenOrdersQuery(symbol="WAVES-KRW"))
        assert all(o.symbol == "WAVES-KRW" for o in listed)
        cancel = CancelOrder(command_id="d", venue="upbit", account="demo", symbol="WAVES-KRW", client_order_id="never")
        assert isinstance(await call("cancel_order", cancel), OrderNotFound)
        balances = await call("balance", BalanceQuery())
        assert any(b.asset == "KRW" for b in balances)
