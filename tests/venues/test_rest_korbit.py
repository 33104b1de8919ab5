"""Korbit v2 REST adapter. Korbit publishes example credentials and a string to sign but
no expected signature (research notes 2.2), so the signature is checked against an
independent hmac computation of the docs' example, and the request shapes against the
docs' examples (docs.korbit.co.kr: 주문하기, 개별 주문 조회, 주문 취소하기)."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import pytest

from schemas import CancelOrder, PlaceOrder
from schemas.queries import OrderBookQuery, OrderStatusQuery
from schemas.vault import Credentials
from services.venues import rest_adapter
from services.venues.errors import (
    AuthError, DuplicateOrder, InsufficientBalance, InvalidOrder, OrderNotFound, OutcomeUnknown, RateLimited,
    VenueUnavailable,
)

adapter = rest_adapter("korbit")
DOC_SECRET = "ZwKS2evdxj9j3Neir2s0UHAmpNFfo4a0iHawEElGCBs"  # the docs' example HMAC secret
DOC_KEY = "XyAZ_apaUv9pg4ZyGzNHTxabfIDrWIRpPBgk5-olIuM"
CREDS = Credentials(api_key=DOC_KEY, secret=DOC_SECRET)
DOC_STRING = "symbol=btc_krw&side=buy&price=100000000&qty=1&orderType=limit&timestamp=1719232467910"


def test_signature_of_the_docs_example_string() -> None:
    params = [("symbol", "btc_krw"), ("side", "buy"), ("price", "100000000"), ("qty", "1"), ("orderType", "limit")]
    req = adapter.sign("POST", "/v2/orders", params, CREDS, 1719232467910, None)
    expected = hmac.new(DOC_SECRET.encode(), DOC_STRING.encode(), hashlib.sha256).hexdigest()
    assert expected == "c5d5ccfe542d76aa7c90609e69362a193608bf6bc89e506a6c1648a543f7a1be"  # research notes 2.3
    assert req.body.decode() == f"{DOC_STRING}&signature={expected}"
    assert req.headers == {"X-KAPI-KEY": DOC_KEY, "Content-Type": "application/x-www-form-urlencoded"}


def test_place_status_cancel_by_client_order_id() -> None:
    o = PlaceOrder(command_id="c", venue="korbit", account="a", symbol="BTC-KRW", client_order_id="20141231-155959-abcdef",
                   side="buy", order_type="limit", quantity=Decimal("10"), price=Decimal("250000"), post_only=True)
    body = dict(parse_qsl(adapter.build_request("place_order", o, CREDS, 1).body.decode()))
    assert (body["symbol"], body["timeInForce"], body["clientOrderId"], body["orderType"]) == ("btc_krw", "po", "20141231-155959-abcdef", "limit")
    s = adapter.build_request("order_status", OrderStatusQuery(symbol="BTC-KRW", client_order_id="20141231-155959-abcdef"), CREDS, 1)
    assert urlsplit(s.url).path == "/v2/orders" and dict(parse_qsl(urlsplit(s.url).query))["clientOrderId"] == "20141231-155959-abcdef"
    c = adapter.build_request("cancel_order", CancelOrder(command_id="x", venue="korbit", account="a", symbol="BTC-KRW",
                                                          client_order_id="20141231-155959-abcdef"), CREDS, 1)
    assert c.method == "DELETE" and "clientOrderId=20141231-155959-abcdef" in c.url


def test_order_reply_from_the_docs() -> None:
    body = {"success": True, "data": {"orderId": 1234, "clientOrderId": "20141231-155959-abcdef", "symbol": "btc_krw",
            "orderType": "limit", "side": "buy", "timeInForce": "gtc", "avgPrice": "5000", "price": "5000", "qty": "10",
            "filledQty": "1", "filledAmt": "5000", "createdAt": 1700000000000, "lastFilledAt": 1700000000000,
            "status": "partiallyFilled"}}
    info = adapter.parse_response("order_status", 200, {}, json.dumps(body).encode(),
                                  OrderStatusQuery(symbol="BTC-KRW", client_order_id="20141231-155959-abcdef"))
    assert (info.state, info.filled_quantity, info.venue_order_id, info.average_price) == ("partially_filled", Decimal("1"), "1234", Decimal("5000"))


def test_orderbook_from_the_docs() -> None:
    body = {"success": True, "data": {"timestamp": 1708057740895, "bids": [{"price": "73303000", "qty": "0.00898326"}],
                                      "asks": [{"price": "73304000", "qty": "0.00985212"}]}}
    book = adapter.parse_response("orderbook", 200, {}, json.dumps(body).encode(), OrderBookQuery(symbol="BTC-KRW", depth=5))
    assert book.bids[0].size == Decimal("0.00898326") and book.ts_event == 1708057740895 * 1_000_000


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [(400, "NO_BALANCE", InsufficientBalance), (400, "DUPLICATE_CLIENT_ORDER_ID", DuplicateOrder),
     (404, "ORDER_NOT_FOUND", OrderNotFound), (400, "ORDER_ALREADY_FILLED", OrderNotFound),
     (400, "TRY_AGAIN", VenueUnavailable), (429, "TOO_MANY_REQUESTS", RateLimited),
     (401, "KEY_NOT_FOUND", AuthError), (401, "EXCEED_TIME_WINDOW", AuthError), (401, "SOMETHING_NEW", AuthError),
     (400, "PRICE_TICK_SIZE_INVALID", InvalidOrder)],
)
def test_error_codes(status: int, code: str, expected: type) -> None:
    """The envelope as the official korbit-cli reads it (internal/apiclient/client.go and its
    tests: ``{"success":false,"error":{"code":422,"message":"BAD"}}``, the code in ``message``)."""
    body = json.dumps({"success": False, "error": {"code": status, "message": code}}).encode()
    err = adapter.parse_response("place_order", status, {"Retry-After": "1"}, body)
    assert type(err) is expected and err.venue_code == code


def test_rate_limited_reads_retry_after() -> None:
    """요청 수 제한: 429 Too Many Requests with ``Retry-After: 1``."""
    body = b'{"success":false,"error":{"code":429,"message":"TOO_MANY_REQUESTS"}}'
    err = adapter.parse_response("balance", 429, {"Retry-After": "1"}, body)
    assert isinstance(err, RateLimited) and err.retry_after == 1


def test_5xx_on_place_is_outcome_unknown() -> None:
    body = b'{"success":false,"error":{"code":503,"message":"SERVICE_UNAVAILABLE"}}'
    assert isinstance(adapter.parse_response("place_order", 503, {}, body), OutcomeUnknown)
    assert isinstance(adapter.parse_response("order_status", 503, {}, body), VenueUnavailable)
