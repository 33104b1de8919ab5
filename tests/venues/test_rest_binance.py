"""Binance spot REST v3 adapter: signing against the docs' published vector and ccxt,
parsing of recorded real payloads, error mapping from errors.md, and the full order
cycle against the venue simulator through the one HTTP transport."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from schemas import CancelOrder, PlaceOrder
from schemas.queries import BalanceQuery, OpenOrdersQuery, OrderBookQuery, OrderStatusQuery, TickerQuery, TradeHistoryQuery
from schemas.vault import Credentials
from services.venues import rest_adapter
from services.venues.errors import (
    AuthError, DuplicateOrder, InsufficientBalance, InvalidOrder, MarketRulesViolation, OrderNotFound,
    OutcomeUnknown, RateLimited, VenueUnavailable,
)
from services.venues.http import HttpTransport
from services.venues.rules import check_order

# rest-api.md, "SIGNED Endpoint Examples for POST /api/v3/order - HMAC Keys"
DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_CREDS = Credentials(api_key=DOC_KEY, secret=DOC_SECRET)
adapter = rest_adapter("binance")


def _recorded(shared_data: Path, name: str, url_part: str) -> bytes:
    for line in (shared_data / "recorded" / name).read_text().splitlines():
        if url_part in line and " -> " in line:
            return line.split(": ", 1)[1].encode()
    raise AssertionError(f"{url_part} not in {name}")


def _order(**kw) -> PlaceOrder:
    base = dict(command_id="c1", venue="binance", account="main", symbol="LTC-BTC", client_order_id="c1",
                side="buy", order_type="limit", quantity=Decimal("1"), price=Decimal("0.1"))
    return PlaceOrder(**(base | kw))


def test_signature_equals_the_docs_example() -> None:
    params = [("symbol", "LTCBTC"), ("side", "BUY"), ("type", "LIMIT"), ("timeInForce", "GTC"), ("quantity", "1"),
              ("price", "0.1"), ("recvWindow", "5000")]
    req = adapter.sign("POST", "/api/v3/order", params, DOC_CREDS, 1499827319559, None)
    body = req.body.decode()
    assert body.endswith("&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71")
    assert body.startswith("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559")
    assert req.headers["X-MBX-APIKEY"] == DOC_KEY


def test_non_ascii_parameters_are_signed_percent_encoded() -> None:
    """Same docs section: the symbol １２３４５６ is signed in its percent-encoded form."""
    params = [("symbol", "１２３４５６"), ("side", "BUY"), ("type", "LIMIT"), ("timeInForce", "GTC"), ("quantity", "1"),
              ("price", "0.1"), ("recvWindow", "5000")]
    req = adapter.sign("POST", "/api/v3/order", params, DOC_CREDS, 1499827319559, None)
    assert req.body.decode().endswith("signature=e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3")


def test_get_signature_matches_ccxt(monkeypatch: pytest.MonkeyPatch) -> None:
    """ccxt 4.5.90 binance.sign() as the reference for a signed GET with a fixed clock."""
    import ccxt

    ex = ccxt.binance({"apiKey": DOC_KEY, "secret": DOC_SECRET})
    monkeypatch.setattr(ex, "milliseconds", lambda: 1700000000000)
    ex.options["recvWindow"] = 5000
    ref = ex.sign("order", ["private"], "GET", {"symbol": "BTCUSDT", "origClientOrderId": "abc", "recvWindow": 5000})
    ref_params = parse_qsl(urlsplit(ref["url"]).query)
    ref_signature = dict(ref_params).pop("signature")
    # the same raw parameters, in ccxt's order, signed by exbus
    ours = adapter.sign("GET", "/api/v3/order", [(k, v) for k, v in ref_params if k != "signature"], DOC_CREDS, 1700000000000, None)
    assert dict(parse_qsl(urlsplit(ours.url).query))["signature"] == ref_signature
    assert ours.headers["X-MBX-APIKEY"] == ref["headers"]["X-MBX-APIKEY"]
    # and the operation builds the same parameter set ccxt sends
    built = adapter.build_request("order_status", OrderStatusQuery(symbol="BTC-USDT", client_order_id="abc"), DOC_CREDS, 1700000000000)
    assert {k for k, _ in parse_qsl(urlsplit(built.url).query)} == {k for k, _ in ref_params}


def test_place_order_carries_the_client_order_id_and_types() -> None:
    def body(o: PlaceOrder) -> dict[str, str]:
        return dict(parse_qsl(adapter.build_request("place_order", o, DOC_CREDS, 1).body.decode()))

    b = body(_order())
    assert (b["newClientOrderId"], b["type"], b["timeInForce"], b["price"]) == ("c1", "LIMIT", "GTC", "0.1")
    assert body(_order(post_only=True))["type"] == "LIMIT_MAKER"
    assert body(_order(time_in_force="fok"))["timeInForce"] == "FOK"
    m = body(_order(order_type="market", price=None, quantity=None, quote_quantity=Decimal("0.00000100")))
    assert (m["type"], m["quoteOrderQty"]) == ("MARKET", "0.00000100") and "timeInForce" not in m
    assert body(_order(quantity=Decimal("1E-8")))["quantity"] == "0.00000001"  # never scientific notation


def test_depth_snapshot_from_the_recording(shared_data: Path) -> None:
    """../shared/data/recorded/BINANCE.http.0.0: GET /api/v3/depth?symbol=NKNUSDT&limit=1000."""
    body = _recorded(shared_data, "BINANCE.http.0.0", "symbol=NKNUSDT")
    book = adapter.parse_response("orderbook", 200, {}, body, OrderBookQuery(symbol="NKN-USDT", depth=1000))
    raw = json.loads(body)
    assert book.venue_sequence == raw["lastUpdateId"] == 499869752
    assert str(book.bids[0].price) == raw["bids"][0][0] and str(book.bids[0].size) == raw["bids"][0][1]
    assert len(book.bids) == len(raw["bids"]) and len(book.asks) == len(raw["asks"])
    assert book.bids[0].price < book.asks[0].price


def test_market_rules_from_the_recorded_exchange_info(shared_data: Path) -> None:
    """../shared/data/recorded/BINANCE.0: GET /api/v3/exchangeInfo."""
    body = _recorded(shared_data, "BINANCE.0", "exchangeInfo")
    rules = adapter.parse_response("instruments", 200, {}, body)
    nkn = rules["NKN-USDT"]
    assert nkn.venue_symbol == "NKNUSDT"
    raw = next(s for s in json.loads(body)["symbols"] if s["symbol"] == "NKNUSDT")
    lot = next(f for f in raw["filters"] if f["filterType"] == "LOT_SIZE")
    assert nkn.lot_size == Decimal(lot["stepSize"]) and nkn.min_quantity == Decimal(lot["minQty"])
    assert nkn.tick_size == Decimal(next(f for f in raw["filters"] if f["filterType"] == "PRICE_FILTER")["tickSize"])
    order = _order(symbol="NKN-USDT", quantity=Decimal("100"), price=Decimal("0.3521"))
    check_order(order, nkn)
    with pytest.raises(MarketRulesViolation, match="tick size"):
        check_order(_order(symbol="NKN-USDT", quantity=Decimal("100"), price=Decimal("0.352100001")), nkn)
    with pytest.raises(MarketRulesViolation, match="notional"):
        check_order(_order(symbol="NKN-USDT", quantity=Decimal("1"), price=Decimal("0.3521")), nkn)


@pytest.mark.parametrize(
    ("status", "body", "op", "expected"),
    [  # errors.md codes and messages
        (400, {"code": -2010, "msg": "Account has insufficient balance for requested action."}, "place_order", InsufficientBalance),
        (400, {"code": -2010, "msg": "Duplicate order sent."}, "place_order", DuplicateOrder),
        (400, {"code": -1013, "msg": "Filter failure: LOT_SIZE"}, "place_order", InvalidOrder),
        (400, {"code": -2011, "msg": "Unknown order sent."}, "cancel_order", OrderNotFound),
        (400, {"code": -2013, "msg": "Order does not exist."}, "order_status", OrderNotFound),
        (400, {"code": -1022, "msg": "Signature for this request is not valid."}, "balance", AuthError),
        (400, {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}, "place_order", AuthError),
        (401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}, "balance", AuthError),
        (429, {"code": -1003, "msg": "Too many requests."}, "ticker", RateLimited),
        (400, {"code": -1015, "msg": "Too many new orders."}, "place_order", RateLimited),
        (503, {"code": -1007, "msg": "Timeout waiting for response from backend server. Send status unknown; execution status unknown."}, "place_order", OutcomeUnknown),
        (503, {"code": -1007, "msg": "Timeout waiting for response from backend server."}, "order_status", VenueUnavailable),
        (502, None, "place_order", OutcomeUnknown),
        (502, None, "ticker", VenueUnavailable),
        (418, None, "ticker", RateLimited),
    ],
)
def test_error_mapping(status: int, body: dict | None, op: str, expected: type) -> None:
    raw = json.dumps(body).encode() if body else b"<html>bad gateway</html>"
    err = adapter.parse_response(op, status, {"Retry-After": "7"}, raw)
    assert type(err) is expected
    assert err.venue == "binance" and err.status == status
    if isinstance(err, RateLimited):
        assert err.retry_after == 7.0 and err.banned == (status == 418)


def test_unreadable_success_on_place_is_outcome_unknown() -> None:
    assert isinstance(adapter.parse_response("place_order", 200, {}, b'{"symbol":"BTC'), OutcomeUnknown)
    assert isinstance(adapter.parse_response("ticker", 200, {}, b'{"symbol":"BTC'), VenueUnavailable)


def test_requests_never_show_keys_in_repr() -> None:
    req = adapter.build_request("balance", BalanceQuery(), DOC_CREDS, 1)
    assert DOC_KEY not in repr(req) and "signature" not in repr(req)


async def test_full_order_cycle_against_the_simulator(simulator) -> None:
    """Place, query, list, cancel, balance and trades by client order id, through the
    one transport, against the simulator's Binance (signature verified there from the docs)."""
    from services.simulator.config import sim_config

    account = sim_config({}).binance.accounts[0]
    creds = Credentials(api_key=account.api_key, secret=account.secret)
    venue = rest_adapter("binance", simulator.binance_url)
    async with HttpTransport() as http:
        async def call(op: str, args, now_ms: int | None = None):
            import time

            req = venue.build_request(op, args, creds, now_ms or time.time_ns() // 1_000_000)
            resp = await http.send(req, idempotent=op not in ("place_order", "cancel_order"))
            return venue.parse_response(op, resp.status, resp.headers, resp.body, args)

        book = await call("orderbook", OrderBookQuery(symbol="NKN-USDT", depth=5))
        best_bid = book.bids[0].price
        place = _order(symbol="NKN-USDT", client_order_id="rest-cycle-1", quantity=Decimal("100"),
                       price=best_bid - Decimal("0.01"))
        placed = await call("place_order", place)
        assert placed.client_order_id == "rest-cycle-1" and placed.state == "open"
        status = await call("order_status", OrderStatusQuery(symbol="NKN-USDT", client_order_id="rest-cycle-1"))
        assert status.venue_order_id == placed.venue_order_id
        again = await call("place_order", place)
        assert isinstance(again, DuplicateOrder)  # the id is in use by an open order
        opened = await call("open_orders", OpenOrdersQuery(symbol="NKN-USDT"))
        assert [o.client_order_id for o in opened] == ["rest-cycle-1"]
        canceled = await call("cancel_order", CancelOrder(command_id="x", venue="binance", account="main",
                                                          symbol="NKN-USDT", client_order_id="rest-cycle-1"))
        assert canceled.state == "canceled"
        gone = await call("cancel_order", CancelOrder(command_id="y", venue="binance", account="main",
                                                      symbol="NKN-USDT", client_order_id="never-placed"))
        assert isinstance(gone, OrderNotFound)
        balances = await call("balance", BalanceQuery())
        assert any(b.asset == "USDT" and b.free > 0 for b in balances)
        fills = await call("trade_history", TradeHistoryQuery(symbol="NKN-USDT"))
        assert fills == []
        ticker = await call("ticker", TickerQuery(symbol="NKN-USDT"))
        assert ticker.bid is not None and ticker.ask is not None and ticker.bid < ticker.ask
        bad = await call("balance", BalanceQuery(), now_ms=1)  # far outside recvWindow
        assert isinstance(bad, AuthError)
