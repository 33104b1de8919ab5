"""Bitfinex v2 REST adapter: bfx-signature on the research notes' derived vector (ccxt
sign() == hashlib) and on ccxt, integer (int45) cids, the recorded pair list, order status
read from the active orders then the order history, and the error arrays (HTTP 500 for
every refusal, so the code and text decide)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from schemas import CancelOrder, PlaceOrder
from schemas.queries import OrderStatusQuery
from schemas.vault import Credentials
from services.venues import rest_adapter
from services.venues.base import FollowUp
from services.venues.bitfinex.rest import venue_cid
from services.venues.errors import (
    AuthError, InsufficientBalance, InvalidOrder, OrderNotFound, OutcomeUnknown, RateLimited, VenueUnavailable,
)

adapter = rest_adapter("bitfinex")
CREDS = Credentials(api_key="KEY", secret="SECRETKEY")


def test_signature_equals_the_derived_vector() -> None:
    """research/execution.md 2.3: nonce 1700000000123000, /api/v2/auth/w/order/submit."""
    params = [("type", "EXCHANGE LIMIT"), ("symbol", "tBTCUSD"), ("price", "1"), ("amount", "0.1"), ("cid", "12345")]
    req = adapter.sign("POST", "/v2/auth/w/order/submit", params, CREDS, 0, 1700000000123000)
    assert req.body == b'{"type":"EXCHANGE LIMIT","symbol":"tBTCUSD","price":"1","amount":"0.1","cid":12345}'
    assert req.headers["bfx-signature"] == ("6c4bb02f73602634fea0f96be34ad807a5891b7abb41af500ff85462e664c19f"
                                            "bc77c37b7022415bb63c192364daf463")
    assert req.headers["bfx-nonce"] == "1700000000123000" and req.url == "https://api.bitfinex.com/v2/auth/w/order/submit"


def test_signature_equals_ccxt(monkeypatch: pytest.MonkeyPatch) -> None:
    import ccxt

    ex = ccxt.bitfinex({"apiKey": "KEY", "secret": "SECRETKEY"})
    monkeypatch.setattr(ex, "nonce", lambda: 1700000000999000)
    ref = ex.sign("auth/r/wallets", ["private"], "POST", {})
    ours = adapter.build_request("balance", None, CREDS, 0, 1700000000999000)
    assert ours.headers["bfx-signature"] == ref["headers"]["bfx-signature"] and ours.body == ref["body"].encode()


def test_orders_carry_an_integer_cid_and_sell_as_negative_amounts() -> None:
    o = PlaceOrder(command_id="c", venue="bitfinex", account="a", symbol="BTC-USDT", client_order_id="strat-1",
                   side="sell", order_type="limit", quantity=Decimal("0.25"), price=Decimal("65000"), post_only=True)
    body = json.loads(adapter.build_request("place_order", o, CREDS, 0, 1).body)
    assert body == {"type": "EXCHANGE LIMIT", "symbol": "tBTCUST", "amount": "-0.25", "price": "65000",
                    "cid": venue_cid("strat-1"), "flags": 4096}
    assert 0 < venue_cid("strat-1") < 2**45  # docs "Submit Order": cid int45
    c = CancelOrder(command_id="x", venue="bitfinex", account="a", symbol="BTC-USDT", client_order_id="strat-1")
    cancel = json.loads(adapter.build_request("cancel_order", c, CREDS, 1700000000000, 2).body)
    assert cancel == {"cid": venue_cid("strat-1"), "cid_date": "2023-11-14"}
    by_id = CancelOrder(command_id="x", venue="bitfinex", account="a", symbol="BTC-USDT", client_order_id="strat-1",
                        venue_order_id="1747566428")
    assert json.loads(adapter.build_request("cancel_order", by_id, CREDS, 1700000000000, 3).body) == {"id": 1747566428}


def test_recorded_pair_list(shared_data: Path) -> None:
    """../shared/data/recorded/BITFINEX.0: GET /v2/conf/pub:list:pair:exchange."""
    line = next(l for l in (shared_data / "recorded" / "BITFINEX.0").read_text().splitlines() if "pair:exchange" in l)
    rules = adapter.parse_response("instruments", 200, {}, line.split(": ", 1)[1].encode())
    assert rules["BTC-USDT"].venue_symbol == "tBTCUST" and rules["AVAX-USD"].venue_symbol == "tAVAX:USD"
    assert rules["BTC-USDT"].tick_size == rules["BTC-USDT"].lot_size == Decimal("0.00000001")  # docs: 8 decimals


def test_status_reads_the_active_orders_then_the_history() -> None:
    """Order rows as in docs.bitfinex.com "Retrieve Orders" (ID, GID, CID, SYMBOL, ...);
    "Orders History" holds closed orders only: active first, then a follow-up to the history."""
    adapter = rest_adapter("bitfinex")
    cid = venue_cid("strat-1")
    row = [1747566428, None, cid, "tBTCUSD", 1678988263842, 1678988263843, 0.1, 0.25, "EXCHANGE LIMIT", None, None,
           None, 0, "PARTIALLY FILLED @ 60000.0(0.15)", None, None, 60000, 60000, 0, 0, None, None, None, 0, 0, None,
           None, None, "API>BFX", None, None, {}]
    q = OrderStatusQuery(symbol="BTC-USD", client_order_id="strat-1")
    assert adapter.build_request("order_status", q, CREDS, 0, 1).url.endswith("/v2/auth/r/orders/tBTCUSD")
    info = adapter.parse_response("order_status", 200, {}, json.dumps([row]).encode(), q)
    assert (info.state, info.filled_quantity, info.side, info.venue_order_id) == ("partially_filled", Decimal("0.15"), "buy", "1747566428")
    assert adapter.parse_response("order_status", 200, {}, b"[]", q) == FollowUp("order_history", q)
    history = adapter.build_request("order_history", q, CREDS, 0, 2)
    assert history.url.endswith("/v2/auth/r/orders/tBTCUSD/hist") and json.loads(history.body) == {"limit": 2500}
    executed = [*row[:6], 0, 0.25, *row[8:13], "EXECUTED @ 60000.0(0.25)", *row[14:]]
    done = adapter.parse_response("order_history", 200, {}, json.dumps([executed]).encode(), q)
    assert (done.state, done.filled_quantity) == ("filled", Decimal("0.25"))
    by_id = OrderStatusQuery(symbol="BTC-USD", client_order_id="gone", venue_order_id="42")
    assert json.loads(adapter.build_request("order_history", by_id, CREDS, 0, 4).body) == {"id": [42]}
    assert isinstance(adapter.parse_response("order_history", 200, {}, b"[]", by_id), OrderNotFound)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, ["error", 10001, "Invalid order: not enough exchange balance for -0.25 BTCUSD at 65000"], InsufficientBalance),
        (500, ["error", 10114, "nonce: small"], AuthError),
        (429, ["error", 11010, "ratelimit: error"], RateLimited),
        (200, [1678988263842, "on-req", None, None, [], None, "ERROR", "Invalid order: minimum size for BTC/USD is 0.00004"], InvalidOrder),
        (500, ["error", 10001, "Invalid order: minimum size for BTC/USD is 0.00004"], InvalidOrder),
        (500, ["error", 10020, "amount: invalid"], InvalidOrder),
        (500, ["error", 10001, "Order not found."], OrderNotFound),
        (500, ["error", 10100, "apikey: digest invalid"], AuthError),
        (500, ["error", 20060, "maintenance"], VenueUnavailable),
        (500, ["error", 10000, "ERR_UNK"], OutcomeUnknown),
        (503, {"code": 503, "error": "temporarily_unavailable", "error_description": "Sorry, the service is "
               "temporarily unavailable. See https://www.bitfinex.com/ for more info."}, VenueUnavailable),
        (429, {"error": "ERR_RATE_LIMIT"}, RateLimited),
    ],
)
def test_error_arrays(status: int, body: list, expected: type) -> None:
    """Texts from ccxt bitfinex (exceptions, handle_errors), codes from the docs' glossary."""
    assert type(adapter.parse_response("place_order", status, {}, json.dumps(body).encode())) is expected


def test_rate_limits_wait_the_documented_block_unless_told() -> None:
    """docs "Requirements and Limitations": the IP is blocked for 60 s; no Retry-After sent."""
    body = json.dumps(["error", 11010, "ratelimit: error"]).encode()
    assert adapter.parse_response("balance", 429, {}, body).retry_after == 60.0
    assert adapter.parse_response("balance", 429, {"Retry-After": "3"}, body).retry_after == 3.0
