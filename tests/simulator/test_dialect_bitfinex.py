"""The simulator's Bitfinex v2 dialect, driven through exbus's own adapter and transport,
plus one request signed here from the docs.

Sources: docs.bitfinex.com "REST Auth" (bfx-signature = hex HMAC-SHA384(secret, "/api/" +
path + nonce + body), increasing nonce), "Submit Order", "Cancel Order", "Retrieve
Orders" (active only), "Orders History" (closed only), "Wallets", "Trades", "Ticker",
"Book", "Abbreviation Glossary" (10020 params, 10100 auth, 10114 nonce), "Price Precision"
(5 significant digits, truncated), "Requirements and Limitations" (per-endpoint IP limits,
60 s block); ccxt bitfinex ``exceptions`` and ``handle_errors`` for the refusal texts.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from decimal import Decimal
from typing import Any, AsyncIterator

import aiohttp
import pytest

from schemas import CancelOrder, PlaceOrder
from schemas.queries import (
    BalanceQuery, OpenOrdersQuery, OrderBookQuery, OrderInfo, OrderStatusQuery, TickerQuery, TradeHistoryQuery,
)
from schemas.vault import Credentials
from services.simulator import Simulator
from services.simulator.core import Refusal
from services.simulator.dialects.bitfinex import DIALECT
from services.venues import rest_adapter
from services.venues.base import CancelAccepted, FollowUp
from services.venues.bitfinex.rest import venue_cid
from services.venues.errors import (
    AuthError, InsufficientBalance, InvalidOrder, OrderNotFound, OutcomeUnknown, RateLimited, VenueError,
    VenueUnavailable,
)
from services.venues.http import HttpTransport

SYMBOL, PAIR = "TESTBTC-TESTUSD", "tTESTBTC:TESTUSD"
DEMO, TAKER = (Credentials(api_key=a.api_key, secret=a.secret) for a in DIALECT.DEFAULT_ACCOUNTS)


class Client:
    """One account's calls through exbus's Bitfinex adapter and HttpTransport, with its own
    strictly increasing nonce (as the executor's shared sequence hands them out)."""

    def __init__(self, sim: Simulator, http: HttpTransport, creds: Credentials) -> None:
        self.sim, self.http, self.creds = sim, http, creds
        self.rest = rest_adapter("bitfinex", sim.url("bitfinex"))
        self.nonces = itertools.count(time.time_ns() // 1000)

    async def answer(self, op: str, args: Any) -> Any:
        """The parsed answer to one request: a result, a VenueError or a FollowUp."""
        request = self.rest.build_request(op, args, self.creds, time.time_ns() // 1_000_000, next(self.nonces))
        response = await self.http.send(request, idempotent=op not in ("place_order", "cancel_order"))
        return self.rest.parse_response(op, response.status, response.headers, response.body, args)

    async def call(self, op: str, args: Any) -> Any:
        """The result or the VenueError, following FollowUps as the executor's gateway does."""
        result = await self.answer(op, args)
        while isinstance(result, FollowUp):
            result = await self.answer(result.op, result.args)
        return result

    async def ok(self, op: str, args: Any) -> Any:
        result = await self.call(op, args)
        assert not isinstance(result, VenueError), result
        return result


def order(cid: str, side: str, quantity: str, price: Decimal | str | None = None, account: str = "demo",
          **kw: Any) -> PlaceOrder:
    return PlaceOrder(command_id=cid, venue="bitfinex", account=account, symbol=kw.pop("symbol", SYMBOL),  # type: ignore[arg-type]
                      client_order_id=cid, side=side, order_type="limit" if price is not None else "market",  # type: ignore[arg-type]
                      quantity=Decimal(quantity), price=Decimal(price) if price is not None else None, **kw)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator({"replay": False, "venues": ["bitfinex"]}) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[HttpTransport]:
    async with HttpTransport(timeout_s=1.0) as transport:  # the timeout fault never answers
        yield transport


@pytest.fixture
def demo(sim: Simulator, http: HttpTransport) -> Client:
    return Client(sim, http, DEMO)


@pytest.fixture
def taker(sim: Simulator, http: HttpTransport) -> Client:
    return Client(sim, http, TAKER)


def core(sim: Simulator) -> Any:
    return sim.dialects["bitfinex"].core


async def best_bid(client: Client) -> tuple[Decimal, Decimal]:
    book = await client.ok("orderbook", OrderBookQuery(symbol=SYMBOL, depth=5))
    return book.bids[0].price, book.bids[0].size


async def test_market_data_matches_the_core(sim: Simulator, demo: Client) -> None:
    """docs "Ticker" (BID, BID_SIZE, ASK, ASK_SIZE, ...), "Book" P0 ([PRICE, COUNT, AMOUNT],
    asks negative), "Configs" pub:list:pair:exchange."""
    bid, ask = core(sim).best(SYMBOL, "buy"), core(sim).best(SYMBOL, "sell")
    ticker = await demo.ok("ticker", TickerQuery(symbol=SYMBOL))
    assert (ticker.bid, ticker.bid_size, ticker.ask, ticker.ask_size) == (*bid, *ask)
    book = await demo.ok("orderbook", OrderBookQuery(symbol=SYMBOL, depth=25))
    assert [(lv.price, lv.size) for lv in book.bids] == core(sim).levels(SYMBOL, "buy", 25)
    assert [(lv.price, lv.size) for lv in book.asks] == core(sim).levels(SYMBOL, "sell", 25)
    rules = await demo.ok("instruments", None)
    assert rules[SYMBOL].venue_symbol == PAIR and set(rules) == {m.symbol for m in DIALECT.MARKETS}


async def test_place_fill_status_cancel_balance_and_trades(sim: Simulator, demo: Client, taker: Client) -> None:
    """Submit (on-req notification) -> status by cid among active orders -> a taker's market
    sell fills part -> open orders -> cancel by id -> the next status calls read the history."""
    bid, size = await best_bid(demo)
    placed = await demo.ok("place_order", order("bfx-1", "buy", "0.01", bid))
    assert (placed.state, placed.quantity, placed.price) == ("open", Decimal("0.01"), bid)
    assert core(sim).orders[placed.venue_order_id].client_order_id == str(venue_cid("bfx-1"))

    await taker.ok("place_order", order("take-1", "sell", str(size + Decimal("0.004")), account="taker"))
    query = OrderStatusQuery(symbol=SYMBOL, client_order_id="bfx-1", venue_order_id=placed.venue_order_id)
    status = await demo.ok("order_status", query)
    assert (status.state, status.filled_quantity, status.average_price) == ("partially_filled", Decimal("0.004"), bid)
    (listed,) = await demo.ok("open_orders", OpenOrdersQuery(symbol=SYMBOL))
    assert listed.venue_order_id == placed.venue_order_id

    cancel = CancelOrder(command_id="c1", venue="bitfinex", account="demo", symbol=SYMBOL, client_order_id="bfx-1",
                         venue_order_id=placed.venue_order_id)
    assert await demo.ok("cancel_order", cancel) == CancelAccepted(client_order_id="bfx-1",
                                                                   venue_order_id=placed.venue_order_id)
    assert await demo.answer("order_status", query) == FollowUp("order_history", query)  # no longer active
    closed = await demo.ok("order_status", query)  # ... so the order history is read next
    assert (closed.state, closed.filled_quantity) == ("canceled", Decimal("0.004"))

    wallet = core(sim).wallet(core(sim).by_name["demo"])
    balances = {b.asset: (b.free, b.locked) for b in await demo.ok("balance", BalanceQuery())}
    assert balances == {a: (wallet.available(a), wallet.locked.get(a, Decimal(0))) for a in wallet.assets()}
    (fill,) = await demo.ok("trade_history", TradeHistoryQuery(symbol=SYMBOL))
    (held,) = core(sim).fills(core(sim).by_name["demo"], SYMBOL)
    assert (fill.venue_order_id, fill.price, fill.quantity, fill.side, fill.liquidity, fill.fee, fill.fee_asset) == (
        placed.venue_order_id, held[1].price, held[1].quantity, "buy", "maker", held[1].fee, "TESTBTC")


async def test_cancel_by_cid_and_date_then_a_filled_order_from_history(sim: Simulator, demo: Client,
                                                                      taker: Client) -> None:
    """docs "Cancel Order": ``cid`` + ``cid_date``; a fully executed order leaves the active
    orders ("EXECUTED @ PRICE(AMOUNT)" in "Orders History")."""
    bid, size = await best_bid(demo)
    await demo.ok("place_order", order("bfx-2", "buy", "0.01", bid - 50))
    cancel = CancelOrder(command_id="c2", venue="bitfinex", account="demo", symbol=SYMBOL, client_order_id="bfx-2")
    assert isinstance(await demo.ok("cancel_order", cancel), CancelAccepted)
    assert not core(sim).open_orders(core(sim).by_name["demo"])

    await demo.ok("place_order", order("bfx-3", "buy", "0.01", bid))
    await taker.ok("place_order", order("take-3", "sell", str(size + Decimal("0.01")), account="taker"))
    query = OrderStatusQuery(symbol=SYMBOL, client_order_id="bfx-3")  # no venue id: a lost reply
    assert isinstance(await demo.answer("order_status", query), FollowUp)
    filled = await demo.ok("order_status", query)
    assert (filled.state, filled.filled_quantity) == ("filled", Decimal("0.01"))


async def test_an_order_the_venue_never_had_is_not_found_after_both_lists(demo: Client) -> None:
    """Not among the active orders, then not in the history either: OrderNotFound (the
    executor may send it then); never OrderNotFound from the active orders alone."""
    query = OrderStatusQuery(symbol=SYMBOL, client_order_id="never-placed")
    assert await demo.answer("order_status", query) == FollowUp("order_history", query)
    assert isinstance(await demo.answer("order_history", query), OrderNotFound)
    assert isinstance(await demo.call("order_status", query), OrderNotFound)


async def test_a_request_signed_from_the_docs(sim: Simulator) -> None:
    """docs "REST Auth": signature = HMAC-SHA384 over "/api/" + path + nonce + body, hex;
    the same nonce again is "nonce: small" (10114); another secret "apikey: digest invalid"."""
    path, nonce = "v2/auth/r/wallets", str(time.time_ns() // 1000)

    def headers(secret: str, key: str = DEMO.api_key) -> dict[str, str]:
        signature = hmac.new(secret.encode(), f"/api/{path}{nonce}{{}}".encode(), hashlib.sha384).hexdigest()
        return {"bfx-apikey": key, "bfx-nonce": nonce, "bfx-signature": signature, "Content-Type": "application/json"}

    async with aiohttp.ClientSession() as session:
        url = f"{sim.url('bitfinex')}/{path}"
        async with session.post(url, data="{}", headers=headers(DEMO.secret)) as r:
            assert r.status == 200 and ["exchange", "TESTBTC", 100, 0, 100, None, None] in await r.json()
        async with session.post(url, data="{}", headers=headers(DEMO.secret)) as r:
            assert (r.status, await r.json()) == (500, ["error", 10114, "nonce: small"])
        async with session.post(url, data="{}", headers=headers(TAKER.secret)) as r:
            assert (r.status, await r.json()) == (500, ["error", 10100, "apikey: digest invalid"])
        async with session.post(url, data="{}", headers=headers(DEMO.secret, "no-such-key")) as r:
            assert (r.status, await r.json()) == (500, ["error", 10100, "apikey: invalid"])


@pytest.mark.parametrize(("name", "command", "expected"), [
    ("insufficient balance", order("big", "sell", "1000", "60000"), InsufficientBalance),
    ("below the minimum size", order("small", "buy", "0.00001", "60000"), InvalidOrder),
    ("amount beyond 8 decimals", order("lot", "buy", "0.000000011", "60000"), InvalidOrder),
    ("price beyond 8 decimals", order("tick", "buy", "1000", "0.0000000012345", symbol="MNA-BTC"), InvalidOrder),
    ("unknown pair", order("sym", "buy", "1", "1", symbol="NOPE-USD"), InvalidOrder),
    ("post-only that would take", order("po", "buy", "0.01", "70000", post_only=True), InvalidOrder),
])
async def test_order_refusals_map_to_the_taxonomy(sim: Simulator, demo: Client, name: str, command: PlaceOrder,
                                                  expected: type) -> None:
    """ccxt bitfinex: "not enough exchange balance" InsufficientFunds; docs 10020 params and
    10001 "Invalid order: minimum size ..."; all HTTP 500 ``["error", code, text]``."""
    result = await demo.call("place_order", command)
    assert type(result) is expected and result.status == 500, (name, result)
    assert not core(sim).orders, name


async def test_auth_and_unknown_order_refusals(sim: Simulator, http: HttpTransport, demo: Client) -> None:
    """10100 for an unknown key or a wrong secret, 10114 for a reused nonce (AuthError);
    "Order not found." for a cancel of no order (ccxt: OrderNotFound)."""
    stranger = Client(sim, http, Credentials(api_key="nobody", secret=DEMO.secret))
    forger = Client(sim, http, Credentials(api_key=DEMO.api_key, secret=TAKER.secret))
    assert isinstance(await stranger.call("balance", BalanceQuery()), AuthError)
    assert isinstance(await forger.call("balance", BalanceQuery()), AuthError)
    await demo.ok("balance", BalanceQuery())
    demo.nonces = itertools.count(1)  # below every nonce the key used
    assert isinstance(await demo.call("balance", BalanceQuery()), AuthError)
    demo.nonces = itertools.count(time.time_ns() // 1000)
    cancel = CancelOrder(command_id="c", venue="bitfinex", account="demo", symbol=SYMBOL, client_order_id="nothing")
    assert isinstance(await demo.call("cancel_order", cancel), OrderNotFound)


async def test_the_same_cid_twice_is_two_orders(sim: Simulator, demo: Client) -> None:
    """docs "Submit Order": cid "should be unique in the day (UTC) (not enforced)" - Bitfinex
    does not de-duplicate, so exbus must not resend blindly (DESIGN.md)."""
    bid, _ = await best_bid(demo)
    first = await demo.ok("place_order", order("twice", "buy", "0.01", bid - 100))
    second = await demo.ok("place_order", order("twice", "buy", "0.01", bid - 100))
    assert first.venue_order_id != second.venue_order_id and len(core(sim).orders) == 2


async def test_prices_are_truncated_to_five_significant_digits(sim: Simulator, demo: Client) -> None:
    """docs "Price Precision": "API will truncate price with precision > 5"."""
    placed = await demo.ok("place_order", order("digits", "buy", "0.01", "50000.987"))
    assert placed.price == Decimal("50000") and core(sim).orders[placed.venue_order_id].price == Decimal("50000")


async def test_rate_limit_is_429_with_the_documented_block() -> None:
    """docs "Requirements and Limitations": over the endpoint's limit the IP is blocked for
    60 s; the reply is 429 ``["error", 11010, "ratelimit: error"]`` without Retry-After."""
    async with Simulator({"replay": False, "venues": ["bitfinex"], "bitfinex": {"rate_limits": {"submit": 2}}}) as sim, \
            HttpTransport() as http:
        demo = Client(sim, http, DEMO)
        bid, _ = await best_bid(demo)
        for n in range(2):
            await demo.ok("place_order", order(f"rl{n}", "buy", "0.01", bid - 100))
        limited = await demo.call("place_order", order("rl2", "buy", "0.01", bid - 100))
        assert isinstance(limited, RateLimited) and (limited.status, limited.retry_after) == (429, 60.0)
        assert len(core(sim).orders) == 2
        await demo.ok("balance", BalanceQuery())  # another endpoint, another limit


async def test_malformed_body_is_a_params_error(sim: Simulator) -> None:
    """A body that is not JSON, or a submit without its type: 10020 (ERR_PARAMS), never a 500 traceback."""
    async with aiohttp.ClientSession() as session:
        for body in (b"{not json", json.dumps({"symbol": PAIR, "amount": "1"}).encode(), b"[1,2]",
                     json.dumps({"type": "EXCHANGE LIMIT", "symbol": PAIR, "amount": "NaN", "price": "1"}).encode(),
                     json.dumps({"type": "EXCHANGE LIMIT", "symbol": PAIR, "amount": "1", "price": "1", "cid": 1.5}).encode()):
            nonce, path = str(time.time_ns() // 1000), "v2/auth/w/order/submit"
            signature = hmac.new(DEMO.secret.encode(), f"/api/{path}{nonce}".encode() + body, hashlib.sha384).hexdigest()
            async with session.post(f"{sim.url('bitfinex')}/{path}", data=body, headers={
                    "bfx-apikey": DEMO.api_key, "bfx-nonce": nonce, "bfx-signature": signature}) as r:
                status, reply = r.status, await r.json()
            assert status == 500 and reply[:2] == ["error", 10020], (body, reply)
            assert isinstance(rest_adapter("bitfinex").parse_response("place_order", status, {}, json.dumps(reply).encode()),
                              InvalidOrder)


@pytest.mark.parametrize(("kind", "expected"), [
    ("bad_key", AuthError), ("bad_signature", AuthError), ("expired", AuthError), ("nonce", AuthError),
    ("insufficient_balance", InsufficientBalance), ("unknown_order", OrderNotFound), ("order_closed", OrderNotFound),
    ("duplicate_order", InvalidOrder), ("tick_size", InvalidOrder), ("lot_size", InvalidOrder),
    ("min_quantity", InvalidOrder), ("min_notional", InvalidOrder), ("would_take", InvalidOrder),
    ("unknown_symbol", InvalidOrder), ("bad_request", InvalidOrder), ("rate_limited", RateLimited),
    ("banned", RateLimited), ("maintenance", VenueUnavailable),
])
async def test_every_refusal_renders_as_the_taxonomy_class(sim: Simulator, kind: str, expected: type) -> None:
    """The dialect's ``refuse`` for each venue-neutral kind, read back by exbus's adapter
    (ccxt bitfinex exact/broad maps; 20060 OnMaintenance)."""
    status, body, headers = sim.dialects["bitfinex"].refuse(Refusal(kind, "detail"), None)  # type: ignore[arg-type]
    result = rest_adapter("bitfinex").parse_response("place_order", status, headers, json.dumps(body).encode())
    assert type(result) is expected, (kind, body, result)


@pytest.mark.parametrize(("status", "expected"), [(503, VenueUnavailable), (500, OutcomeUnknown),
                                                  (502, OutcomeUnknown), (504, OutcomeUnknown)])
async def test_injected_5xx_on_place(sim: Simulator, demo: Client, status: int, expected: type) -> None:
    """faults error_5xx before processing: 503 is ccxt's "temporarily_unavailable" body (not
    processed: VenueUnavailable); 500/502/504 ERR_UNK (10000): the outcome is unknown."""
    sim.set_faults([{"kind": "error_5xx", "status": status, "venue": "bitfinex", "route": "place", "count": 1}])
    result = await demo.call("place_order", order("f5xx", "buy", "0.01", "50000"))
    assert type(result) is expected and not core(sim).orders, result


async def test_injected_429_keeps_its_retry_after(sim: Simulator, demo: Client) -> None:
    """faults error_5xx 429 with Retry-After 1: RateLimited(retry_after=1)."""
    sim.set_faults([{"kind": "error_5xx", "status": 429, "retry_after_s": 1, "venue": "bitfinex", "route": "place",
                     "count": 1}])
    result = await demo.call("place_order", order("f429", "buy", "0.01", "50000"))
    assert isinstance(result, RateLimited) and result.retry_after == 1.0


@pytest.mark.parametrize("kind", ["timeout", "drop", "malformed"])
async def test_lost_replies_on_place_are_found_by_cid(sim: Simulator, demo: Client, kind: str) -> None:
    """faults timeout / drop / malformed after the venue accepted: OutcomeUnknown for exbus,
    and status by client order id finds the one order (among the active orders)."""
    sim.set_faults([{"kind": kind, "venue": "bitfinex", "route": "place", "count": 1}])
    try:
        result: Any = await demo.call("place_order", order(f"lost-{kind}", "buy", "0.01", "50000"))
    except OutcomeUnknown as e:  # the transport's answer to a timeout or a dropped connection
        result = e
    assert isinstance(result, OutcomeUnknown), result
    found = await demo.ok("order_status", OrderStatusQuery(symbol=SYMBOL, client_order_id=f"lost-{kind}"))
    assert isinstance(found, OrderInfo) and found.state == "open" and len(core(sim).orders) == 1


async def test_latency_on_place_still_answers(sim: Simulator, demo: Client) -> None:
    """faults latency: the reply comes, later."""
    sim.set_faults([{"kind": "latency", "latency_ms": 50, "venue": "bitfinex", "route": "place", "count": 1}])
    placed = await demo.ok("place_order", order("slow", "buy", "0.01", "50000"))
    assert placed.state == "open" and [f["fired"] for f in sim.faults.describe()] == [1]
