"""The Korbit dialect through exbus's own adapter (services/venues/korbit/rest.py) and
HttpTransport, plus requests signed here from the docs alone.

Sources: docs.korbit.co.kr (서명된 요청 보내기 / HMAC-SHA256 서명: hex HMAC-SHA256 of the
url-encoded parameters with ``timestamp``, ``signature`` last, ``X-KAPI-KEY``; query and body
signed as one string without ``&``; EXCEED_TIME_WINDOW outside ``recvWindow`` / +1000 ms;
요청 수 제한: 429 with ``Retry-After: 1``, ``Ratelimit`` headers; 주문하기, 개별 주문 조회,
주문 취소하기, 미체결 주문 조회, 최근 체결 내역 조회, 자산 현황 and their error codes), the
official korbit-cli (internal/apiclient/client.go: the code is ``error.message``).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from decimal import Decimal
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator
from urllib.parse import urlencode

import aiohttp
import pytest

from schemas.orders import CancelOrder, PlaceOrder
from schemas.queries import (
    BalanceQuery, OpenOrdersQuery, OrderBookQuery, OrderStatusQuery, TickerQuery, TradeHistoryQuery,
)
from schemas.vault import Credentials
from services.simulator import Simulator
from services.simulator.dialects.korbit import KorbitDialect
from services.venues import rest_adapter
from services.venues.errors import (
    AuthError, DuplicateOrder, InsufficientBalance, InvalidOrder, OrderNotFound, OutcomeUnknown, RateLimited,
    VenueError, VenueUnavailable,
)
from services.venues.http import HttpTransport

DEMO, TAKER = KorbitDialect.DEFAULT_ACCOUNTS
DEMO_CREDS = Credentials(api_key=DEMO.api_key, secret=DEMO.secret)
TAKER_CREDS = Credentials(api_key=TAKER.api_key, secret=TAKER.secret)
TICK = Decimal("1000")


class Korbit:
    """exbus's adapter and transport against one simulator."""

    def __init__(self, sim: Simulator, http: HttpTransport) -> None:
        self.sim, self.http, self.url = sim, http, sim.url("korbit")
        self.rest = rest_adapter("korbit", self.url)
        self.core = sim.dialects["korbit"].core

    async def call(self, op: str, args: Any, creds: Credentials | None = DEMO_CREDS, *, now_ms: int | None = None) -> Any:
        request = self.rest.build_request(op, args, creds, now_ms if now_ms is not None else time.time_ns() // 1_000_000)
        response = await self.http.send(request, idempotent=op not in ("place_order", "cancel_order"))
        self.headers = {k.lower(): v for k, v in response.headers.items()}
        return self.rest.parse_response(op, response.status, response.headers, response.body, args)

    async def place(self, cid: str, quantity: str, price: Decimal | None, *, side: str = "buy",
                    creds: Credentials = DEMO_CREDS) -> Any:
        order = PlaceOrder(command_id=cid, venue="korbit", account="demo", symbol="BTC-KRW", client_order_id=cid,  # type: ignore[arg-type]
                           side=side, order_type="limit" if price is not None else "market",  # type: ignore[arg-type]
                           quantity=Decimal(quantity), price=price)
        return await self.call("place_order", order, creds)

    async def status(self, cid: str) -> Any:
        return await self.call("order_status", OrderStatusQuery(symbol="BTC-KRW", client_order_id=cid))

    async def cancel(self, cid: str) -> Any:
        return await self.call("cancel_order", CancelOrder(command_id=f"x-{cid}", venue="korbit", account="demo",
                                                           symbol="BTC-KRW", client_order_id=cid))

    async def best_bid(self) -> Decimal:
        return (await self.call("orderbook", OrderBookQuery(symbol="BTC-KRW", depth=5), None)).bids[0].price

    async def signed(self, method: str, path: str, params: list[tuple[str, str]], *, secret: str = DEMO.secret,
                     in_query: list[tuple[str, str]] | None = None, ts_ms: int | None = None) -> tuple[int, Any, Any]:
        """A request signed by the docs' recipe, written here: ``in_query`` parameters go in
        the URL of a POST and the signed string is query + body with no ``&`` between."""
        ts = str(ts_ms if ts_ms is not None else time.time_ns() // 1_000_000)
        async with aiohttp.ClientSession() as session:
            if method == "POST":
                query = urlencode([*(in_query or []), ("timestamp", ts)])
                body = urlencode(params)
                sig = hmac.new(secret.encode(), (query + body).encode(), hashlib.sha256).hexdigest()
                async with session.post(f"{self.url}{path}?{query}", data=f"{body}&signature={sig}",
                                        headers={"X-KAPI-KEY": DEMO.api_key,
                                                 "Content-Type": "application/x-www-form-urlencoded"}) as r:
                    return r.status, await r.json(), r.headers
            query = urlencode([*params, ("timestamp", ts)])
            sig = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
            async with session.request(method, f"{self.url}{path}?{query}&signature={sig}",
                                       headers={"X-KAPI-KEY": DEMO.api_key}) as r:
                return r.status, await r.json(), r.headers


@asynccontextmanager
async def started(settings: dict[str, Any] | None = None) -> AsyncIterator[Korbit]:
    sim = Simulator({"replay": False, "venues": ["korbit"], **({"korbit": settings} if settings else {})})
    await sim.start()
    http = HttpTransport(timeout_s=1.0)
    try:
        yield Korbit(sim, http)
    finally:
        await http.close()
        await sim.stop()


@pytest.fixture
async def korbit() -> AsyncIterator[Korbit]:
    async with started() as venue:
        yield venue


def ok(result: Any) -> Any:
    assert not isinstance(result, VenueError), result
    return result


# -- round trips -----------------------------------------------------------------------------

async def test_market_data_round_trip(korbit: Korbit) -> None:
    """현재가 조회 / 호가 조회 / 거래지원 목록 조회 shapes, read back by the adapter."""
    ticker = ok(await korbit.call("ticker", TickerQuery(symbol="BTC-KRW"), None))
    book = ok(await korbit.call("orderbook", OrderBookQuery(symbol="BTC-KRW", depth=5), None))
    pairs = ok(await korbit.call("instruments", None, None))
    assert (ticker.bid, ticker.ask) == (book.bids[0].price, book.asks[0].price) == (Decimal("51000000"), Decimal("51010000"))
    assert pairs["BTC-KRW"].venue_symbol == "btc_krw" and pairs["BTC-KRW"].trading
    assert korbit.headers["ratelimit-policy"] == "50;w=1" and korbit.headers["ratelimit"].startswith("limit=50, remaining=")


async def test_place_fill_status_cancel_balance_and_trades(korbit: Korbit) -> None:
    """주문하기 -> a taker's market sell fills part -> 개별 주문 조회 by clientOrderId and (signed
    here) by orderId -> 미체결 주문 조회 -> 주문 취소하기; 자산 현황 and 최근 체결 내역 조회 agree
    with the core."""
    price = await korbit.best_bid() + TICK
    placed = ok(await korbit.place("k-1", "0.01", price))
    ok(await korbit.place("t-1", "0.004", None, side="sell", creds=TAKER_CREDS))
    info = ok(await korbit.status("k-1"))
    assert (info.state, info.filled_quantity, info.venue_order_id, info.average_price) == (
        "partially_filled", Decimal("0.004"), placed.venue_order_id, price)
    status, body, _ = await korbit.signed("GET", "/v2/orders", [("symbol", "btc_krw"), ("orderId", placed.venue_order_id)])
    assert (status, body["data"]["clientOrderId"], body["data"]["status"]) == (200, "k-1", "partiallyFilled")
    (listed,) = ok(await korbit.call("open_orders", OpenOrdersQuery(symbol="BTC-KRW")))
    assert listed.client_order_id == "k-1"
    ok(await korbit.cancel("k-1"))
    assert ok(await korbit.status("k-1")).state == "canceled"
    wallet = korbit.core.wallet(DEMO)
    balances = {b.asset: b for b in ok(await korbit.call("balance", BalanceQuery()))}
    assert {a: (b.free, b.locked) for a, b in balances.items()} == {
        a: (wallet.available(a), wallet.locked.get(a, Decimal(0))) for a in wallet.assets()}
    (fill,) = ok(await korbit.call("trade_history", TradeHistoryQuery(symbol="BTC-KRW")))
    ((order, core_fill),) = korbit.core.fills(DEMO)
    assert (fill.venue_order_id, fill.price, fill.quantity, fill.fee, fill.fee_asset, fill.liquidity) == (
        str(order.order_id), core_fill.price, core_fill.quantity, Decimal(0), "BTC", "maker")
    # 거래수수료율 조회 example: btc_krw makerFeeRate 0, takerFeeRate 0.0015, a sell pays in krw
    (taken,) = ok(await korbit.call("trade_history", TradeHistoryQuery(symbol="BTC-KRW"), TAKER_CREDS))
    assert (taken.fee, taken.fee_asset, taken.liquidity) == (price * Decimal("0.004") * Decimal("0.0015"), "KRW", "taker")


async def test_docs_signing_with_query_and_body_parts(korbit: Korbit) -> None:
    """서명 일반: timestamp in the query, the order in the body: the signed string is their
    concatenation with no ``&`` (the docs' ``timestamp=1719232467910symbol=btc_krw``)."""
    params = [("symbol", "btc_krw"), ("side", "buy"), ("price", "50000000"), ("qty", "0.001"),
              ("orderType", "limit"), ("clientOrderId", "split-1")]
    status, body, headers = await korbit.signed("POST", "/v2/orders", params)
    assert status == 200 and body["success"] is True and isinstance(body["data"]["orderId"], int)
    assert headers["Ratelimit-Policy"] == "30;w=1"
    status, body, _ = await korbit.signed("POST", "/v2/orders", params, secret="not-the-secret")
    assert (status, body["error"]["message"]) == (401, "INVALID_SIGNATURE")


# -- failures and the exbus taxonomy ---------------------------------------------------------

async def test_auth_failures(korbit: Korbit) -> None:
    """KEY_NOT_FOUND, a wrong signature, and EXCEED_TIME_WINDOW (older than recvWindow 5000,
    or 1000 ms or more ahead of the server) are AuthErrors."""
    assert isinstance(await korbit.call("balance", BalanceQuery(), Credentials(api_key="nobody", secret="x")), AuthError)
    assert isinstance(await korbit.call("balance", BalanceQuery(), Credentials(api_key=DEMO.api_key, secret="x")), AuthError)
    now = time.time_ns() // 1_000_000
    for ts in (now - 6000, now + 2000):
        err = await korbit.call("balance", BalanceQuery(), now_ms=ts)
        assert isinstance(err, AuthError) and err.venue_code == "EXCEED_TIME_WINDOW"
    status, body, _ = await korbit.signed("GET", "/v2/balance", [("recvWindow", "20000")], ts_ms=now - 10000)
    assert status == 200 and body["success"] is True  # a wider recvWindow admits it


async def test_order_refusals(korbit: Korbit) -> None:
    """주문하기 errors: NO_BALANCE, PRICE_TICK_SIZE_INVALID, ORDER_VALUE_TOO_SMALL/LARGE, BAD_REQUEST
    (8 decimals of BTC), DUPLICATE_CLIENT_ORDER_ID ("processed only once", even after a
    refused order); ORDER_NOT_FOUND for status and cancel of an unknown order."""
    ok(await korbit.place("r-1", "19", Decimal("50000000")))  # 950,000,000 KRW: under the 1e9 maximum
    assert isinstance(await korbit.place("r-2", "101", Decimal("9000000"), side="sell"), InsufficientBalance)
    tick = await korbit.place("r-3", "0.01", Decimal("51000500"))
    small = await korbit.place("r-4", "0.00001", Decimal("50000000"))
    lot = await korbit.place("r-5", "0.000000001", Decimal("50000000"))
    assert [(type(e), e.venue_code) for e in (tick, small, lot)] == [
        (InvalidOrder, "PRICE_TICK_SIZE_INVALID"), (InvalidOrder, "ORDER_VALUE_TOO_SMALL"), (InvalidOrder, "BAD_REQUEST")]
    large = await korbit.place("r-7", "20", Decimal("51000000"))  # 1,020,000,000 KRW, funded
    assert (type(large), large.venue_code) == (InvalidOrder, "ORDER_VALUE_TOO_LARGE")
    assert isinstance(await korbit.place("r-2", "0.001", Decimal("50000000")), DuplicateOrder)
    ok(await korbit.place("r-6", "0.001", Decimal("50000000")))
    assert isinstance(await korbit.place("r-6", "0.001", Decimal("50000000")), DuplicateOrder)
    assert len(korbit.core.account_orders(DEMO)) == 2  # r-1 and r-6
    assert isinstance(await korbit.status("nope"), OrderNotFound)
    assert isinstance(await korbit.cancel("nope"), OrderNotFound)


async def test_post_only_that_would_take_is_accepted_and_canceled(korbit: Korbit) -> None:
    """주문하기 timeInForce ``po``: "주문 입력 시 바로 체결되는 상황이라면 주문이 취소됩니다" (the
    order is canceled, not refused): nothing executes."""
    ask = (await korbit.call("orderbook", OrderBookQuery(symbol="BTC-KRW", depth=1), None)).asks[0].price
    order = PlaceOrder(command_id="po-1", venue="korbit", account="demo", symbol="BTC-KRW", client_order_id="po-1",
                       side="buy", order_type="limit", quantity=Decimal("0.001"), price=ask, post_only=True)
    ok(await korbit.call("place_order", order))
    info = ok(await korbit.status("po-1"))
    assert (info.state, info.filled_quantity) == ("canceled", Decimal(0))


async def test_cancel_of_a_closed_order(korbit: Korbit) -> None:
    """주문 취소하기: ORDER_ALREADY_CANCELED for an order canceled before (exbus: OrderNotFound)."""
    ok(await korbit.place("c-1", "0.001", Decimal("50000000")))
    ok(await korbit.cancel("c-1"))
    err = await korbit.cancel("c-1")
    assert isinstance(err, OrderNotFound) and err.venue_code == "ORDER_ALREADY_CANCELED"


async def test_malformed_requests_get_bad_request(korbit: Korbit) -> None:
    """A missing parameter, a JSON body, an unknown pair: the venue's 400s, never a 500."""
    status, body, _ = await korbit.signed("GET", "/v2/orders", [("symbol", "btc_krw")])
    assert (status, body) == (400, {"success": False, "error": {"code": 400, "message": "BAD_REQUEST"}})
    status, body, _ = await korbit.signed("GET", "/v2/openOrders", [("symbol", "doge_usd")])
    assert (status, body["error"]["message"]) == (400, "INVALID_CURRENCY_PAIR")
    status, body, _ = await korbit.signed("POST", "/v2/orders", [("symbol", "btc_krw"), ("side", "buy"), ("qty", "x"),
                                                                 ("price", "1"), ("orderType", "limit")])
    assert (status, body["error"]["message"]) == (400, "BAD_REQUEST")
    async with aiohttp.ClientSession() as s, s.post(f"{korbit.url}/v2/orders", json={"symbol": "btc_krw"},
                                                     headers={"X-KAPI-KEY": DEMO.api_key}) as r:
        assert (r.status, (await r.json())["error"]["message"]) == (400, "BAD_REQUEST")


async def test_rate_limited_with_retry_after() -> None:
    """요청 수 제한: over the (lowered) order limit -> 429 TOO_MANY_REQUESTS, Retry-After: 1, and
    "no disadvantage beyond not getting replies until the limit resets": a client that keeps
    sending is never banned (six orders within a second cannot all fit a limit of one)."""
    async with started({"rate_limits": {"order": 1}}) as korbit:
        results = [await korbit.place(f"rl-{n}", "0.001", Decimal("50000000")) for n in range(6)]
        limits = korbit.sim.ledger_snapshot()["limits"]["korbit"]["account:demo"]
    limited = [r for r in results if isinstance(r, RateLimited)]
    assert len(limited) >= 4 and all(r.retry_after == 1 and r.venue_code == "TOO_MANY_REQUESTS" for r in limited)
    assert (limits["bans"], limits["status_418"]) == (0, 0)


# -- faults on the place route ----------------------------------------------------------------

async def test_5xx_before_and_after(korbit: Korbit) -> None:
    """A 5xx on place is OutcomeUnknown; on a query VenueUnavailable. ``after``: the order
    exists and order status by clientOrderId finds it."""
    korbit.sim.set_faults([{"kind": "error_5xx", "venue": "korbit", "route": "place", "status": 503, "count": 1}])
    assert isinstance(await korbit.place("f-1", "0.001", Decimal("50000000")), OutcomeUnknown)
    assert isinstance(await korbit.status("f-1"), OrderNotFound)
    korbit.sim.set_faults([{"kind": "error_5xx", "venue": "korbit", "route": "place", "status": 500, "when": "after"}])
    assert isinstance(await korbit.place("f-2", "0.001", Decimal("50000000")), OutcomeUnknown)
    assert ok(await korbit.status("f-2")).state == "open"
    korbit.sim.set_faults([{"kind": "error_5xx", "venue": "korbit", "route": "GET /v2/orders", "status": 502}])
    assert isinstance(await korbit.status("f-2"), VenueUnavailable)


@pytest.mark.parametrize("kind", ["timeout", "drop", "malformed"])
async def test_lost_replies_are_reconciled_by_client_order_id(korbit: Korbit, kind: str) -> None:
    """The order is taken but its reply is lost: OutcomeUnknown, then exactly one order found
    by clientOrderId, and a resend is DUPLICATE_CLIENT_ORDER_ID (no second order)."""
    korbit.sim.set_faults([{"kind": kind, "venue": "korbit", "route": "place", "count": 1}])
    try:
        result = await korbit.place("lost-1", "0.001", Decimal("50000000"))
    except OutcomeUnknown as e:  # timeout, drop: raised by the transport
        result = e
    assert isinstance(result, OutcomeUnknown)  # malformed: returned by the adapter
    assert ok(await korbit.status("lost-1")).state == "open"
    assert isinstance(await korbit.place("lost-1", "0.001", Decimal("50000000")), DuplicateOrder)
    assert len(korbit.core.account_orders(DEMO)) == 1


async def test_latency_delays_but_places(korbit: Korbit) -> None:
    """A latency fault on place: the order is placed and the fault fired once."""
    korbit.sim.set_faults([{"kind": "latency", "venue": "korbit", "route": "place", "latency_ms": 50}])
    ok(await korbit.place("lat-1", "0.001", Decimal("50000000")))
    assert [f["fired"] for f in korbit.sim.faults.describe()] == [1]
