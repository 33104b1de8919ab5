"""The Bithumb dialect of the simulator, driven by exbus's Bithumb adapter over HTTP and by a
test-local signer written from apidocs.bithumb.com "인증 헤더 만들기" (JWT HS256: access_key,
nonce = uuid4, timestamp in ms, query_hash = SHA512 hex of ``urlencode(params)``,
query_hash_alg = SHA512; ``Authorization: Bearer <token>``).

Sources per test: "API 주요 에러 코드" (error names and statuses), "API 요청 수 제한 안내"
(per-IP categories), the client_order_id changelog (2026-03-12), the reference pages of
/v1/ticker, /v1/orderbook, /v1/market/all, /v1/accounts, /v1/order, /v1/orders, /v2/orders,
/v2/order.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from decimal import Decimal
from typing import Any, AsyncIterator
from urllib.parse import urlencode

import aiohttp
import jwt
import pytest

from schemas.orders import CancelOrder, PlaceOrder
from schemas.queries import BalanceQuery, OpenOrdersQuery, OrderBookQuery, OrderStatusQuery, TickerQuery
from schemas.vault import Credentials
from services.simulator import ManualClock, Simulator
from services.simulator.dialects.bithumb import BithumbDialect
from services.venues import rest_adapter
from services.venues.errors import (
    AuthError, DuplicateOrder, InsufficientBalance, InvalidOrder, OrderNotFound, OutcomeUnknown, RateLimited,
    VenueError, VenueUnavailable,
)
from services.venues.http import HttpTransport

DEMO_ACCOUNT, TAKER_ACCOUNT = BithumbDialect.DEFAULT_ACCOUNTS
DEMO = Credentials(api_key=DEMO_ACCOUNT.api_key, secret=DEMO_ACCOUNT.secret)
TAKER = Credentials(api_key=TAKER_ACCOUNT.api_key, secret=TAKER_ACCOUNT.secret)
SYMBOL = "BTC-KRW"
START_NS = 1_800_000_000 * 1_000_000_000 + 1_000_000_000
"""A manual clock start one second into a minute: windows are predictable."""


def docs_token(key: str, secret: str, params: list[tuple[str, str]], *, nonce: str | None = None,
               timestamp: int | None = None) -> str:
    """The token exactly as the docs' Python example builds it."""
    payload: dict[str, Any] = {"access_key": key, "nonce": nonce or str(uuid.uuid4()),
                               "timestamp": round(time.time() * 1000) if timestamp is None else timestamp}
    if params:
        payload["query_hash"] = hashlib.sha512(urlencode(params).encode()).hexdigest()
        payload["query_hash_alg"] = "SHA512"
    return jwt.encode(payload, secret, algorithm="HS256")


class Bithumb:
    """exbus's adapter and transport against the simulated venue."""

    def __init__(self, sim: Simulator, http: HttpTransport, clock: ManualClock | None = None) -> None:
        self.sim, self.url, self.http = sim, sim.url("bithumb"), http
        self.now_ms = clock.ms if clock else lambda: time.time_ns() // 1_000_000
        self.rest = rest_adapter("bithumb", self.url)
        self.core = sim.dialects["bithumb"].core

    async def result(self, op: str, args: Any, creds: Credentials | None = DEMO) -> Any:
        """The adapter's parsed answer (a VenueError is returned, a transport failure raised)."""
        request = self.rest.build_request(op, args, creds, self.now_ms())
        response = await self.http.send(request, idempotent=op not in ("place_order", "cancel_order"))
        return self.rest.parse_response(op, response.status, response.headers, response.body, args)

    async def call(self, op: str, args: Any, creds: Credentials | None = DEMO) -> Any:
        result = await self.result(op, args, creds)
        assert not isinstance(result, VenueError), result
        return result

    async def raw(self, method: str, path: str, params: list[tuple[str, str]], token: str | None,
                  body: bytes | None = None) -> tuple[int, Any]:
        """A request signed by the test-local signer (or unsigned), JSON body for POST."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = f"{self.url}{path}"
        if method == "POST":
            headers["Content-Type"] = "application/json; charset=utf-8"
            data = body if body is not None else json.dumps(dict(params)).encode()
        else:
            url += f"?{urlencode(params)}" if params else ""
            data = None
        async with aiohttp.ClientSession() as s, s.request(method, url, headers=headers, data=data) as resp:
            return resp.status, await resp.json(content_type=None)


def buy(cid: str, quantity: str, price: Decimal) -> PlaceOrder:
    return PlaceOrder(command_id=cid, venue="bithumb", account="demo", symbol=SYMBOL, client_order_id=cid,
                      side="buy", order_type="limit", quantity=Decimal(quantity), price=price)


def market_sell(cid: str, quantity: str) -> PlaceOrder:
    return PlaceOrder(command_id=cid, venue="bithumb", account="taker", symbol=SYMBOL, client_order_id=cid,
                      side="sell", order_type="market", quantity=Decimal(quantity))


def cancel(cid: str) -> CancelOrder:
    return CancelOrder(command_id=f"x{cid}", venue="bithumb", account="demo", symbol=SYMBOL, client_order_id=cid)


async def _venue(clock: ManualClock | None = None, **settings: Any) -> AsyncIterator[Bithumb]:
    async with Simulator({"replay": False, "venues": ["bithumb"], "bithumb": settings}, clock=clock) as sim, \
            HttpTransport(timeout_s=2.0) as http:
        yield Bithumb(sim, http, clock)


@pytest.fixture
async def venue() -> AsyncIterator[Bithumb]:
    async for v in _venue():
        yield v


async def inside_bid(v: Bithumb) -> Decimal:
    """A price one tick above the best bid (below the best ask): first in the queue."""
    book = await v.call("orderbook", OrderBookQuery(symbol=SYMBOL, depth=5), None)
    price = book.bids[0].price + Decimal("1000")
    assert price < book.asks[0].price
    return price


# -- round trips ------------------------------------------------------------------------------

async def test_market_data_round_trip(venue: Bithumb) -> None:
    """/v1/orderbook (units pair nth bid and ask, Doubles), /v1/ticker, /v1/market/all."""
    book = await venue.call("orderbook", OrderBookQuery(symbol=SYMBOL, depth=5), None)
    assert [(lv.price, lv.size) for lv in book.bids] == venue.core.levels(SYMBOL, "buy", 5)
    assert [(lv.price, lv.size) for lv in book.asks] == venue.core.levels(SYMBOL, "sell", 5)
    ticker = await venue.call("ticker", TickerQuery(symbol=SYMBOL), None)
    assert book.bids[0].price <= ticker.last <= book.asks[0].price
    assert list(await venue.call("instruments", None, None)) == [SYMBOL]
    status, body = await venue.raw("GET", "/v1/orderbook", [("markets", "KRW-BTC")], None)
    assert status == 200 and isinstance(body[0]["orderbook_units"][0]["ask_price"], (int, float))


async def test_resting_order_fills_seen_by_status_then_cancel(venue: Bithumb) -> None:
    """POST /v2/orders -> GET /v1/order by client_order_id and by uuid -> /v1/orders ->
    /v1/accounts -> DELETE /v2/order (changelog 2026-03-12)."""
    price = await inside_bid(venue)
    placed = await venue.call("place_order", buy("bt-rest-1", "0.01", price))
    assert (placed.state, placed.client_order_id) == ("open", "bt-rest-1")
    await venue.call("place_order", market_sell("bt-take-1", "0.004"), TAKER)

    status = await venue.call("order_status", OrderStatusQuery(symbol=SYMBOL, client_order_id="bt-rest-1"))
    assert (status.state, status.filled_quantity, status.average_price) == ("partially_filled", Decimal("0.004"), price)
    code, by_uuid = await venue.raw("GET", "/v1/order", [("uuid", placed.venue_order_id)],
                                    docs_token(DEMO.api_key, DEMO.secret, [("uuid", placed.venue_order_id)]))
    assert code == 200 and by_uuid["client_order_id"] == "bt-rest-1" and by_uuid["executed_volume"] == "0.004"
    assert [(t["price"], t["volume"]) for t in by_uuid["trades"]] == [(str(price), "0.004")]

    (listed,) = await venue.call("open_orders", OpenOrdersQuery(symbol=SYMBOL))
    assert listed.venue_order_id == placed.venue_order_id
    wallet = venue.core.wallet(DEMO_ACCOUNT)
    balances = {b.asset: (b.free, b.locked) for b in await venue.call("balance", BalanceQuery())}
    assert balances["KRW"] == (wallet.available("KRW"), wallet.locked["KRW"])
    assert balances["BTC"] == (wallet.available("BTC"), Decimal(0))

    await venue.call("cancel_order", cancel("bt-rest-1"))
    final = await venue.call("order_status", OrderStatusQuery(symbol=SYMBOL, client_order_id="bt-rest-1"))
    assert (final.state, final.filled_quantity) == ("canceled", Decimal("0.004"))
    assert await venue.call("open_orders", OpenOrdersQuery(symbol=SYMBOL)) == []
    assert [o["client_order_id"] for o in venue.sim.ledger_snapshot()["orders"]].count("bt-rest-1") == 1


async def test_lost_reply_is_found_by_client_order_id(venue: Bithumb) -> None:
    """Timeout after accept: GET /v1/order?client_order_id= finds the one order."""
    venue.sim.set_faults([{"kind": "timeout", "venue": "bithumb", "route": "place", "count": 1}])
    with pytest.raises(OutcomeUnknown):
        await venue.result("place_order", buy("bt-lost-1", "0.01", await inside_bid(venue)))
    found = await venue.call("order_status", OrderStatusQuery(symbol=SYMBOL, client_order_id="bt-lost-1"))
    assert found.state == "open"
    assert [o["client_order_id"] for o in venue.sim.ledger_snapshot()["orders"]] == ["bt-lost-1"]


# -- authentication as documented ---------------------------------------------------------------

async def test_documented_token_is_accepted_and_every_deviation_refused(venue: Bithumb) -> None:
    """인증 헤더 만들기: the docs' recipe places an order; a tampered parameter, a reused nonce,
    an old timestamp, another secret and an unknown key are refused with 401."""
    params = [("market", "KRW-BTC"), ("side", "bid"), ("volume", "0.001"), ("price", "30000000"),
              ("ord_type", "limit"), ("client_order_id", "bt-docs-1")]
    nonce = str(uuid.uuid4())
    token = docs_token(DEMO.api_key, DEMO.secret, params, nonce=nonce)
    status, body = await venue.raw("POST", "/v2/orders", params, token)
    assert status == 201 and body["client_order_id"] == "bt-docs-1" and body["state"] == "wait"

    other = [*params[:-1], ("client_order_id", "bt-docs-2")]
    cases = {
        "invalid_query_payload": (other, docs_token(DEMO.api_key, DEMO.secret, params)),
        "jwt_verification": (other, docs_token(DEMO.api_key, DEMO.secret, other, nonce=nonce)),
        "expired_jwt": (other, docs_token(DEMO.api_key, DEMO.secret, other, timestamp=round(time.time() * 1000) - 60_000)),
        "invalid_access_key": (other, docs_token("no-such-key", DEMO.secret, other)),
    }
    for name, (sent, tok) in cases.items():
        status, body = await venue.raw("POST", "/v2/orders", sent, tok)
        assert (status, body["error"]["name"]) == (401, name), (name, body)
    status, body = await venue.raw("GET", "/v1/accounts", [], docs_token(DEMO.api_key, TAKER.secret, []))
    assert (status, body["error"]["name"]) == (401, "jwt_verification")
    status, body = await venue.raw("GET", "/v1/accounts", [], None)
    assert status == 401
    assert [o["client_order_id"] for o in venue.sim.ledger_snapshot()["orders"]] == ["bt-docs-1"]


async def test_malformed_requests_get_invalid_parameter(venue: Bithumb) -> None:
    """API 주요 에러 코드, 400 invalid_parameter: a body that is not JSON, a missing side, a bad
    client_order_id ([A-Za-z0-9_-]{1,36}), a query without an id."""
    status, body = await venue.raw("POST", "/v2/orders", [], docs_token(DEMO.api_key, DEMO.secret, []), body=b"{nope")
    assert (status, body["error"]["name"]) == (400, "invalid_parameter")
    for params in ([("market", "KRW-BTC"), ("volume", "0.001"), ("price", "30000000"), ("ord_type", "limit")],
                   [("market", "KRW-BTC"), ("side", "bid"), ("volume", "0.001"), ("price", "30000000"),
                    ("ord_type", "limit"), ("client_order_id", "has space")]):
        status, body = await venue.raw("POST", "/v2/orders", params, docs_token(DEMO.api_key, DEMO.secret, params))
        assert (status, body["error"]["name"]) == (400, "invalid_parameter"), body
    status, body = await venue.raw("GET", "/v1/order", [], docs_token(DEMO.api_key, DEMO.secret, []))
    assert (status, body["error"]["name"]) == (400, "invalid_parameter")


# -- refusals through the adapter -----------------------------------------------------------------

async def test_refusals_map_to_the_taxonomy(venue: Bithumb) -> None:
    """API 주요 에러 코드 and the client_order_id changelog, read by exbus's adapter."""
    price = await inside_bid(venue)
    stranger = Credentials(api_key="sim-bithumb-nobody", secret=DEMO.secret)
    forger = Credentials(api_key=DEMO.api_key, secret=TAKER.secret)
    assert isinstance(await venue.result("balance", BalanceQuery(), stranger), AuthError)
    assert isinstance(await venue.result("balance", BalanceQuery(), forger), AuthError)
    err = await venue.result("place_order", buy("bt-big-1", "100000", price))
    assert isinstance(err, InsufficientBalance) and err.venue_code == "insufficient_funds_bid"
    err = await venue.result("cancel_order", cancel("bt-never-1"))
    assert isinstance(err, OrderNotFound) and err.status == 404
    assert isinstance(await venue.result("order_status", OrderStatusQuery(symbol=SYMBOL, client_order_id="bt-never-1")),
                      OrderNotFound)
    await venue.call("place_order", buy("bt-dup-1", "0.001", price))
    assert isinstance(await venue.result("place_order", buy("bt-dup-1", "0.001", price)), DuplicateOrder)
    # a refused order uses its client order id up too ("forever")
    assert isinstance(await venue.result("place_order", buy("bt-big-1", "0.001", price)), DuplicateOrder)
    for cid, quantity, at, code in (("bt-tick-1", "0.001", price + 1, "invalid_price_bid"),
                                    ("bt-min-1", "0.0001", price, "under_min_total_bid"),
                                    ("bt-lot-1", "0.000000001", price, "invalid_volume_bid")):
        err = await venue.result("place_order", buy(cid, quantity, at))
        assert isinstance(err, InvalidOrder) and err.venue_code == code, err


async def test_rate_limit_is_rate_limited_with_a_wait() -> None:
    """API 요청 수 제한 안내 (order category per IP; lowered to 2/s): 429 too_many_requests,
    no Retry-After documented -> the adapter waits one 1 s window; the next window admits."""
    clock = ManualClock(START_NS)
    async for v in _venue(clock, rate_limits={"order": 2}):
        price = await inside_bid(v)
        for n in range(2):
            await v.call("place_order", buy(f"bt-rl-{n}", "0.001", price))
        err = await v.result("place_order", buy("bt-rl-2", "0.001", price))
        assert isinstance(err, RateLimited) and err.status == 429 and err.retry_after == 1.0
        assert err.venue_code == "too_many_requests" and not err.banned
        assert len(v.sim.ledger_snapshot()["orders"]) == 2
        clock.advance(err.retry_after)
        await v.call("place_order", buy("bt-rl-3", "0.001", price))


async def test_a_client_that_keeps_going_is_blocked() -> None:
    """API 요청 수 제한 안내, "제한 초과 시 동작": the category is blocked for a while for a
    client that does not wait (the simulator's ban policy); still a RateLimited for exbus."""
    clock = ManualClock(START_NS)
    async for v in _venue(clock, rate_limits={"private_other": 1}):
        await v.call("balance", BalanceQuery())
        refusals = [await v.result("balance", BalanceQuery()) for _ in range(5)]
        assert all(isinstance(r, RateLimited) and r.status == 429 for r in refusals), refusals
        assert "제한되었습니다" in refusals[-1].message
        clock.advance(1)  # a new window, but the block holds
        assert isinstance(await v.result("balance", BalanceQuery()), RateLimited)


@pytest.mark.parametrize("kind, status, expected, placed", [
    ("error_5xx", 503, OutcomeUnknown, False),
    ("error_5xx", 500, OutcomeUnknown, False),
    ("error_5xx", 429, RateLimited, False),
    ("timeout", None, OutcomeUnknown, True),
    ("drop", None, OutcomeUnknown, True),
    ("malformed", None, OutcomeUnknown, True),
    ("latency", None, None, True),
])
async def test_each_fault_on_the_place_route(venue: Bithumb, kind: str, status: int | None, expected: type | None,
                                             placed: bool) -> None:
    """faults.py on POST /v2/orders (Route.kind "place"): 5xx before processing, answers lost
    after it, a truncated body, added latency; server_error bodies are Bithumb's error shape."""
    fault: dict[str, Any] = {"kind": kind, "venue": "bithumb", "route": "place", "count": 1}
    if status:
        fault["status"] = status
    if kind == "latency":
        fault["latency_ms"] = 10
    venue.sim.set_faults([fault])
    price = await inside_bid(venue)
    try:
        outcome: Any = await venue.result("place_order", buy("bt-fault-1", "0.001", price))
    except VenueError as e:
        outcome = e
    if expected is None:
        assert outcome.client_order_id == "bt-fault-1"
    else:
        assert isinstance(outcome, expected), outcome
    assert [f["fired"] for f in venue.sim.faults.describe()] == [1]
    assert len(venue.sim.ledger_snapshot()["orders"]) == (1 if placed else 0)
    found = await venue.result("order_status", OrderStatusQuery(symbol=SYMBOL, client_order_id="bt-fault-1"))
    assert isinstance(found, OrderNotFound) != placed


async def test_injected_5xx_on_a_query_is_venue_unavailable(venue: Bithumb) -> None:
    """A 503 on GET /v1/ticker (idempotent): VenueUnavailable, body in Bithumb's error shape."""
    venue.sim.set_faults([{"kind": "error_5xx", "status": 503, "venue": "bithumb", "route": "GET /v1/ticker",
                           "count": 1}])
    status, body = await venue.raw("GET", "/v1/ticker", [("markets", "KRW-BTC")], None)
    assert status == 503 and set(body["error"]) == {"name", "message"}
    venue.sim.set_faults([{"kind": "error_5xx", "status": 503, "venue": "bithumb", "route": "GET /v1/ticker",
                           "count": 1}])
    assert isinstance(await venue.result("ticker", TickerQuery(symbol=SYMBOL), None), VenueUnavailable)


async def test_post_only_at_a_taker_price_ends_canceled(venue: Bithumb) -> None:
    """"개별 주문 조회": a post_only order at a taker price is returned in state ``cancel``."""
    book = await venue.call("orderbook", OrderBookQuery(symbol=SYMBOL, depth=5), None)
    order = PlaceOrder(command_id="po", venue="bithumb", account="demo", symbol=SYMBOL, client_order_id="bt-po-1",
                       side="buy", order_type="limit", quantity=Decimal("0.001"), price=book.asks[0].price,
                       post_only=True)
    placed = await venue.call("place_order", order)
    assert (placed.state, placed.filled_quantity) == ("canceled", 0)
    found = await venue.call("order_status", OrderStatusQuery(symbol=SYMBOL, client_order_id="bt-po-1"))
    assert found.state == "canceled"
    assert venue.core.levels(SYMBOL, "sell", 1) == [(book.asks[0].price, book.asks[0].size)]


async def test_refusals_are_in_the_ledger_with_the_venue_error_name(venue: Bithumb) -> None:
    """The ledger records each refused order under Bithumb's error name, parse refusals included."""
    price = await inside_bid(venue)
    await venue.result("place_order", buy("bt-led-1", "100000", price))
    params = [("market", "KRW-BTC"), ("side", "bid"), ("ord_type", "limit"), ("client_order_id", "bt-led-2")]
    await venue.raw("POST", "/v2/orders", params, docs_token(DEMO.api_key, DEMO.secret, params))
    rejected = {r["client_order_id"]: r["error"] for r in venue.sim.ledger_snapshot()["rejected"]}
    assert rejected == {"bt-led-1": "insufficient_funds_bid", "bt-led-2": "invalid_parameter"}
