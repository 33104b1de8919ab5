"""The simulator's OKX v5 dialect, driven through exbus's own OKX adapter and HTTP transport,
plus requests signed here from the docs alone.

Sources: okx.com/docs-v5/en "REST Authentication" (the signing recipe, the 30 s window, the
passphrase and demo-trading headers), the endpoint pages (ticker, books, instruments,
trade/order POST and GET, cancel-order, orders-pending, account/balance, trade/fills) and
"Error Code" (codes and HTTP statuses); python-okx issue #97 for the "All operations failed"
envelope; the book and BTC-USDT rules from ../shared/data/recorded (OKX.ws.1.0, OKX.0).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, AsyncIterator

import aiohttp
import pytest

from schemas import CancelOrder, PlaceOrder
from schemas.queries import (
    BalanceQuery, OpenOrdersQuery, OrderBookQuery, OrderStatusQuery, TickerQuery, TradeHistoryQuery,
)
from schemas.vault import Credentials
from services.simulator import ManualClock, Simulator
from services.simulator.dialects.okx import OkxDialect
from services.venues import rest_adapter
from services.venues.base import CancelAccepted
from services.venues.errors import (
    AuthError, DuplicateOrder, InsufficientBalance, InvalidOrder, OrderNotFound, OutcomeUnknown, RateLimited,
    VenueError, VenueUnavailable,
)
from services.venues.http import HttpTransport
from services.venues.okx.rest import iso_ms

START_NS = 1_800_000_000 * 1_000_000_000 + 500_000_000
"""A manual clock half a second into a 2 s window (OKX limits count per 2 s)."""
DEMO, TAKER = (Credentials(api_key=a.api_key, secret=a.secret, passphrase=a.passphrase) for a in OkxDialect.DEFAULT_ACCOUNTS)
SYMBOL = "BTC-USDT"


class Okx:
    """exbus's adapter and transport against the simulated venue, on the manual clock."""

    def __init__(self, sim: Simulator, clock: ManualClock, http: HttpTransport) -> None:
        self.sim, self.clock, self.http = sim, clock, http
        self.rest = rest_adapter("okx", sim.url("okx"))
        self.core = sim.dialects["okx"].core

    async def call(self, op: str, args: Any = None, creds: Credentials | None = DEMO, *, now_ms: int | None = None) -> Any:
        request = self.rest.build_request(op, args, creds, self.clock.ms() if now_ms is None else now_ms)
        try:
            response = await self.http.send(request, idempotent=op not in ("place_order", "cancel_order"))
        except VenueError as e:  # the transport's own failures (timeouts, dropped connections)
            return e
        return self.rest.parse_response(op, response.status, response.headers, response.body, args)

    async def ok(self, op: str, args: Any = None, creds: Credentials | None = DEMO) -> Any:
        result = await self.call(op, args, creds)
        assert not isinstance(result, VenueError), result
        return result

    async def best_bid(self) -> Decimal:
        return (await self.ok("orderbook", OrderBookQuery(symbol=SYMBOL, depth=5))).bids[0].price


def buy(cid: str, price: Decimal, quantity: str = "0.01", **kw: Any) -> PlaceOrder:
    return PlaceOrder(command_id=cid, venue="okx", account="demo", symbol=SYMBOL, client_order_id=cid, side="buy",
                      order_type="limit", quantity=Decimal(quantity), price=price, **kw)


def market_sell(cid: str, quantity: Decimal) -> PlaceOrder:
    return PlaceOrder(command_id=cid, venue="okx", account="taker", symbol=SYMBOL, client_order_id=cid, side="sell",
                      order_type="market", quantity=quantity)


def status(cid: str, venue_order_id: str | None = None) -> OrderStatusQuery:
    return OrderStatusQuery(symbol=SYMBOL, client_order_id=cid, venue_order_id=venue_order_id)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START_NS)


@asynccontextmanager
async def venue(clock: ManualClock, **okx_settings: Any) -> AsyncIterator[Okx]:
    settings = {"replay": False, "venues": ["okx"], "okx": okx_settings}
    async with Simulator(settings, clock=clock) as sim, HttpTransport(timeout_s=1.0) as http:
        yield Okx(sim, clock, http)


@pytest.fixture
async def okx(clock: ManualClock) -> AsyncIterator[Okx]:
    async with venue(clock) as v:
        yield v


async def test_every_operation_round_trips(okx: Okx) -> None:
    """Market data, place -> status by clOrdId and by ordId -> fill by the taker -> open
    orders, balance and fills equal the core's; cancel (docs' reply: sCode "0", no order)."""
    ticker = await okx.ok("ticker", TickerQuery(symbol=SYMBOL))
    rules = (await okx.ok("instruments"))[SYMBOL]
    assert (rules.tick_size, rules.lot_size, rules.min_quantity) == (Decimal("0.1"), Decimal("0.00000001"), Decimal("0.00001"))
    bid = await okx.best_bid()
    assert (ticker.bid, ticker.ask) == (bid, okx.core.best(SYMBOL, "sell")[0])

    placed = await okx.ok("place_order", buy("okx1", bid))
    by_cid = await okx.ok("order_status", status("okx1"))
    by_id = await okx.ok("order_status", status("okx1", placed.venue_order_id))
    assert by_cid == by_id and (by_cid.state, by_cid.venue_order_id) == ("open", placed.venue_order_id)
    assert [o.venue_order_id for o in await okx.ok("open_orders", OpenOrdersQuery(symbol=SYMBOL))] == [placed.venue_order_id]

    recorded_bid = okx.core.levels(SYMBOL, "buy", 1)[0][1] - Decimal("0.01")  # the recorded size ahead of ours
    await okx.ok("place_order", market_sell("take1", recorded_bid + Decimal("0.004")), TAKER)
    partial = await okx.ok("order_status", status("okx1"))
    assert (partial.state, partial.filled_quantity, partial.average_price) == ("partially_filled", Decimal("0.004"), bid)

    fills = await okx.ok("trade_history", TradeHistoryQuery(symbol=SYMBOL))
    core_fills = [(str(f.trade_id), f.price, f.quantity, f.fee) for _, f in okx.core.fills(okx.core.by_name["demo"])]
    assert [(f.trade_id, f.price, f.quantity, f.fee) for f in fills] == core_fills
    assert fills[0].liquidity == "maker" and fills[0].fee_asset == "BTC"  # OKX charges the currency received
    wallet = okx.core.wallet(okx.core.by_name["demo"])
    balances = {b.asset: (b.free, b.locked) for b in await okx.ok("balance", BalanceQuery())}
    assert balances == {a: (wallet.available(a), wallet.locked.get(a, Decimal(0))) for a in wallet.assets()}
    assert balances["USDT"][1] > 0  # the rest of the order still holds its funds

    cancel = CancelOrder(command_id="c1", venue="okx", account="demo", symbol=SYMBOL, client_order_id="okx1")
    assert await okx.ok("cancel_order", cancel) == CancelAccepted(client_order_id="okx1", venue_order_id=placed.venue_order_id)
    final = await okx.ok("order_status", status("okx1"))
    assert (final.state, final.filled_quantity) == ("canceled", Decimal("0.004"))
    assert await okx.ok("open_orders", OpenOrdersQuery(symbol=SYMBOL)) == []
    # clOrdId is refused only while its order is open: after the cancel it may be used again
    again = await okx.ok("place_order", buy("okx1", bid - Decimal("100")))
    assert again.venue_order_id != placed.venue_order_id


def docs_sign(secret: str, timestamp: str, method: str, request_path: str, body: str = "") -> str:
    """REST Authentication: Base64(HMAC-SHA256(SecretKey, timestamp + method + requestPath + body))."""
    return base64.b64encode(hmac.new(secret.encode(), (timestamp + method + request_path + body).encode(),
                                     hashlib.sha256).digest()).decode()


async def docs_request(okx: Okx, method: str, request_path: str, body: str = "", *, timestamp: str | None = None,
                       **headers: str) -> tuple[int, dict[str, Any]]:
    ts = timestamp or iso_ms(okx.clock.ms())
    signed = {"OK-ACCESS-KEY": DEMO.api_key, "OK-ACCESS-SIGN": docs_sign(DEMO.secret, ts, method, request_path, body),
              "OK-ACCESS-TIMESTAMP": ts, "OK-ACCESS-PASSPHRASE": DEMO.passphrase or "",
              "Content-Type": "application/json", "x-simulated-trading": "1"}
    async with aiohttp.ClientSession() as session, session.request(
            method, okx.sim.url("okx") + request_path, data=body or None, headers=signed | headers) as r:
        return r.status, await r.json()


async def test_a_request_signed_from_the_docs_alone_is_accepted(okx: Okx) -> None:
    """The docs' recipe, written here with hmac/base64 (not exbus's signer), with the demo
    trading header; a GET signs its query, a POST its JSON body."""
    code, reply = await docs_request(okx, "GET", "/api/v5/account/balance?ccy=BTC,USDT")
    assert (code, reply["code"], sorted(d["ccy"] for d in reply["data"][0]["details"])) == (200, "0", ["BTC", "USDT"])
    bid = await okx.best_bid()
    body = json.dumps({"instId": SYMBOL, "tdMode": "cash", "side": "buy", "ordType": "limit", "px": str(bid),
                       "sz": "0.01", "clOrdId": "docs1"})
    code, reply = await docs_request(okx, "POST", "/api/v5/trade/order", body)
    assert (code, reply["code"], reply["data"][0]["sCode"], reply["data"][0]["clOrdId"]) == (200, "0", "0", "docs1")
    code, reply = await docs_request(okx, "GET", "/api/v5/trade/order?instId=BTC-USDT&clOrdId=docs1",
                                     **{"OK-ACCESS-SIGN": docs_sign(DEMO.secret, iso_ms(okx.clock.ms()), "GET",
                                                                    "/api/v5/trade/order")})  # query left out
    assert (code, reply["code"]) == (401, "50113")


@pytest.mark.parametrize(("headers", "code"), [
    ({"OK-ACCESS-KEY": ""}, "50103"), ({"OK-ACCESS-PASSPHRASE": "wrong"}, "50105"),
    ({"OK-ACCESS-TIMESTAMP": "1800000000"}, "50112"), ({"OK-ACCESS-KEY": "no-such-key"}, "50111"),
])
async def test_header_failures_are_the_documented_401s(okx: Okx, headers: dict[str, str], code: str) -> None:
    """Error Code, API class: 50103/50105/50112/50111, all HTTP 401; exbus reads AuthError."""
    status_code, reply = await docs_request(okx, "GET", "/api/v5/account/balance", **headers)
    assert (status_code, reply["code"], reply["data"]) == (401, code, [])
    err = okx.rest.parse_response("balance", status_code, {}, json.dumps(reply).encode())
    assert type(err) is AuthError and err.venue_code == code


@pytest.mark.parametrize(("case", "expected", "venue_code"), [
    ("insufficient balance", InsufficientBalance, "51008"),
    ("duplicate open clOrdId", DuplicateOrder, "51016"),
    ("price off the tick", InvalidOrder, "51000"),
    ("size off the lot", InvalidOrder, "51121"),
    ("size below minSz", InvalidOrder, "51020"),
    ("unknown order status", OrderNotFound, "51603"),
    ("cancel of an unknown order", OrderNotFound, "51400"),
    ("unknown key", AuthError, "50111"),
    ("wrong secret", AuthError, "50113"),
    ("timestamp 31 s old", AuthError, "50102"),
])
async def test_failure_replies_map_to_the_taxonomy(okx: Okx, case: str, expected: type, venue_code: str) -> None:
    """Error Code tables (trade class, API class); order failures inside code "1" envelopes."""
    bid = await okx.best_bid()
    await okx.ok("place_order", buy("open1", bid - Decimal("50")))
    calls = {
        "insufficient balance": ("place_order", buy("big1", bid, "1000"), DEMO),
        "duplicate open clOrdId": ("place_order", buy("open1", bid - Decimal("60")), DEMO),
        "price off the tick": ("place_order", buy("tick1", bid - Decimal("0.05")), DEMO),
        "size off the lot": ("place_order", buy("lot1", bid, "0.000010001"), DEMO),
        "size below minSz": ("place_order", buy("min1", bid, "0.000009"), DEMO),
        "unknown order status": ("order_status", status("never1"), DEMO),
        "cancel of an unknown order": ("cancel_order", CancelOrder(command_id="c", venue="okx", account="demo",
                                                                    symbol=SYMBOL, client_order_id="never1"), DEMO),
        "unknown key": ("balance", BalanceQuery(), Credentials(api_key="nobody", secret=DEMO.secret, passphrase="x")),
        "wrong secret": ("balance", BalanceQuery(), Credentials(api_key=DEMO.api_key, secret=TAKER.secret,
                                                                passphrase=DEMO.passphrase)),
        "timestamp 31 s old": ("balance", BalanceQuery(), DEMO),
    }
    op, args, creds = calls[case]
    err = await okx.call(op, args, creds, now_ms=okx.clock.ms() - 31_000 if "old" in case else None)
    assert type(err) is expected and err.venue_code == venue_code, err
    if op == "place_order":
        assert [o.client_order_id for o in okx.core.orders.values()] == ["open1"]


async def test_rate_limit_is_429_50011_and_exbus_waits_one_window(clock: ManualClock) -> None:
    """Get balance: "10 requests per 2 seconds", lowered to 2; over it HTTP 429 code 50011,
    no Retry-After (OKX sends none): the adapter waits the 2 s window."""
    async with venue(clock, rate_limits={"balance": 2}) as okx:
        for _ in range(2):
            await okx.ok("balance", BalanceQuery())
        err = await okx.call("balance", BalanceQuery())
        assert type(err) is RateLimited and (err.status, err.venue_code, err.retry_after) == (429, "50011", 2.0)
        clock.advance(2)
        await okx.ok("balance", BalanceQuery())


@pytest.mark.parametrize(("fault", "expected", "placed"), [
    ({"kind": "error_5xx", "status": 503}, OutcomeUnknown, 0),
    ({"kind": "error_5xx", "status": 500, "when": "after"}, OutcomeUnknown, 1),
    ({"kind": "error_5xx", "status": 429, "retry_after_s": 3}, RateLimited, 0),
    ({"kind": "timeout"}, OutcomeUnknown, 1),
    ({"kind": "drop"}, OutcomeUnknown, 1),
    ({"kind": "malformed"}, OutcomeUnknown, 1),
    ({"kind": "latency", "latency_ms": 20}, None, 1),
])
async def test_each_fault_on_the_place_route(okx: Okx, fault: dict[str, Any], expected: type | None, placed: int) -> None:
    """A 5xx (or lost, or garbled) answer to a place is OutcomeUnknown; the order, when the
    venue took it, is found by clOrdId: exactly one."""
    bid = await okx.best_bid()
    okx.sim.set_faults([fault | {"venue": "okx", "route": "place", "count": 1}])
    result = await okx.call("place_order", buy("fault1", bid - Decimal("50")))
    if expected is None:
        assert result.client_order_id == "fault1"
    else:
        assert type(result) is expected, result
    if fault.get("retry_after_s"):
        assert result.retry_after == 3
    await asyncio.wait_for(okx.sim.ledger.orders_at_least(placed), 5)
    assert len(okx.sim.ledger_snapshot()["orders"]) == placed
    found = await okx.call("order_status", status("fault1"))
    assert (type(found) is OrderNotFound) if not placed else found.state == "open", found


async def test_a_5xx_on_a_query_is_venue_unavailable(okx: Okx) -> None:
    """500 with 50026 (Error Code: "System error", HTTP 500) on a read is safe to retry."""
    okx.sim.set_faults([{"kind": "error_5xx", "status": 500, "venue": "okx", "route": "*", "count": 1}])
    err = await okx.call("balance", BalanceQuery())
    assert type(err) is VenueUnavailable and (err.status, err.venue_code) == (500, "50026")


async def test_post_only_that_would_take_is_accepted_then_canceled(okx: Okx) -> None:
    """Place order, ordType post_only: an order that would take liquidity is canceled by the
    system (cancelSource 31), not refused."""
    ask = okx.core.best(SYMBOL, "sell")[0]
    placed = await okx.ok("place_order", buy("maker1", ask, post_only=True))
    info = await okx.ok("order_status", status("maker1", placed.venue_order_id))
    assert (info.state, info.filled_quantity) == ("canceled", 0)


async def test_malformed_requests_get_okx_refusals_never_a_500(okx: Okx) -> None:
    """Error Code, general class: 50002 JSON syntax error, 50014 parameter empty (HTTP 400),
    51001 unknown instrument."""
    ts = iso_ms(okx.clock.ms())
    for body, code in (("{not json", "50002"), (json.dumps({"instId": SYMBOL}), "50014"),
                       (json.dumps({"instId": "NOPE-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit",
                                    "sz": "1", "px": "1"}), "1")):
        status_code, reply = await docs_request(okx, "POST", "/api/v5/trade/order", body,
                                                timestamp=ts, **{"OK-ACCESS-SIGN": docs_sign(
                                                    DEMO.secret, ts, "POST", "/api/v5/trade/order", body)})
        assert status_code < 500 and reply["code"] == code, reply
    assert reply["data"][0]["sCode"] == "51001"
    async with aiohttp.ClientSession() as session, session.get(okx.sim.url("okx") + "/api/v5/market/ticker") as r:
        assert (r.status, (await r.json())["code"]) == (400, "50014")


async def test_order_and_fill_replies_carry_the_documented_fields(okx: Okx) -> None:
    """Get order details / Transaction details (last 3 days): every field as a string, fees
    negative ("The trading fee deduction is negative"), fills newest first."""
    bid = await okx.best_bid()
    placed = await okx.ok("place_order", buy("shape1", bid))
    ahead_and_half = okx.core.levels(SYMBOL, "buy", 1)[0][1] - Decimal("0.005")  # the level holds ours too
    await okx.ok("place_order", market_sell("take2", ahead_and_half), TAKER)
    _, reply = await docs_request(okx, "GET", f"/api/v5/trade/order?instId=BTC-USDT&ordId={placed.venue_order_id}")
    (order,) = reply["data"]
    assert {k: order[k] for k in ("instType", "ordId", "clOrdId", "ordType", "side", "tdMode", "state", "feeCcy")} == {
        "instType": "SPOT", "ordId": placed.venue_order_id, "clOrdId": "shape1", "ordType": "limit", "side": "buy",
        "tdMode": "cash", "state": "partially_filled", "feeCcy": "BTC"}
    assert order["fee"].startswith("-") and order["cTime"].isdigit() and order["avgPx"] == str(bid)
    _, reply = await docs_request(okx, "GET", "/api/v5/trade/fills?instType=SPOT&instId=BTC-USDT&limit=100")
    (fill,) = reply["data"]
    assert (fill["ordId"], fill["clOrdId"], fill["execType"], fill["subType"], fill["feeRate"]) == (
        placed.venue_order_id, "shape1", "M", "1", "-0.0008")
    assert all(isinstance(v, str) for v in fill.values()) and fill["fee"].startswith("-")
