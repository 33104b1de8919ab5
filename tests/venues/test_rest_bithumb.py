"""Bithumb private API 2.x adapter (Upbit-like): tokens per the documented recipe
(apidocs.bithumb.com "인증 헤더 만들기": access_key, nonce, timestamp, query_hash SHA512,
HS256), client_order_id on place/cancel/status, the recorded ticker/market files."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import jwt

from schemas import CancelOrder, PlaceOrder
from schemas.queries import OpenOrdersQuery, OrderStatusQuery
from schemas.vault import Credentials
from services.venues import rest_adapter
from services.venues.errors import AuthError, DuplicateOrder, InsufficientBalance, OrderNotFound, RateLimited

adapter = rest_adapter("bithumb")
CREDS = Credentials(api_key="L7rVaYfBIc2BDsnlQGfkR93d6DoOAJCw7mJr5Eso", secret="bithumb-test-secret-0123456789abcdef")
NONCE = "6f5570df-d8bc-4daf-85b4-976733feb624"


def _claims(req) -> dict:
    return jwt.decode(req.headers["Authorization"].removeprefix("Bearer "), CREDS.secret, algorithms=["HS256"])


def test_place_order_token_and_body() -> None:
    o = PlaceOrder(command_id="c", venue="bithumb", account="a", symbol="BTC-KRW", client_order_id="bt_order-1",
                   side="sell", order_type="limit", quantity=Decimal("0.001"), price=Decimal("140000000"), time_in_force="ioc")
    req = adapter.build_request("place_order", o, CREDS, 1712230310689, NONCE)
    assert req.method == "POST" and req.url == "https://api.bithumb.com/v2/orders"
    body = json.loads(req.body)
    assert body == {"market": "KRW-BTC", "side": "ask", "volume": "0.001", "price": "140000000", "ord_type": "limit",
                    "time_in_force": "ioc", "client_order_id": "bt_order-1"}
    claims = _claims(req)
    raw = "market=KRW-BTC&side=ask&volume=0.001&price=140000000&ord_type=limit&time_in_force=ioc&client_order_id=bt_order-1"
    assert claims == {"access_key": CREDS.api_key, "nonce": NONCE, "timestamp": 1712230310689,
                      "query_hash": hashlib.sha512(raw.encode()).hexdigest(), "query_hash_alg": "SHA512"}


def test_cancel_status_and_open_orders_by_client_id() -> None:
    c = CancelOrder(command_id="x", venue="bithumb", account="a", symbol="BTC-KRW", client_order_id="bt_order-1")
    req = adapter.build_request("cancel_order", c, CREDS, 1, NONCE)
    assert (req.method, req.url) == ("DELETE", "https://api.bithumb.com/v2/order?client_order_id=bt_order-1")
    s = adapter.build_request("order_status", OrderStatusQuery(symbol="BTC-KRW", client_order_id="bt_order-1"), CREDS, 1, NONCE)
    assert s.url == "https://api.bithumb.com/v1/order?client_order_id=bt_order-1"
    o = adapter.build_request("open_orders", OpenOrdersQuery(symbol="BTC-KRW"), CREDS, 1, NONCE)
    assert o.url == "https://api.bithumb.com/v1/orders?market=KRW-BTC&state=wait"


def test_order_reply_carries_the_client_id() -> None:
    reply = {"uuid": "C0106000032400700021", "side": "bid", "ord_type": "limit", "price": "84000000", "state": "wait",
             "market": "KRW-BTC", "created_at": "2024-04-04T20:31:50+09:00", "volume": "0.0001", "remaining_volume": "0.0001",
             "executed_volume": "0", "trades_count": 0, "client_order_id": "bt_order-1"}
    info = adapter.parse_response("order_status", 200, {}, json.dumps(reply).encode(), None)
    assert (info.client_order_id, info.venue_order_id, info.state, info.symbol) == ("bt_order-1", "C0106000032400700021", "open", "BTC-KRW")


def test_errors() -> None:
    err = adapter.parse_response("place_order", 400, {}, b'{"error":{"name":"insufficient_funds_ask","message":"..."}}')
    assert isinstance(err, InsufficientBalance) and err.message.startswith("bithumb ")
    assert isinstance(adapter.parse_response("cancel_order", 404, {}, b'{"error":{"name":"order_not_found","message":"..."}}'), OrderNotFound)


def test_duplicate_expired_and_rate_limit_replies() -> None:
    """API 주요 에러 코드: 401 expired_jwt; a reused client_order_id is refused (the simulator's
    name, the docs give none); 429 names no wait, so one 1 s window ("API 요청 수 제한 안내")."""
    dup = adapter.parse_response("place_order", 400, {}, b'{"error":{"name":"duplicate_client_order_id","message":"..."}}')
    assert isinstance(dup, DuplicateOrder) and dup.venue_code == "duplicate_client_order_id"
    assert isinstance(adapter.parse_response("balance", 401, {}, b'{"error":{"name":"expired_jwt","message":"..."}}'), AuthError)
    limited = adapter.parse_response("place_order", 429, {}, b'{"error":{"name":"too_many_requests","message":"..."}}')
    assert isinstance(limited, RateLimited) and limited.retry_after == 1.0
    told = adapter.parse_response("place_order", 429, {"Retry-After": "3"}, b"Too many requests")
    assert isinstance(told, RateLimited) and told.retry_after == 3.0


def test_v2_order_reply_named_order_id() -> None:
    """The v2 replies name the venue id ``order_id`` (changelog client-order-id, 2026-03-12)."""
    reply = {"order_id": "C0106000032400700021", "market": "KRW-BTC", "side": "bid", "ord_type": "limit",
             "price": "84000000", "volume": "0.0001", "created_at": "2024-04-04T20:31:50+09:00",
             "client_order_id": "bt_order-1"}
    info = adapter.parse_response("place_order", 201, {}, json.dumps(reply).encode(), None)
    assert (info.venue_order_id, info.client_order_id, info.state) == ("C0106000032400700021", "bt_order-1", "open")
