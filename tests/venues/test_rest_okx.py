"""OKX v5 REST adapter: signatures on the research notes' derived vectors (ccxt sign() ==
hashlib) and ccxt itself, the recorded instruments, sCode error mapping, and the
deterministic clOrdId mapping."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from schemas import CancelOrder, PlaceOrder
from schemas.queries import OrderStatusQuery
from schemas.vault import Credentials
from services.venues import rest_adapter
from services.venues.errors import AuthError, DuplicateOrder, InsufficientBalance, InvalidOrder, OrderNotFound, OutcomeUnknown, RateLimited, VenueUnavailable
from services.venues.okx.rest import iso_ms, venue_client_id

adapter = rest_adapter("okx")
CREDS = Credentials(api_key="KEY", secret="SECRETKEY", passphrase="PASS")
TS_MS = 1700000000123  # 2023-11-14T22:13:20.123Z, the notes' timestamp


def test_signatures_equal_the_derived_vectors() -> None:
    """research/execution.md 2.3 (ccxt 4.5.90 sign() == independent hashlib)."""
    assert iso_ms(TS_MS) == "2023-11-14T22:13:20.123Z"
    post = adapter.sign("POST", "/api/v5/trade/order", [("instId", "BTC-USDT"), ("tdMode", "cash"), ("side", "buy"),
                        ("ordType", "limit"), ("px", "1"), ("sz", "1"), ("clOrdId", "abc123")], CREDS, TS_MS, None)
    assert post.headers["OK-ACCESS-SIGN"] == "M5L99NXJhX++mmIFXSXQBDupDo6p6RDY8TaVw+DqzmE="
    get = adapter.sign("GET", "/api/v5/trade/order", [("instId", "BTC-USDT"), ("clOrdId", "abc123")], CREDS, TS_MS, None)
    assert get.headers["OK-ACCESS-SIGN"] == "LSVOpJzzLeO5gi9aFlRcleJ9e12Y7NVHuLq5FC9jofE="
    assert get.url == "https://www.okx.com/api/v5/trade/order?instId=BTC-USDT&clOrdId=abc123" and get.body is None
    assert post.headers["OK-ACCESS-PASSPHRASE"] == "PASS" and post.headers["OK-ACCESS-TIMESTAMP"] == "2023-11-14T22:13:20.123Z"


def test_signature_equals_ccxt(monkeypatch: pytest.MonkeyPatch) -> None:
    import ccxt

    ex = ccxt.okx({"apiKey": "KEY", "secret": "SECRETKEY", "password": "PASS"})
    monkeypatch.setattr(ex, "iso8601", lambda _: "2023-11-14T22:13:20.123Z")
    params = {"instId": "ETH-USDT", "clOrdId": "q1"}
    ref = ex.sign("trade/order", ["private"], "GET", params)
    ours = adapter.sign("GET", "/api/v5/trade/order", list(params.items()), CREDS, TS_MS, None)
    assert ours.headers["OK-ACCESS-SIGN"] == ref["headers"]["OK-ACCESS-SIGN"]


def test_client_order_ids_map_deterministically_into_okx_grammar() -> None:
    assert venue_client_id("abc123") == "abc123"
    hashed = venue_client_id("strat-1_000042")
    assert hashed == venue_client_id("strat-1_000042") and len(hashed) == 32 and hashed.isalnum()
    assert hashed != venue_client_id("strat-1_000043")
    o = PlaceOrder(command_id="c", venue="okx", account="a", symbol="BTC-USDT", client_order_id="strat-1_000042",
                   side="buy", order_type="market", quote_quantity=Decimal("100"))
    body = json.loads(adapter.build_request("place_order", o, CREDS, TS_MS).body)
    assert body == {"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "market", "sz": "100",
                    "tgtCcy": "quote_ccy", "clOrdId": hashed}
    q = adapter.build_request("order_status", OrderStatusQuery(symbol="BTC-USDT", client_order_id="strat-1_000042"), CREDS, TS_MS)
    assert q.url.endswith(f"clOrdId={hashed}")


def test_recorded_spot_instruments(shared_data: Path) -> None:
    """../shared/data/recorded/OKX.0: GET /api/v5/public/instruments?instType=SPOT."""
    line = next(l for l in (shared_data / "recorded" / "OKX.0").read_text().splitlines() if "instType=SPOT" in l)
    body = line.split(": ", 1)[1].encode()
    rules = adapter.parse_response("instruments", 200, {}, body)
    btc = rules["BTC-USDT"]
    assert (btc.tick_size, btc.lot_size, btc.min_quantity) == (Decimal("0.1"), Decimal("0.00000001"), Decimal("0.00001"))
    assert len(rules) == len(json.loads(body)["data"])


@pytest.mark.parametrize(
    ("status", "body", "op", "expected"),
    [
        (200, {"code": "1", "msg": "Operation failed.", "data": [{"clOrdId": "a", "ordId": "", "sCode": "51008", "sMsg": "Order failed. Insufficient USDT balance in account."}]}, "place_order", InsufficientBalance),
        (200, {"code": "1", "msg": "", "data": [{"sCode": "51016", "sMsg": "Duplicated client order ID"}]}, "place_order", DuplicateOrder),
        (200, {"code": "51603", "msg": "Order does not exist", "data": []}, "order_status", OrderNotFound),
        (429, {"code": "50011", "msg": "Too Many Requests", "data": []}, "ticker", RateLimited),
        (200, {"code": "50004", "msg": "API endpoint request timeout (does not indicate success or failure of order, please check order status)", "data": []}, "place_order", OutcomeUnknown),
        (200, {"code": "50004", "msg": "API endpoint request timeout", "data": []}, "balance", VenueUnavailable),
        (401, {"code": "50113", "msg": "Invalid Sign", "data": []}, "balance", AuthError),
        (200, {"code": "1", "msg": "", "data": [{"sCode": "51121", "sMsg": "Order quantity must be a multiple of the lot size."}]}, "place_order", InvalidOrder),
        # Error Code: 50001 is HTTP 503, 51149 HTTP 500 "does not mean that the request was successful or failed"
        (503, {"code": "50001", "msg": "Service temporarily unavailable. Please try again later.", "data": []}, "place_order", OutcomeUnknown),
        (503, {"code": "50001", "msg": "Service temporarily unavailable. Please try again later.", "data": []}, "cancel_order", OutcomeUnknown),
        (503, {"code": "50001", "msg": "Service temporarily unavailable. Please try again later.", "data": []}, "balance", VenueUnavailable),
        (500, {"code": "51149", "msg": "Order timed out. Please try again.", "data": []}, "place_order", OutcomeUnknown),
        (401, {"code": "50106", "msg": 'Request header "OK-ACCESS-SIGN" cannot be empty.', "data": []}, "balance", AuthError),
        (200, {"code": "1", "msg": "All operations failed", "data": [{"sCode": "50061", "sMsg": "You've reached the maximum order rate limit for this account."}]}, "place_order", RateLimited),
    ],
)
def test_error_mapping(status: int, body: dict, op: str, expected: type) -> None:
    err = adapter.parse_response(op, status, {}, json.dumps(body).encode())
    assert type(err) is expected


def test_order_status_and_cancel_replies() -> None:
    """Reply shapes of okx.com/docs-v5 "Get order details" and "Cancel order"."""
    body = {"code": "0", "msg": "", "data": [{"instId": "BTC-USDT", "ordId": "680800019749904384", "clOrdId": "abc123",
            "px": "30000", "sz": "0.01", "ordType": "limit", "side": "buy", "state": "partially_filled",
            "accFillSz": "0.004", "avgPx": "29999.9", "cTime": "1597026383085", "uTime": "1597026383085"}]}
    info = adapter.parse_response("order_status", 200, {}, json.dumps(body).encode(), OrderStatusQuery(symbol="BTC-USDT", client_order_id="abc123"))
    assert (info.state, info.filled_quantity, info.average_price) == ("partially_filled", Decimal("0.004"), Decimal("29999.9"))
    c = CancelOrder(command_id="c", venue="okx", account="a", symbol="BTC-USDT", client_order_id="abc123")
    ack = adapter.parse_response("cancel_order", 200, {}, b'{"code":"0","msg":"","data":[{"clOrdId":"abc123","ordId":"1","sCode":"0","sMsg":""}]}', c)
    assert ack.client_order_id == "abc123" and ack.venue_order_id == "1"


def test_rate_limited_without_retry_after_waits_one_two_second_window() -> None:
    """OKX answers 429 / 50011 with no Retry-After; its limits count per 2 s ("60 requests per
    2 seconds"). A Retry-After, when one comes (a proxy), wins."""
    body = b'{"code":"50011","msg":"Too Many Requests","data":[]}'
    assert adapter.parse_response("balance", 429, {}, body).retry_after == 2.0
    assert adapter.parse_response("balance", 429, {"Retry-After": "5"}, body).retry_after == 5.0


def test_order_status_by_ord_id_once_known() -> None:
    """Get order details: "ordId and clOrdId ... if both are passed, ordId will be used"; a clOrdId
    query returns only the latest order with it, so the venue's own id is the exact one."""
    by_id = adapter.build_request("order_status", OrderStatusQuery(symbol="BTC-USDT", client_order_id="abc123",
                                                                   venue_order_id="680800019749904384"), CREDS, TS_MS)
    assert by_id.url.endswith("/api/v5/trade/order?instId=BTC-USDT&ordId=680800019749904384")
    by_cid = adapter.build_request("order_status", OrderStatusQuery(symbol="BTC-USDT", client_order_id="abc123"), CREDS, TS_MS)
    assert by_cid.url.endswith("/api/v5/trade/order?instId=BTC-USDT&clOrdId=abc123")
