"""The Coinone dialect against exbus's Coinone adapter, and one client signed here from the
docs. Sources: docs.coinone.co.kr Private API v2.1 (X-COINONE-PAYLOAD / X-COINONE-SIGNATURE,
UUID v4 nonce), reference pages place-order, cancel-order, order-detail, find-active-orders,
find-balance, find-completed-orders, public v2 ticker_new / orderbook / markets, the
error-code page; ccxt 4.5.90 coinone.sign() (the body is the base64 payload)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
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
from services.simulator.core import Refusal
from services.venues import rest_adapter
from services.venues.errors import (
    AuthError, DuplicateOrder, InsufficientBalance, InvalidOrder, OrderNotFound, OutcomeUnknown, RateLimited,
    VenueError, VenueUnavailable,
)
from services.venues.http import HttpTransport

from .conftest import START_NS

DEMO = Credentials(api_key="sim-coinone-demo-access", secret="SIM-COINONE-DEMO-SECRET-000000000000")
TAKER = Credentials(api_key="sim-coinone-taker-access", secret="SIM-COINONE-TAKER-SECRET-00000000000")
SYMBOL = "BTC-KRW"


class Coinone:
    """exbus's adapter over HttpTransport, as the executor calls it."""

    def __init__(self, sim: Simulator, http: HttpTransport) -> None:
        self.sim, self.rest, self.http = sim, rest_adapter("coinone", sim.url("coinone")), http

    async def call(self, op: str, args: Any, creds: Credentials | None = DEMO) -> Any:
        request = self.rest.build_request(op, args, creds, time.time_ns() // 1_000_000)
        try:
            response = await self.http.send(request, idempotent=op not in ("place_order", "cancel_order"))
        except VenueError as e:
            return e
        return self.rest.parse_response(op, response.status, response.headers, response.body, args)

    async def ok(self, op: str, args: Any, creds: Credentials | None = DEMO) -> Any:
        result = await self.call(op, args, creds)
        assert not isinstance(result, VenueError), result
        return result


def limit(cid: str, side: str, qty: str, price: Decimal | str, account: str = "demo") -> PlaceOrder:
    return PlaceOrder(command_id=cid, venue="coinone", account=account, symbol=SYMBOL, client_order_id=cid,
                      side=side, order_type="limit", quantity=Decimal(qty), price=Decimal(price))  # type: ignore[arg-type]


def market_sell(cid: str, qty: Decimal) -> PlaceOrder:
    return PlaceOrder(command_id=cid, venue="coinone", account="taker", symbol=SYMBOL, client_order_id=cid,
                      side="sell", order_type="market", quantity=qty)


def signed(secret: str, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The docs' recipe, written here: payload = base64(JSON body), signature = hex
    HMAC-SHA512(secret, payload); the request body is the payload (ccxt, Coinone's sample)."""
    payload = base64.b64encode(json.dumps(body).encode())
    signature = hmac.new(secret.encode(), payload, hashlib.sha512).hexdigest()
    return payload, {"Content-Type": "application/json", "X-COINONE-PAYLOAD": payload.decode(),
                     "X-COINONE-SIGNATURE": signature}


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator({"replay": False, "venues": ["coinone"]}) as simulator:
        yield simulator


@pytest.fixture
async def coinone(sim: Simulator) -> AsyncIterator[Coinone]:
    async with HttpTransport(timeout_s=2.0) as http:
        yield Coinone(sim, http)


async def test_every_operation_round_trips(sim: Simulator, coinone: Coinone) -> None:
    """place-order -> order-detail (by user_order_id and order_id) -> active_orders -> a taker's
    market sell fills it in part -> completed_orders, balance/all -> cancel-order."""
    book = await coinone.ok("orderbook", OrderBookQuery(symbol=SYMBOL, depth=5), None)
    ticker = await coinone.ok("ticker", TickerQuery(symbol=SYMBOL), None)
    rules = (await coinone.ok("instruments", None, None))[SYMBOL]
    assert (ticker.bid, ticker.ask) == (book.bids[0].price, book.asks[0].price)
    assert (rules.tick_size, rules.lot_size, rules.min_notional) == (Decimal(1000), Decimal("0.0001"), Decimal(5000))

    bid, bid_size = book.bids[0].price, book.bids[0].size
    placed = await coinone.ok("place_order", limit("co-rt1", "buy", "0.01", bid))
    assert placed.state == "open"
    by_cid = await coinone.ok("order_status", OrderStatusQuery(symbol=SYMBOL, client_order_id="co-rt1"))
    by_id = await coinone.ok("order_status", OrderStatusQuery(symbol=SYMBOL, client_order_id="co-rt1",
                                                              venue_order_id=placed.venue_order_id))
    assert by_cid == by_id and by_cid.venue_order_id == placed.venue_order_id
    (active,) = await coinone.ok("open_orders", OpenOrdersQuery(symbol=SYMBOL))
    assert active.venue_order_id == placed.venue_order_id

    await coinone.ok("place_order", market_sell("co-take1", bid_size + Decimal("0.004")), TAKER)
    status = await coinone.ok("order_status", OrderStatusQuery(symbol=SYMBOL, client_order_id="co-rt1"))
    assert (status.state, status.filled_quantity, status.average_price) == ("partially_filled", Decimal("0.004"), bid)
    (fill,) = await coinone.ok("trade_history", TradeHistoryQuery(symbol=SYMBOL))
    assert (fill.venue_order_id, fill.price, fill.quantity, fill.liquidity) == (placed.venue_order_id, bid,
                                                                                 Decimal("0.004"), "maker")
    core = sim.dialects["coinone"].core
    wallet = core.wallet(core.by_name["demo"])
    balances = {b.asset: (b.free, b.locked) for b in await coinone.ok("balance", BalanceQuery())}
    assert balances == {a: (wallet.available(a), wallet.locked.get(a, Decimal(0))) for a in wallet.assets()}

    canceled = await coinone.ok("cancel_order", CancelOrder(command_id="x", venue="coinone", account="demo",
                                                            symbol=SYMBOL, client_order_id="co-rt1"))
    assert (canceled.state, canceled.filled_quantity) == ("canceled", Decimal("0.004"))
    assert await coinone.ok("open_orders", OpenOrdersQuery(symbol=SYMBOL)) == []


async def test_a_request_signed_from_the_docs(sim: Simulator) -> None:
    """Auth as the v2.1 docs define it; each broken part gets the error-code page's code."""
    url = sim.url("coinone") + "/v2.1/account/balance/all"
    nonce = str(uuid.uuid4())
    body = {"access_token": DEMO.api_key, "nonce": nonce}
    async with aiohttp.ClientSession() as s:
        async def post(data: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
            async with s.post(url, data=data, headers=headers) as r:
                return r.status, await r.json()

        payload, headers = signed(DEMO.secret, body)
        status, reply = await post(payload, headers)
        assert (status, reply["result"], reply["error_code"]) == (200, "success", "0")
        assert {b["currency"] for b in reply["balances"]} >= {"KRW", "BTC"}
        codes = {
            "reused nonce": await post(payload, headers),
            "bad signature": await post(*signed(TAKER.secret, {**body, "nonce": str(uuid.uuid4())})),
            "unknown token": await post(*signed(DEMO.secret, {**body, "access_token": "nobody",
                                                             "nonce": str(uuid.uuid4())})),
            "nonce not UUID v4": await post(*signed(DEMO.secret, {**body, "nonce": "1700000000000"})),
            "no payload": await post(b"", {"X-COINONE-SIGNATURE": "00"}),
            "no signature": await post(payload, {"X-COINONE-PAYLOAD": payload.decode()}),
        }
    assert {k: (st, r["result"], r["error_code"]) for k, (st, r) in codes.items()} == {
        "reused nonce": (401, "error", "131"), "bad signature": (401, "error", "123"),
        "unknown token": (401, "error", "12"), "nonce not UUID v4": (401, "error", "130"),
        "no payload": (401, "error", "120"), "no signature": (401, "error", "121"),
    }


async def test_failure_replies_map_to_the_taxonomy(sim: Simulator, coinone: Coinone) -> None:
    """The error-code page's codes through exbus's adapter: 103, 104, 312, 105, 306, 307, 12, 123."""
    book = await coinone.ok("orderbook", OrderBookQuery(symbol=SYMBOL, depth=5), None)
    bid = book.bids[-1].price
    await coinone.ok("place_order", limit("co-dup1", "buy", "0.01", bid))
    forged = Credentials(api_key=DEMO.api_key, secret=TAKER.secret)
    stranger = Credentials(api_key="sim-coinone-nobody", secret=DEMO.secret)
    cases = {
        "insufficient": (await coinone.call("place_order", limit("co-big1", "sell", "1000", bid)), InsufficientBalance, "103"),
        "unknown order": (await coinone.call("order_status", OrderStatusQuery(symbol=SYMBOL, client_order_id="co-none")),
                          OrderNotFound, "104"),
        "duplicate": (await coinone.call("place_order", limit("co-dup1", "buy", "0.01", bid)), DuplicateOrder, "312"),
        "tick": (await coinone.call("place_order", limit("co-tick1", "buy", "0.01", bid + 1)), InvalidOrder, "105"),
        "lot": (await coinone.call("place_order", limit("co-lot1", "buy", "0.00015", bid)), InvalidOrder, "306"),
        "notional": (await coinone.call("place_order", limit("co-min1", "buy", "0.0001", "1000")), InvalidOrder, "307"),
        "bad key": (await coinone.call("place_order", limit("co-key1", "buy", "0.01", bid), stranger), AuthError, "12"),
        "bad signature": (await coinone.call("place_order", limit("co-sig1", "buy", "0.01", bid), forged), AuthError, "123"),
        "unknown cancel": (await coinone.call("cancel_order", CancelOrder(
            command_id="c", venue="coinone", account="demo", symbol=SYMBOL, client_order_id="co-never")),
            OrderNotFound, "104"),
    }
    assert {k: (type(e), e.venue_code) for k, (e, _, _) in cases.items()} == {
        k: (cls, code) for k, (_, cls, code) in cases.items()}
    # user_order_id is used up even by a refused order (docs: "재사용 불가")
    again = await coinone.call("place_order", limit("co-tick1", "buy", "0.01", bid))
    assert isinstance(again, DuplicateOrder), again


async def test_a_malformed_request_gets_code_107(sim: Simulator) -> None:
    """A signed place-order without qty, and one that is not JSON: 107 / 132, never a 500."""
    url = sim.url("coinone") + "/v2.1/order"
    async with aiohttp.ClientSession() as s:
        payload, headers = signed(DEMO.secret, {"access_token": DEMO.api_key, "nonce": str(uuid.uuid4()), "side": "BUY",
                                                "quote_currency": "KRW", "target_currency": "BTC", "type": "LIMIT",
                                                "price": "58000000"})
        async with s.post(url, data=payload, headers=headers) as r:
            missing = (r.status, await r.json())
        garbage = base64.b64encode(b"{not json")
        headers = {"X-COINONE-PAYLOAD": garbage.decode(),
                   "X-COINONE-SIGNATURE": hmac.new(DEMO.secret.encode(), garbage, hashlib.sha512).hexdigest()}
        async with s.post(url, data=garbage, headers=headers) as r:
            corrupt = (r.status, await r.json())
    assert missing == (400, {"result": "error", "error_code": "107", "error_msg": "Parameter error"})
    assert (corrupt[0], corrupt[1]["error_code"]) == (400, "132")
    assert isinstance(rest_adapter("coinone").parse_response("place_order", *missing[:1], {},
                                                             json.dumps(missing[1]).encode()), InvalidOrder)


async def test_rate_limited_with_retry_after() -> None:
    """Private order APIs 40/s per portfolio (lowered to 2): error 4 "Blocked user access"
    -> RateLimited, retry after the one-second window; the remaining-quota header counts down."""
    clock = ManualClock(START_NS)
    async with Simulator({"replay": False, "venues": ["coinone"], "coinone": {"rate_limits": {"order": 2}}},
                         clock=clock) as sim, HttpTransport() as http:
        coinone = Coinone(sim, http)
        book = await coinone.ok("orderbook", OrderBookQuery(symbol=SYMBOL, depth=5), None)
        low = book.bids[-1].price
        request = coinone.rest.build_request("place_order", limit("co-rl1", "buy", "0.01", low), DEMO, clock.ms())
        first = await http.send(request, idempotent=False)
        assert first.headers["Private-Order-Ratelimit-Remaining"] == "1"
        await coinone.ok("place_order", limit("co-rl2", "buy", "0.01", low))
        limited = await coinone.call("place_order", limit("co-rl3", "buy", "0.01", low))
        clock.advance(1)
        after = await coinone.call("place_order", limit("co-rl4", "buy", "0.01", low))
    assert isinstance(limited, RateLimited) and (limited.venue_code, limited.status, limited.retry_after) == ("4", 429, 1.0)
    assert not isinstance(after, VenueError), after


async def test_public_limit_blocks_for_a_minute() -> None:
    """Docs intro: 300 public requests a minute (lowered to 2); over it, error 4 in the
    camelCase envelope the docs show, and no public request for one minute."""
    clock = ManualClock(START_NS)
    async with Simulator({"replay": False, "venues": ["coinone"], "coinone": {"rate_limits": {"public": 2}}},
                         clock=clock) as sim, HttpTransport() as http:
        coinone, query = Coinone(sim, http), TickerQuery(symbol=SYMBOL)
        first = [await coinone.call("ticker", query, None) for _ in range(3)]
        async with aiohttp.ClientSession() as s, s.get(sim.url("coinone") + "/public/v2/ticker_new/KRW/BTC") as r:
            body = (r.status, await r.json())
        clock.advance(59)  # a new minute window, still inside the block
        blocked = await coinone.call("ticker", query, None)
        clock.advance(2)
        after = await coinone.call("ticker", query, None)
    assert [type(t).__name__ for t in first] == ["Ticker", "Ticker", "RateLimited"]
    assert (first[2].venue_code, first[2].retry_after) == ("4", 60.0)
    assert body == (429, {"result": "error", "errorCode": "4", "errorMsg": "Blocked user access."})
    assert isinstance(blocked, RateLimited) and not isinstance(after, VenueError), (blocked, after)


def test_banned_and_maintenance_replies(sim: Simulator) -> None:
    """Refusals the core cannot produce on its own: a ban (error 4) and maintenance (405)."""
    dialect, rest = sim.dialects["coinone"], rest_adapter("coinone")
    replies = {kind: dialect.refuse(Refusal(kind, "", retry_after=60), None) for kind in ("banned", "maintenance")}  # type: ignore[arg-type]
    parsed = {k: rest.parse_response("balance", st, h, json.dumps(b).encode()) for k, (st, b, h) in replies.items()}
    assert {k: (type(e), e.venue_code) for k, e in parsed.items()} == {
        "banned": (RateLimited, "4"), "maintenance": (VenueUnavailable, "405")}


@pytest.mark.parametrize(("fault", "expected", "placed"), [
    ({"kind": "latency", "latency_ms": 20}, None, True),
    ({"kind": "error_5xx", "status": 500}, OutcomeUnknown, False),
    ({"kind": "error_5xx", "status": 503}, VenueUnavailable, False),
    ({"kind": "error_5xx", "status": 429, "retry_after_s": 3}, RateLimited, False),
    ({"kind": "timeout"}, OutcomeUnknown, True),
    ({"kind": "drop"}, OutcomeUnknown, True),
    ({"kind": "malformed"}, OutcomeUnknown, True),
])
async def test_faults_on_the_place_route(sim: Simulator, coinone: Coinone, fault: dict[str, Any],
                                         expected: type | None, placed: bool) -> None:
    """Each fault kind on POST /v2.1/order; where the order was taken, order-detail by
    user_order_id finds exactly that one order (the executor's reconciliation)."""
    book = await coinone.ok("orderbook", OrderBookQuery(symbol=SYMBOL, depth=5), None)
    sim.set_faults([{**fault, "venue": "coinone", "route": "place", "count": 1}])
    result = await coinone.call("place_order", limit("co-fault1", "buy", "0.01", book.bids[-1].price))
    sim.set_faults([])
    if expected is None:
        assert result.state == "open", result
    else:
        assert isinstance(result, expected), result
    if expected is RateLimited:
        assert result.retry_after == 3.0
    status = await coinone.call("order_status", OrderStatusQuery(symbol=SYMBOL, client_order_id="co-fault1"))
    if placed:
        assert status.state == "open", status
        assert [o["client_order_id"] for o in sim.ledger_snapshot()["orders"]] == ["co-fault1"]
    else:
        assert isinstance(status, OrderNotFound), status
