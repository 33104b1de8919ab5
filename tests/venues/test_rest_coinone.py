"""Coinone v2.1 adapter: payload and signature against ccxt 4.5.90 coinone.sign() and the
research notes' derived vector (payload fields in that order, upper-case secret), the
docs' request shapes, and error codes."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest

from schemas import CancelOrder, PlaceOrder
from schemas.queries import OrderStatusQuery
from schemas.vault import Credentials
from services.venues import rest_adapter
from services.venues.errors import InsufficientBalance, InvalidOrder, OrderNotFound, RateLimited

adapter = rest_adapter("coinone")
NONCE = "00000000-0000-4000-8000-000000000000"


def test_signature_equals_ccxt(monkeypatch: pytest.MonkeyPatch) -> None:
    """ccxt upper-cases the secret; with an upper-case secret (as Coinone issues them) the
    two recipes agree byte for byte."""
    import ccxt

    ex = ccxt.coinone({"apiKey": "ACCESS", "secret": "SECRETKEY"})
    monkeypatch.setattr(ex, "uuid", lambda: NONCE)
    params = {"quote_currency": "KRW", "target_currency": "BTC"}
    ref = ex.sign("account/balance/all", ["v2_1Private"], "POST", params)
    ours = adapter.sign("POST", "/v2.1/account/balance/all", list(params.items()),
                        Credentials(api_key="ACCESS", secret="SECRETKEY"), 0, NONCE)
    assert ours.headers["X-COINONE-PAYLOAD"] == ref["headers"]["X-COINONE-PAYLOAD"]
    assert ours.headers["X-COINONE-SIGNATURE"] == ref["headers"]["X-COINONE-SIGNATURE"]
    assert ours.headers["X-COINONE-SIGNATURE"].startswith("7526dd28")  # research notes 2.3
    assert ours.body == ref["body"].encode() and ours.url == ref["url"]


def test_place_order_payload() -> None:
    creds = Credentials(api_key="ACCESS", secret="SECRETKEY")
    o = PlaceOrder(command_id="c", venue="coinone", account="a", symbol="BTC-KRW", client_order_id="co-1", side="buy",
                   order_type="limit", quantity=Decimal("0.01"), price=Decimal("90000000"), post_only=True)
    req = adapter.build_request("place_order", o, creds, 0, NONCE)
    body = json.loads(base64.b64decode(req.headers["X-COINONE-PAYLOAD"]))
    assert body == {"access_token": "ACCESS", "nonce": NONCE, "side": "BUY", "quote_currency": "KRW",
                    "target_currency": "BTC", "type": "LIMIT", "price": "90000000", "qty": "0.01", "post_only": True,
                    "user_order_id": "co-1"}
    s = adapter.build_request("order_status", OrderStatusQuery(symbol="BTC-KRW", client_order_id="co-1"), creds, 0, NONCE)
    assert json.loads(base64.b64decode(s.body))["user_order_id"] == "co-1" and s.url.endswith("/v2.1/order/detail")


def test_order_detail_reply() -> None:
    """Shape of docs.coinone.co.kr "주문 정보 조회" (v2.1/order/detail)."""
    body = {"result": "success", "error_code": "0", "order": {
        "order_id": "0e3019f2-1e4d-11e9-9ec7-00e04c3600d7", "type": "LIMIT", "quote_currency": "KRW", "target_currency": "BTC",
        "status": "PARTIALLY_FILLED", "side": "SELL", "fee": "0", "fee_rate": "0.002", "avg_price": "61000000",
        "price": "61000000", "original_qty": "1", "executed_qty": "0.4", "canceled_qty": "0", "remain_qty": "0.6",
        "ordered_at": 1705288918649, "updated_at": 1705288918649, "user_order_id": "co-1"}}
    info = adapter.parse_response("order_status", 200, {}, json.dumps(body).encode(), OrderStatusQuery(symbol="BTC-KRW", client_order_id="co-1"))
    assert (info.state, info.side, info.filled_quantity, info.symbol) == ("partially_filled", "sell", Decimal("0.4"), "BTC-KRW")


@pytest.mark.parametrize(("code", "expected"), [("103", InsufficientBalance), ("104", OrderNotFound), ("4", RateLimited), ("107", InvalidOrder)])
def test_error_codes(code: str, expected: type) -> None:
    body = json.dumps({"result": "error", "error_code": code, "error_msg": "..."}).encode()
    assert type(adapter.parse_response("place_order", 200, {}, body)) is expected


def test_unsupported_time_in_force_fails_before_sending() -> None:
    o = PlaceOrder(command_id="c", venue="coinone", account="a", symbol="BTC-KRW", client_order_id="co-2", side="buy",
                   order_type="limit", quantity=Decimal("1"), price=Decimal("1"), time_in_force="ioc")
    with pytest.raises(ValueError, match="good-till-canceled"):
        adapter.build_request("place_order", o, Credentials(api_key="a", secret="b"), 0)


def test_order_detail_and_cancel_send_one_id() -> None:
    """docs order-detail / cancel-order: exactly one of order_id and user_order_id; the
    venue's id when exbus recorded it, else the client order id (lost replies)."""
    creds = Credentials(api_key="ACCESS", secret="SECRETKEY")
    known = adapter.build_request("order_status", OrderStatusQuery(symbol="BTC-KRW", client_order_id="co-1",
                                                                   venue_order_id="v-1"), creds, 0, NONCE)
    lost = adapter.build_request("cancel_order", CancelOrder(command_id="c", venue="coinone", account="a",
                                                             symbol="BTC-KRW", client_order_id="co-1"), creds, 0, NONCE)
    known_body, lost_body = (json.loads(base64.b64decode(r.body)) for r in (known, lost))
    assert (known_body.get("order_id"), "user_order_id" in known_body) == ("v-1", False)
    assert (lost_body.get("user_order_id"), "order_id" in lost_body) == ("co-1", False)


def test_completed_orders_send_the_required_window() -> None:
    """docs find-completed-orders: size, from_ts and to_ts are required (ms)."""
    from schemas.queries import TradeHistoryQuery

    req = adapter.build_request("trade_history", TradeHistoryQuery(symbol="BTC-KRW", limit=500), Credentials(
        api_key="ACCESS", secret="SECRETKEY"), 1_700_000_000_123, NONCE)
    body = json.loads(base64.b64decode(req.body))
    assert (body["size"], body["from_ts"], body["to_ts"]) == (100, 0, 1_700_000_000_123)


def test_upper_case_user_order_id_fails_before_sending() -> None:
    """docs: user_order_id takes lower-case letters, digits and - _ . only."""
    o = PlaceOrder(command_id="c", venue="coinone", account="a", symbol="BTC-KRW", client_order_id="Co-3", side="buy",
                   order_type="limit", quantity=Decimal("1"), price=Decimal("1000"))
    with pytest.raises(ValueError, match="lower-case"):
        adapter.build_request("place_order", o, Credentials(api_key="a", secret="b"), 0)


def test_server_errors_and_blocks() -> None:
    """A 500 on place may follow acceptance (OutcomeUnknown); 503 with 405 is maintenance;
    error 4 carries no Retry-After, so the wait is the limit's window (1 s private)."""
    err = json.dumps({"result": "error", "error_code": "405", "error_msg": "Server error"}).encode()
    blocked = json.dumps({"result": "error", "error_code": "4", "error_msg": "Blocked user access"}).encode()
    from services.venues.errors import OutcomeUnknown, VenueUnavailable

    assert type(adapter.parse_response("place_order", 500, {}, err)) is OutcomeUnknown
    assert type(adapter.parse_response("place_order", 503, {}, err)) is VenueUnavailable
    assert adapter.parse_response("balance", 429, {}, blocked).retry_after == 1.0
    assert adapter.parse_response("ticker", 429, {}, blocked).retry_after == 60.0
    assert adapter.parse_response("place_order", 429, {"Retry-After": "3"}, blocked).retry_after == 3.0
