"""The Kraken dialect of the simulator, driven through exbus's own Kraken adapter and
HTTP transport (and once through a signer written here from the docs).

Sources named per test: docs.kraken.com "Spot REST Authentication" (auth), the REST
reference pages of each endpoint, "Spot Client Order Identifiers" (cl_ord_id), "Spot REST
rate limits" and "Error messages"; ccxt 4.5.90 ``kraken.py`` (error map).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import time
from decimal import Decimal
from typing import Any, AsyncIterator
from urllib.parse import urlencode

import aiohttp
import pytest

from schemas import CancelOrder, PlaceOrder
from schemas.queries import BalanceQuery, OpenOrdersQuery, OrderBookQuery, OrderStatusQuery, TickerQuery, TradeHistoryQuery
from schemas.vault import Credentials
from services.simulator.dialects.kraken import KrakenDialect
from services.simulator.server import Simulator
from services.venues import rest_adapter
from services.venues.base import CancelAccepted, FollowUp, HttpRequest
from services.venues.errors import (
    AuthError, DuplicateOrder, InsufficientBalance, InvalidOrder, OrderNotFound, OutcomeUnknown, RateLimited,
    VenueError, VenueUnavailable,
)
from services.venues.http import HttpTransport

DEMO, TAKER = (Credentials(api_key=a.api_key, secret=a.secret) for a in KrakenDialect.DEFAULT_ACCOUNTS)
SYMBOL = "XMR-USD"  # XXMRZUSD: pair_decimals 2, ordermin 0.05 (recorded AssetPairs, KRAKEN.0)
NONCES = itertools.count(time.time_ns() // 1000)
"""One strictly increasing nonce sequence for every key of the test run."""


class Kraken:
    """exbus's Kraken adapter against the simulator, one call per operation."""

    def __init__(self, sim: Simulator, http: HttpTransport) -> None:
        self.sim, self.http = sim, http
        self.rest = rest_adapter("kraken", sim.url("kraken"))
        self.core = sim.dialects["kraken"].core

    async def answer(self, op: str, args: Any, creds: Credentials | None = DEMO) -> Any:
        """The parsed answer to one request: a result, a VenueError or a FollowUp."""
        signed = self.rest.endpoints[op].signed
        request = self.rest.build_request(op, args, creds if signed else None, time.time_ns() // 1_000_000,
                                          next(NONCES) if signed else None)
        return await self.send(op, request, args)

    async def call(self, op: str, args: Any, creds: Credentials | None = DEMO) -> Any:
        """The result or the VenueError, following FollowUps as the executor's gateway does."""
        result = await self.answer(op, args, creds)
        while isinstance(result, FollowUp):
            result = await self.answer(result.op, result.args, creds)
        return result

    async def send(self, op: str, request: HttpRequest, args: Any) -> Any:
        try:
            response = await self.http.send(request, idempotent=op not in ("place_order", "cancel_order"))
        except VenueError as e:
            return e
        return self.rest.parse_response(op, response.status, response.headers, response.body, args)

    async def ok(self, op: str, args: Any, creds: Credentials | None = DEMO) -> Any:
        result = await self.call(op, args, creds)
        assert not isinstance(result, VenueError), result
        return result

    async def top_bid(self) -> Decimal:
        return (await self.ok("orderbook", OrderBookQuery(symbol=SYMBOL, depth=5))).bids[0].price


def buy(cid: str, quantity: str, price: Decimal, symbol: str = SYMBOL) -> PlaceOrder:
    return PlaceOrder(command_id=cid, venue="kraken", account="demo", symbol=symbol, client_order_id=cid,
                      side="buy", order_type="limit", quantity=Decimal(quantity), price=price)


def sell_at_market(cid: str, quantity: str) -> PlaceOrder:
    return PlaceOrder(command_id=cid, venue="kraken", account="taker", symbol=SYMBOL, client_order_id=cid,
                      side="sell", order_type="market", quantity=Decimal(quantity))


@pytest.fixture
async def kraken() -> AsyncIterator[Kraken]:
    async with Simulator({"replay": False, "venues": ["kraken"]}) as sim, HttpTransport(timeout_s=3) as http:
        yield Kraken(sim, http)


async def test_market_data_round_trip(kraken: Kraken) -> None:
    """Ticker, Depth and AssetPairs (docs: Get Ticker Information, Get Order Book, Get
    Tradable Asset Pairs): what the core's book and market rules hold."""
    spec = kraken.core.markets[SYMBOL]
    rules = await kraken.ok("instruments", None)
    assert set(rules) == set(kraken.core.markets)
    xmr = rules[SYMBOL]
    assert (xmr.venue_symbol, xmr.tick_size, xmr.lot_size, xmr.min_quantity) == ("XMRUSD", spec.tick, spec.lot, spec.min_quantity)
    book = await kraken.ok("orderbook", OrderBookQuery(symbol=SYMBOL, depth=3))
    assert [(lv.price, lv.size) for lv in book.bids] == kraken.core.levels(SYMBOL, "buy", 3)
    assert book.asks[0].price == kraken.core.best(SYMBOL, "sell")[0]
    ticker = await kraken.ok("ticker", TickerQuery(symbol=SYMBOL))
    assert (ticker.bid, ticker.ask) == (book.bids[0].price, book.asks[0].price)


async def test_place_fill_status_cancel(kraken: Kraken) -> None:
    """AddOrder -> QueryOrders by txid and OpenOrders by cl_ord_id -> a taker's market sell
    fills part -> CancelOrder by cl_ord_id (docs: Add Order, Query Orders Info, Get Open
    Orders, Cancel Order; "Spot Client Order Identifiers")."""
    price = await kraken.top_bid() + Decimal("0.01")
    placed = await kraken.ok("place_order", buy("kr-1", "0.2", price))
    assert placed.state == "open" and placed.venue_order_id in kraken.core.orders
    by_cid = await kraken.ok("order_status", OrderStatusQuery(symbol=SYMBOL, client_order_id="kr-1"))
    assert (by_cid.venue_order_id, by_cid.state, by_cid.price) == (placed.venue_order_id, "open", price)
    await kraken.ok("place_order", sell_at_market("taker-1", "0.05"), TAKER)
    by_id = OrderStatusQuery(symbol=SYMBOL, client_order_id="kr-1", venue_order_id=placed.venue_order_id)
    info = await kraken.ok("order_status", by_id)
    assert (info.state, info.filled_quantity, info.average_price) == ("partially_filled", Decimal("0.05"), price)
    assert [o.client_order_id for o in await kraken.ok("open_orders", OpenOrdersQuery(symbol=SYMBOL))] == ["kr-1"]
    cancel = CancelOrder(command_id="x1", venue="kraken", account="demo", symbol=SYMBOL, client_order_id="kr-1")
    assert await kraken.ok("cancel_order", cancel) == CancelAccepted(client_order_id="kr-1")
    final = await kraken.ok("order_status", by_id)
    assert (final.state, final.filled_quantity) == ("canceled", Decimal("0.05"))
    assert await kraken.ok("open_orders", OpenOrdersQuery(symbol=SYMBOL)) == []
    assert isinstance(await kraken.call("cancel_order", cancel), OrderNotFound)  # no longer open


async def test_status_by_client_id_finds_a_closed_order_and_only_then_says_not_found(kraken: Kraken) -> None:
    """A lost AddOrder reply leaves exbus with the cl_ord_id only: OpenOrders, then
    ClosedOrders with the cl_ord_id filter (docs: Get Open Orders, Get Closed Orders)."""
    ask = kraken.core.best(SYMBOL, "sell")[0]
    await kraken.ok("place_order", buy("kr-filled", "0.1", ask))  # crosses: filled at once
    q = OrderStatusQuery(symbol=SYMBOL, client_order_id="kr-filled")
    assert await kraken.answer("order_status", q) == FollowUp("closed_orders", q)  # not open ...
    found = await kraken.ok("order_status", q)  # ... so the closed orders are asked next
    assert (found.state, found.filled_quantity, found.client_order_id) == ("filled", Decimal("0.1"), "kr-filled")
    never = OrderStatusQuery(symbol=SYMBOL, client_order_id="kr-never")
    assert isinstance(await kraken.answer("order_status", never), FollowUp)
    assert isinstance(await kraken.answer("closed_orders", never), OrderNotFound)
    assert isinstance(await kraken.call("order_status", never), OrderNotFound)


async def test_post_only_order_that_would_take_is_accepted_then_canceled(kraken: Kraken) -> None:
    """oflags=post (docs: Add Order): Kraken's engine cancels a post-only order that would
    match instead of refusing the request."""
    ask = kraken.core.best(SYMBOL, "sell")[0]
    order = PlaceOrder(**{**{f: getattr(buy("kr-post", "0.1", ask), f) for f in PlaceOrder.__struct_fields__},
                          "post_only": True})
    placed = await kraken.ok("place_order", order)
    info = await kraken.ok("order_status", OrderStatusQuery(symbol=SYMBOL, client_order_id="kr-post",
                                                            venue_order_id=placed.venue_order_id))
    assert (info.state, info.filled_quantity) == ("canceled", Decimal(0))


async def test_long_client_order_ids_travel_as_uuid5(kraken: Kraken) -> None:
    """cl_ord_id is a UUID or free text of at most 18 characters ("Spot Client Order
    Identifiers"); exbus's 36-character ids are sent as their UUID5 and read back."""
    cid = "a-very-long-exbus-client-order-id-01"
    placed = await kraken.ok("place_order", buy(cid, "0.1", await kraken.top_bid()))
    order = kraken.core.orders[placed.venue_order_id]
    assert order.client_order_id != cid and len(order.client_order_id) == 36
    info = await kraken.ok("order_status", OrderStatusQuery(symbol=SYMBOL, client_order_id=cid))
    assert info.client_order_id == cid and info.venue_order_id == placed.venue_order_id


async def test_balance_and_trade_history_read_the_core(kraken: Kraken) -> None:
    """BalanceEx (balance, hold_trade) and TradesHistory (docs: Get Extended Balance, Get
    Trades History) against the core's wallet and fills."""
    price = await kraken.top_bid() + Decimal("0.01")
    placed = await kraken.ok("place_order", buy("kr-b", "0.2", price))
    await kraken.ok("place_order", sell_at_market("taker-b", "0.05"), TAKER)
    wallet = kraken.core.wallet(kraken.core.by_name["demo"])
    balances = {b.asset: b for b in await kraken.ok("balance", BalanceQuery())}
    for asset in ("USD", "XMR", "BTC", "CHF"):
        assert (balances[asset].free, balances[asset].locked) == (wallet.available(asset), wallet.locked.get(asset, Decimal(0)))
    assert balances["USD"].locked > 0
    fills = await kraken.ok("trade_history", TradeHistoryQuery(symbol=SYMBOL))
    (order, fill), = kraken.core.fills(kraken.core.by_name["demo"])
    assert [(f.venue_order_id, f.price, f.quantity, f.fee, f.liquidity) for f in fills] == [
        (placed.venue_order_id, fill.price, fill.quantity, fill.fee, "maker")]


@pytest.mark.parametrize(("order", "error", "code"), [
    (buy("kr-poor", "100000", Decimal("353.00")), InsufficientBalance, "EOrder:Insufficient funds"),
    (buy("kr-tick", "0.1", Decimal("353.001")), InvalidOrder, "EOrder:Invalid price:XMRUSD price can only be specified up to 2 decimals."),
    (buy("kr-lot", "0.123456789", Decimal("353.00")), InvalidOrder, "EGeneral:Invalid arguments:volume"),
    (buy("kr-min", "0.01", Decimal("353.00")), InvalidOrder, "EOrder:Order minimum not met"),
    (buy("kr-pair", "1", Decimal("1"), symbol="DOGE-USD"), InvalidOrder, "EQuery:Unknown asset pair"),
])
async def test_order_refusals(kraken: Kraken, order: PlaceOrder, error: type, code: str) -> None:
    """AddOrder refusals, strings from docs "Error messages" and ccxt's kraken error map."""
    result = await kraken.call("place_order", order)
    assert type(result) is error and result.venue_code == code, result
    assert not kraken.core.orders


async def test_duplicate_open_client_order_id_is_refused_then_reusable(kraken: Kraken) -> None:
    """cl_ord_id is unique among open orders only ("Spot Client Order Identifiers")."""
    bid = await kraken.top_bid()
    first = await kraken.ok("place_order", buy("kr-dup", "0.1", bid))
    assert isinstance(await kraken.call("place_order", buy("kr-dup", "0.1", bid)), DuplicateOrder)
    await kraken.ok("cancel_order", CancelOrder(command_id="c", venue="kraken", account="demo", symbol=SYMBOL,
                                                client_order_id="kr-dup"))
    second = await kraken.ok("place_order", buy("kr-dup", "0.1", bid))
    assert second.venue_order_id != first.venue_order_id


async def test_authentication_failures(kraken: Kraken) -> None:
    """EAPI:Invalid key, EAPI:Invalid signature, EAPI:Invalid nonce ("Spot REST Authentication")."""
    stranger = Credentials(api_key="no-such-key", secret=DEMO.secret)
    wrong_secret = Credentials(api_key=DEMO.api_key, secret=base64.b64encode(b"x" * 64).decode())
    for creds, code in ((stranger, "EAPI:Invalid key"), (wrong_secret, "EAPI:Invalid signature")):
        err = await kraken.call("balance", BalanceQuery(), creds)
        assert isinstance(err, AuthError) and err.venue_code == code
    nonce = next(NONCES)
    request = kraken.rest.build_request("balance", BalanceQuery(), DEMO, 0, nonce)
    assert not isinstance(await kraken.send("balance", request, BalanceQuery()), VenueError)
    replayed = await kraken.send("balance", request, BalanceQuery())
    assert isinstance(replayed, AuthError) and replayed.venue_code == "EAPI:Invalid nonce"
    older = kraken.rest.build_request("balance", BalanceQuery(), DEMO, 0, nonce - 1)
    assert isinstance(await kraken.send("balance", older, BalanceQuery()), AuthError)


def doc_sign(secret_b64: str, path: str, body: str, nonce: str) -> str:
    """API-Sign as docs.kraken.com "Spot REST Authentication" spells it, written here."""
    message = path.encode() + hashlib.sha256((nonce + body).encode()).digest()
    return base64.b64encode(hmac.new(base64.b64decode(secret_b64), message, hashlib.sha512).digest()).decode()


async def test_a_request_signed_by_the_documented_scheme(kraken: Kraken) -> None:
    """The docs' example vector, then a Balance call signed by :func:`doc_sign`; the same
    signature on another path is refused (the URI path is signed)."""
    assert doc_sign("kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==",
                    "/0/private/AddOrder", "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25",
                    "1616492376594") == "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
    async with aiohttp.ClientSession() as http:
        async def post(path: str, signed_path: str) -> Any:
            nonce = str(next(NONCES))
            body = urlencode({"nonce": nonce})
            headers = {"API-Key": DEMO.api_key, "API-Sign": doc_sign(DEMO.secret, signed_path, body, nonce),
                       "Content-Type": "application/x-www-form-urlencoded"}
            async with http.post(kraken.sim.url("kraken") + path, data=body, headers=headers) as r:
                assert r.status == 200
                return await r.json()
        ok = await post("/0/private/Balance", "/0/private/Balance")
        assert ok["error"] == [] and ok["result"]["ZUSD"] == "10000000" and ok["result"]["XXBT"] == "100"
        assert await post("/0/private/Balance", "/0/private/BalanceEx") == {"error": ["EAPI:Invalid signature"], "result": {}}


async def test_malformed_requests_get_invalid_arguments(kraken: Kraken) -> None:
    """A missing volume or txid is EGeneral:Invalid arguments (docs "Error messages"), not a 500."""
    for path, params in (("/0/private/AddOrder", [("pair", "XMRUSD"), ("type", "buy"), ("ordertype", "limit")]),
                         ("/0/private/QueryOrders", []), ("/0/private/CancelOrder", [])):
        request = kraken.rest.sign("POST", path, params, DEMO, 0, next(NONCES))
        response = await kraken.http.send(request, idempotent=True)
        body = response.body.decode()
        assert response.status == 200 and body.startswith('{"error":["EGeneral:Invalid arguments'), body


async def test_rate_limits_and_lockout() -> None:
    """The REST counter (EAPI:Rate limit exceeded), the trading limit (EOrder:Rate limit
    exceeded) and the lockout of a client that keeps going (EGeneral:Temporary lockout);
    docs "Spot REST rate limits", ccxt's error map. Kraken sends no Retry-After: the
    adapter waits until the Starter counter has drained (45 s)."""
    config = {"replay": False, "venues": ["kraken"], "kraken": {"rate_limits": {"counter": 2, "trading": 1}}}
    async with Simulator(config) as sim, HttpTransport(timeout_s=3) as http:
        kraken = Kraken(sim, http)
        await kraken.ok("balance", BalanceQuery())
        await kraken.ok("balance", BalanceQuery())
        limited = await kraken.call("balance", BalanceQuery())
        assert isinstance(limited, RateLimited) and limited.venue_code == "EAPI:Rate limit exceeded"
        assert limited.retry_after == 45.0 and not limited.banned
        await kraken.ok("place_order", buy("kr-r1", "0.1", await kraken.top_bid()))
        order_limited = await kraken.call("place_order", buy("kr-r2", "0.1", await kraken.top_bid()))
        assert isinstance(order_limited, RateLimited) and order_limited.retry_after == 60.0
        errors = [await kraken.call("balance", BalanceQuery()) for _ in range(4)]
        assert errors[-1].venue_code == "EGeneral:Temporary lockout" and errors[-1].banned


async def test_faults_on_the_place_route(kraken: Kraken) -> None:
    """Each fault kind on AddOrder. An HTTP 5xx, dropped or truncated answer to AddOrder
    leaves the outcome unknown (Kraken orders can land behind a 502: krakenex PSA); the
    order, when processed, is then found by its cl_ord_id. A 429 keeps its Retry-After."""
    bid = await kraken.top_bid()
    cases = [
        ({"kind": "error_5xx", "status": 503}, OutcomeUnknown, False),
        ({"kind": "error_5xx", "status": 500, "when": "after"}, OutcomeUnknown, True),
        ({"kind": "drop"}, OutcomeUnknown, True),
        ({"kind": "malformed"}, OutcomeUnknown, True),
        ({"kind": "timeout"}, OutcomeUnknown, True),
        ({"kind": "latency", "latency_ms": 50}, None, True),
    ]
    for n, (fault, error, placed) in enumerate(cases):
        cid = f"kr-fault-{n}"
        kraken.sim.set_faults([{"venue": "kraken", "route": "place", "count": 1, **fault}])
        result = await kraken.call("place_order", buy(cid, "0.1", bid))
        assert (type(result) if error else None) is error, (fault, result)
        status = await kraken.call("order_status", OrderStatusQuery(symbol=SYMBOL, client_order_id=cid))
        if placed:
            assert status.state == "open" and status.client_order_id == cid, (fault, status)
        else:
            assert isinstance(status, OrderNotFound)  # not open, then not closed either
    kraken.sim.set_faults([{"venue": "kraken", "route": "place", "count": 1, "kind": "error_5xx", "status": 429,
                            "retry_after_s": 7}])
    limited = await kraken.call("place_order", buy("kr-429", "0.1", bid))
    assert isinstance(limited, RateLimited) and limited.retry_after == 7.0
    kraken.sim.set_faults([{"venue": "kraken", "route": "*", "count": 1, "kind": "error_5xx", "status": 503}])
    assert isinstance(await kraken.call("balance", BalanceQuery()), VenueUnavailable)
