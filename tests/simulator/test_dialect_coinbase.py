"""The Coinbase Advanced Trade dialect of the simulator, driven through exbus's own adapter
(services.venues.coinbase.rest) and HttpTransport, plus one request signed by a JWT built
here from the docs with ``cryptography`` alone.

Sources: docs.cdp.coinbase.com Advanced Trade API reference (Create Order: ``success`` /
``error_response`` with ``new_order_failure_reason`` / ``preview_failure_reason``, a repeated
client_order_id returns the first order; Cancel Orders ``results[].failure_reason``; Get
Order; List Orders; List Fills; List Accounts; public market endpoints), "API key
authentication" (ES256 JWT, kid + nonce header, sub/iss/nbf/exp/uri claims, 120 s), "REST
API rate limits" (429), ccxt 4.5.90 coinbase error maps.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from decimal import Decimal
from typing import Any, AsyncIterator

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from schemas import CancelOrder, PlaceOrder
from schemas.queries import (
    BalanceQuery, OpenOrdersQuery, OrderBookQuery, OrderStatusQuery, TickerQuery, TradeHistoryQuery,
)
from schemas.vault import Credentials
from services.simulator import ManualClock, Simulator
from services.simulator.dialects.coinbase import CoinbaseDialect
from services.venues import rest_adapter
from services.venues.base import CancelAccepted, HttpRequest
from services.venues.errors import (
    AuthError, InsufficientBalance, InvalidOrder, OrderNotFound, OutcomeUnknown, RateLimited, VenueError,
)
from services.venues.http import HttpTransport

DEMO, TAKER = (Credentials(api_key=a.api_key, secret=a.secret) for a in CoinbaseDialect.DEFAULT_ACCOUNTS)
SYMBOL = "BTC-USD"


class Client:
    """exbus's Coinbase adapter over HttpTransport, against the simulator."""

    def __init__(self, url: str, http: HttpTransport) -> None:
        self.rest, self.http = rest_adapter("coinbase", url), http

    async def send(self, request: HttpRequest, op: str, args: Any) -> Any:
        try:
            response = await self.http.send(request, idempotent=op not in ("place_order", "cancel_order"))
        except VenueError as e:  # no answer: NetworkError, OutcomeUnknown
            return e
        return self.rest.parse_response(op, response.status, response.headers, response.body, args)

    async def call(self, op: str, args: Any, creds: Credentials | None = DEMO, now_ms: int | None = None) -> Any:
        creds = creds if self.rest.endpoints[op].signed else None
        request = self.rest.build_request(op, args, creds, now_ms or time.time_ns() // 1_000_000)
        return await self.send(request, op, args)

    async def ok(self, op: str, args: Any, creds: Credentials | None = DEMO) -> Any:
        result = await self.call(op, args, creds)
        assert not isinstance(result, VenueError), result
        return result


def order(cid: str, side: str, quantity: str, price: Decimal | None = None, account: str = "demo") -> PlaceOrder:
    return PlaceOrder(command_id=cid, venue="coinbase", account=account, symbol=SYMBOL, client_order_id=cid,  # type: ignore[arg-type]
                      side=side, order_type="limit" if price is not None else "market",  # type: ignore[arg-type]
                      quantity=Decimal(quantity), price=price)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator({"replay": False, "venues": ["coinbase"]}) as s:
        yield s


@pytest.fixture
async def cb(sim: Simulator) -> AsyncIterator[Client]:
    async with HttpTransport(timeout_s=2.0) as http:
        yield Client(sim.url("coinbase"), http)


def core(sim: Simulator) -> Any:
    return sim.dialects["coinbase"].core


async def test_market_data_round_trip(sim: Simulator, cb: Client) -> None:
    """Public market/products, market/product_book, market/products/{id}/ticker."""
    rules = (await cb.ok("instruments", None))[SYMBOL]
    assert (rules.tick_size, rules.lot_size, rules.min_notional) == (Decimal("0.01"), Decimal("0.00000001"), Decimal("1"))
    book = await cb.ok("orderbook", OrderBookQuery(symbol=SYMBOL, depth=5))
    assert book.bids[0].price == core(sim).best(SYMBOL, "buy")[0] and len(book.asks) == 5
    ticker = await cb.ok("ticker", TickerQuery(symbol=SYMBOL))
    assert (ticker.bid, ticker.ask, ticker.last) == (book.bids[0].price, book.asks[0].price, None)  # no trade yet


async def test_resting_order_fills_is_found_and_cancelled(sim: Simulator, cb: Client) -> None:
    """place -> status (by order id and, as after a lost reply, by client order id) -> fills ->
    open orders, fills, accounts read back the core -> cancel -> a second cancel is refused."""
    top = (await cb.ok("orderbook", OrderBookQuery(symbol=SYMBOL, depth=5))).bids[0]
    bid, bid_size = top.price, top.size  # the recorded bid: ahead of ours in the queue at that price
    placed = await cb.ok("place_order", order("cb-rest-1", "buy", "0.01", bid))
    assert placed.state == "open" and placed.venue_order_id
    await cb.ok("place_order", order("cb-take-1", "sell", str(bid_size + Decimal("0.004")), account="taker"), TAKER)
    by_id = await cb.ok("order_status", OrderStatusQuery(symbol=SYMBOL, client_order_id="cb-rest-1",
                                                         venue_order_id=placed.venue_order_id))
    by_cid = await cb.ok("order_status", OrderStatusQuery(symbol=SYMBOL, client_order_id="cb-rest-1"))
    assert by_id == by_cid
    assert (by_id.state, by_id.filled_quantity, by_id.average_price) == ("partially_filled", Decimal("0.004"), bid)
    (open_order,) = await cb.ok("open_orders", OpenOrdersQuery(symbol=SYMBOL))
    assert open_order.venue_order_id == placed.venue_order_id
    (fill,) = await cb.ok("trade_history", TradeHistoryQuery(symbol=SYMBOL))
    assert (fill.price, fill.quantity, fill.liquidity, fill.fee) == (bid, Decimal("0.004"), "maker", bid * Decimal("0.004") * Decimal("0.006"))
    wallet = core(sim).wallet(core(sim).by_name["demo"])
    balances = {b.asset: (b.free, b.locked) for b in await cb.ok("balance", BalanceQuery())}
    assert balances == {a: (wallet.available(a), wallet.locked.get(a, Decimal(0))) for a in wallet.assets()}
    assert balances["USD"][1] > 0  # the rest of the bid is held

    cancel = CancelOrder(command_id="x", venue="coinbase", account="demo", symbol=SYMBOL, client_order_id="cb-rest-1",
                         venue_order_id=placed.venue_order_id)
    assert await cb.ok("cancel_order", cancel) == CancelAccepted(client_order_id="cb-rest-1", venue_order_id=placed.venue_order_id)
    again = await cb.call("cancel_order", cancel)
    assert isinstance(again, InvalidOrder) and again.venue_code == "DUPLICATE_CANCEL_REQUEST"
    final = await cb.ok("order_status", OrderStatusQuery(symbol=SYMBOL, client_order_id="cb-rest-1",
                                                         venue_order_id=placed.venue_order_id))
    assert (final.state, final.filled_quantity) == ("canceled", Decimal("0.004"))


async def test_a_repeated_client_order_id_returns_the_first_order(sim: Simulator, cb: Client) -> None:
    """Create Order: "If the ID provided is not unique ... the order corresponding with that ID
    will be returned instead" (CLIENT_IDS return_original)."""
    low = (await cb.ok("orderbook", OrderBookQuery(symbol=SYMBOL, depth=5))).bids[-1].price
    first = await cb.ok("place_order", order("cb-dup-1", "buy", "0.01", low))
    second = await cb.ok("place_order", order("cb-dup-1", "buy", "0.02", low))
    assert second.venue_order_id == first.venue_order_id
    assert [o["client_order_id"] for o in sim.ledger_snapshot()["orders"]] == ["cb-dup-1"]


async def test_refusals_map_to_the_taxonomy(sim: Simulator, cb: Client) -> None:
    """INSUFFICIENT_FUND, price/size precision, quote size too small, post-only crossing (Create
    Order failure reasons, HTTP 200); Get Order 404 NOT_FOUND; Cancel UNKNOWN_CANCEL_ORDER; 401s."""
    book = await cb.ok("orderbook", OrderBookQuery(symbol=SYMBOL, depth=5))
    low, ask = book.bids[-1].price, book.asks[0].price
    cases = [
        (order("cb-f-1", "sell", "1000", low), InsufficientBalance, "INSUFFICIENT_FUND"),
        (order("cb-f-2", "buy", "0.01", low + Decimal("0.005")), InvalidOrder, "INVALID_PRICE_PRECISION"),
        (order("cb-f-3", "buy", "0.000000001", low), InvalidOrder, "INVALID_SIZE_PRECISION"),
        (order("cb-f-4", "buy", "0.00001", low), InvalidOrder, "UNKNOWN_FAILURE_REASON"),  # ~0.2 USD < quote_min_size 1
        (PlaceOrder(**{**{f: getattr(order("cb-f-5", "buy", "0.01", ask), f) for f in PlaceOrder.__struct_fields__},
                       "post_only": True}), InvalidOrder, "INVALID_LIMIT_PRICE_POST_ONLY"),  # would take the ask
    ]
    for command, error, code in cases:
        result = await cb.call("place_order", command)
        assert type(result) is error and result.venue_code == code and result.status == 200, (command.client_order_id, result)
    unknown = OrderStatusQuery(symbol=SYMBOL, client_order_id="cb-none", venue_order_id="00000000-0000-0000-0000-000000000000")
    assert isinstance(await cb.call("order_status", unknown), OrderNotFound)
    assert isinstance(await cb.call("order_status", OrderStatusQuery(symbol=SYMBOL, client_order_id="cb-none")), OrderNotFound)
    cancel = CancelOrder(command_id="x", venue="coinbase", account="demo", symbol=SYMBOL, client_order_id="cb-none",
                         venue_order_id="00000000-0000-0000-0000-000000000000")
    gone = await cb.call("cancel_order", cancel)
    assert isinstance(gone, OrderNotFound) and gone.venue_code == "UNKNOWN_CANCEL_ORDER"
    never = CancelOrder(command_id="y", venue="coinbase", account="demo", symbol=SYMBOL, client_order_id="cb-none")
    assert isinstance(await cb.call("cancel_order", never), OrderNotFound)  # looked up by client order id: not there

    forged = Credentials(api_key=DEMO.api_key, secret=TAKER.secret)  # demo's key name, another key's signature
    stranger = Credentials(api_key=DEMO.api_key + "-unknown", secret=DEMO.secret)
    now_ms = time.time_ns() // 1_000_000
    for creds, at in ((forged, None), (stranger, None), (DEMO, now_ms - 180_000), (DEMO, now_ms + 60_000)):  # expired, not yet valid
        refused = await cb.call("balance", BalanceQuery(), creds, at)
        assert isinstance(refused, AuthError) and refused.status == 401, refused
    assert sim.ledger_snapshot()["orders"] == []


async def test_a_malformed_create_is_the_venue_s_400_not_a_traceback(cb: Client) -> None:
    """A body that is not JSON, or lacks client_order_id: 400 INVALID_ARGUMENT (ccxt's map)."""
    good = cb.rest.build_request("place_order", order("cb-m-1", "buy", "0.01", Decimal("100")), DEMO, time.time_ns() // 1_000_000)
    for body in (b"{not json", json.dumps({"product_id": SYMBOL, "side": "BUY", "order_configuration": {}}).encode(),
                 json.dumps({"client_order_id": "m", "product_id": SYMBOL, "side": "BUY",
                             "order_configuration": {"limit_limit_gtc": {"base_size": "x", "limit_price": "1"}}}).encode()):
        response = await cb.http.send(HttpRequest(good.method, good.url, good.headers, body), idempotent=False)
        assert (response.status, json.loads(response.body)["error"]) == (400, "INVALID_ARGUMENT"), response.body


async def test_over_the_private_limit_is_a_429() -> None:
    """REST API rate limits: private endpoints per user, 429 over it; Coinbase documents no
    Retry-After, so retry_after is unknown (None) unless a 429 carries one (injected fault)."""
    limits = {"private": 2, "public": 1}
    clock = ManualClock(time.time_ns())  # windows move only when the test says so
    async with Simulator({"replay": False, "venues": ["coinbase"], "coinbase": {"rate_limits": limits}}, clock=clock) as sim, \
            HttpTransport() as http:
        cb = Client(sim.url("coinbase"), http)
        results = [await cb.call("balance", BalanceQuery(), now_ms=clock.ms()) for _ in range(3)]
        books = [await cb.call("orderbook", OrderBookQuery(symbol=SYMBOL, depth=1)) for _ in range(2)]
        clock.advance(1.0)
        later = await cb.call("balance", BalanceQuery(), now_ms=clock.ms())
    assert not isinstance(books[0], VenueError) and isinstance(books[1], RateLimited)  # public: per IP
    assert not isinstance(later, VenueError), "the next one-second window admits requests again"
    assert not isinstance(results[0], VenueError) and not isinstance(results[1], VenueError)
    assert sim.ledger_snapshot()["limits_exceeded"], "the simulator counted the refused request"
    assert isinstance(results[2], RateLimited) and results[2].status == 429 and results[2].retry_after is None


async def test_an_injected_429_carries_its_retry_after(sim: Simulator, cb: Client) -> None:
    """The fault's 429 uses server_error(429), the venue's rate-limit body."""
    sim.set_faults([{"kind": "error_5xx", "status": 429, "retry_after_s": 1, "venue": "coinbase", "route": "place"}])
    limited = await cb.call("place_order", order("cb-429", "buy", "0.01", Decimal("100")))
    assert isinstance(limited, RateLimited) and limited.retry_after == 1.0


@pytest.mark.parametrize(("fault", "placed"), [
    ({"kind": "error_5xx", "status": 503}, False),
    ({"kind": "error_5xx", "status": 500, "when": "after"}, True),
    ({"kind": "timeout"}, True),
    ({"kind": "drop"}, True),
    ({"kind": "malformed"}, True),
])
async def test_faults_on_place_are_outcome_unknown_and_reconcile(sim: Simulator, cb: Client, fault: dict, placed: bool) -> None:
    """Each fault kind on the place route: the create's outcome is unknown to exbus; order status
    by client order id (List Orders) then tells whether the venue has exactly one order."""
    low = core(sim).levels(SYMBOL, "buy")[-1][0]
    sim.set_faults([fault | {"venue": "coinbase", "route": "place", "count": 1}])
    result = await cb.call("place_order", order("cb-fault", "buy", "0.01", low))
    assert isinstance(result, OutcomeUnknown), result
    if fault["kind"] == "timeout":
        await asyncio.wait_for(sim.ledger.orders_at_least(1), 5)
    found = await cb.call("order_status", OrderStatusQuery(symbol=SYMBOL, client_order_id="cb-fault"))
    if placed:
        assert found.state == "open" and found.client_order_id == "cb-fault", found
    else:
        assert isinstance(found, OrderNotFound), found
    assert len(sim.ledger_snapshot()["orders"]) == int(placed)


async def test_latency_fault_delays_but_places(sim: Simulator, cb: Client) -> None:
    """A slow venue (latency fault on the place route) still answers the create."""
    sim.set_faults([{"kind": "latency", "latency_ms": 50, "venue": "coinbase", "route": "place"}])
    placed = await cb.ok("place_order", order("cb-slow", "buy", "0.01", core(sim).levels(SYMBOL, "buy")[-1][0]))
    assert placed.state == "open" and sim.faults.describe()[0]["fired"] == 1


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def docs_jwt(key_name: str, pem: str, method: str, path: str, now: int) -> str:
    """The Advanced Trade JWT from the authentication docs, by hand: ES256 over
    base64url(header).base64url(claims), the signature as raw r || s (RFC 7518 3.4)."""
    header = {"alg": "ES256", "kid": key_name, "nonce": "0123456789abcdef", "typ": "JWT"}
    claims = {"sub": key_name, "iss": "cdp", "nbf": now, "exp": now + 120, "uri": f"{method} api.coinbase.com{path}"}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))  # type: ignore[union-attr, call-arg]
    return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


async def test_a_request_signed_from_the_docs_is_accepted_and_the_uri_is_checked(sim: Simulator, cb: Client) -> None:
    """The uri claim is METHOD + host + path without the query; another path is a 401."""
    path = "/api/v3/brokerage/accounts"
    url = f"{sim.url('coinbase')}{path}?limit=250"
    replies = {}
    for signed_path in (path, "/api/v3/brokerage/orders/historical/batch"):
        token = docs_jwt(DEMO.api_key, DEMO.secret, "GET", signed_path, int(time.time()))
        replies[signed_path] = await cb.http.send(HttpRequest("GET", url, {"Authorization": f"Bearer {token}"}), idempotent=True)
    accepted, wrong_uri = replies.values()
    assert accepted.status == 200 and {a["currency"] for a in json.loads(accepted.body)["accounts"]} == {"USD", "USDC", "BTC", "ETH"}
    assert (wrong_uri.status, json.loads(wrong_uri.body)) == (401, "Unauthorized")
