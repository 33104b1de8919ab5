"""The executor's whole order path on every venue: real executor replicas on a real
nats-server against the simulator, which speaks each venue's own protocol (its paths,
authentication, replies and failure replies). The simulator's ledger is the venue's own
record of what it accepted; its core holds the balances and fills exbus must read back.

Per venue: place -> accepted -> partially and fully filled (a second account sells into the
resting bid); the same command twice and the same client order id under a new command ->
one venue order; cancel; a reply lost after the venue accepted -> reconciled by client
order id to exactly one order; an injected 429 -> the fleet waits the venue's Retry-After;
a 503 before processing -> one order; insufficient balance, unknown order, bad signature
and unknown key, a price off the tick -> the taxonomy's error in the order event; balance
and trade history equal the ledger's.
"""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal
from typing import Any

import nats
import pytest

import schemas
from schemas import CancelOrder, PlaceOrder
from schemas.queries import (
    BalanceQuery, BalanceReply, OrderBookQuery, QueryError, TradeHistoryQuery, TradeHistoryReply,
)
from schemas.vault import Credentials
from services.executor.client import OrderClient
from services.executor.credentials import StaticCredentials, paper_keys
from services.simulator import Simulator
from services.venues import rest_adapter
from services.venues.errors import VenueError
from services.venues.http import HttpTransport

from .conftest import EventLog, fleet, publish

MARKET: dict[str, tuple[str, str]] = {
    "binance": ("NKN-USDT", "1000"),
    "coinbase": ("BTC-USD", "0.01"),
    "kraken": ("BTC-CHF", "0.01"),
    "bitfinex": ("TESTBTC-TESTUSD", "0.01"),
    "okx": ("BTC-USDT", "0.01"),
    "upbit": ("LAMB-KRW", "1000"),
    "bithumb": ("BTC-KRW", "0.01"),
    "korbit": ("BTC-KRW", "0.01"),
    "coinone": ("BTC-KRW", "0.01"),
}
"""Venue -> a market the simulator starts with (replayed books) and an order quantity."""
VENUES = list(MARKET)
KNOWN_IDS = [f"{v}{name}" for v in MARKET for name in ("rest1", "rest2", "lost1", "limited1", "outage1")]
"""The client order ids the tests place (for mapping the venues' own forms of them back)."""
TERMINAL = {"accepted", "partially_filled", "filled", "canceled", "expired", "rejected", "failed"}


class Taker:
    """The other side of the market: the simulator's ``taker`` account, through exbus's adapter."""

    def __init__(self, venue: str, sim: Simulator, http: HttpTransport) -> None:
        self.venue, self.rest, self.http = venue, rest_adapter(venue, sim.url(venue)), http
        self.creds = paper_keys()[(venue, "taker")]
        self.n = 0
        self._nonce = 0

    async def call(self, op: str, args: Any, creds: Credentials | None = None) -> Any:
        nonce = None
        if self.rest.shared_nonce and creds is not None:  # strictly increasing, even within one millisecond
            self._nonce = nonce = max(self._nonce + 1, time.time_ns() // 1000)
        request = self.rest.build_request(op, args, creds, time.time_ns() // 1_000_000, nonce)
        response = await self.http.send(request, idempotent=op not in ("place_order", "cancel_order"))
        result = self.rest.parse_response(op, response.status, response.headers, response.body, args)
        assert not isinstance(result, VenueError), result
        return result

    async def best_bid(self, symbol: str) -> tuple[Decimal, Decimal]:
        book = await self.call("orderbook", OrderBookQuery(symbol=symbol, depth=5))
        return book.bids[0].price, book.bids[0].size

    async def sell(self, symbol: str, quantity: Decimal) -> None:
        """A market sell of ``quantity``: it meets the best bids, recorded liquidity first."""
        self.n += 1
        order = PlaceOrder(command_id=f"take-{self.n}", venue=self.venue, account="taker", symbol=symbol,  # type: ignore[arg-type]
                           client_order_id=f"taker{self.n}x{time.time_ns() % 10**9}", side="sell", order_type="market",
                           quantity=quantity)
        await self.call("place_order", order, self.creds)


def place(venue: str, cid: str, side: str, quantity: Decimal, price: Decimal, command_id: str | None = None) -> PlaceOrder:
    symbol = MARKET[venue][0]
    return PlaceOrder(command_id=command_id or f"cmd{cid}", venue=venue, account="demo", symbol=symbol,  # type: ignore[arg-type]
                      client_order_id=cid, side=side, order_type="limit", quantity=quantity, price=price)  # type: ignore[arg-type]


def cancel(venue: str, cid: str) -> CancelOrder:
    return CancelOrder(command_id=f"cancel{cid}", venue=venue, account="demo", symbol=MARKET[venue][0],  # type: ignore[arg-type]
                       client_order_id=cid)


def history(events: list[schemas.OrderEvent], cid: str) -> list[tuple[str, Decimal]]:
    """(status, filled) of an order's events, leaving out refused re-uses of its client order id."""
    return [(e.status, e.filled_quantity) for e in events if e.client_order_id == cid and e.command_id != "reuse"]


def orders_of(ledger: dict[str, Any], venue: str) -> Counter:
    """Orders the venue accepted, by exbus client order id (mapped back from the venue's own form)."""
    adapter = rest_adapter(venue)
    exbus_ids = {adapter.venue_client_order_id(c): c for c in KNOWN_IDS}
    return Counter(exbus_ids.get(o["client_order_id"], o["client_order_id"]) for o in ledger["orders"]
                   if o["venue"] == venue)


def ledger_order(ledger: dict[str, Any], venue: str, client_order_id: str) -> dict[str, Any]:
    """The one order the venue accepted with this exbus client order id."""
    wanted = rest_adapter(venue).venue_client_order_id(client_order_id)
    (order,) = [o for o in ledger["orders"] if o["venue"] == venue and o["client_order_id"] == wanted]
    return order


def core_of(sim: Simulator, venue: str) -> Any:
    """The venue's orders and wallets in the simulator (dialects keep them in their core)."""
    venue_obj = sim.venues[venue]
    return getattr(venue_obj, "core", venue_obj)


def wallet(sim: Simulator, venue: str, account: str = "demo") -> dict[str, tuple[Decimal, Decimal]]:
    w = core_of(sim, venue).exchange.wallets[account]
    return {a: (w.available(a), w.locked.get(a, Decimal(0))) for a in w.assets()
            if w.available(a) or w.locked.get(a, Decimal(0))}


def ledger_fills(sim: Simulator, venue: str, symbol: str, account: str = "demo") -> list[tuple[Decimal, Decimal]]:
    core = core_of(sim, venue)
    venue_symbol = next((s for s, m in core.exchange.markets.items() if s == symbol or _exbus(m) == symbol), symbol)
    return sorted((f.price, f.quantity) for o in core.orders.values()
                  if o.account == account and o.symbol == venue_symbol for f in o.fills)


def _exbus(market: Any) -> str:
    return f"{market.base}-{market.quote}"


@pytest.fixture
async def sim() -> Any:
    async with Simulator({"replay": False}) as simulator:
        yield simulator


@pytest.mark.parametrize("venue", VENUES)
async def test_place_fill_cancel_and_read_back(venue: str, nats_url: str, bus: Any, event_log: EventLog,
                                               sim: Simulator) -> None:
    symbol, qty_text = MARKET[venue]
    qty = Decimal(qty_text)
    js = bus.jetstream()
    async with HttpTransport() as http, fleet(nats_url, sim, replicas=2):
        taker = Taker(venue, sim, http)
        bid, bid_size = await taker.best_bid(symbol)
        first = place(venue, f"{venue}rest1", "buy", qty, bid)  # behind the recorded bid at that price
        await publish(js, first)
        assert (await publish(js, first)).duplicate, "a re-published command is dropped by the server"
        await event_log.wait(lambda ev: ("accepted", 0) in history(ev, first.client_order_id))
        # the same client order id under a new command: refused by exbus, never sent
        await publish(js, place(venue, f"{venue}rest1", "buy", qty * 2, bid, command_id="reuse"))
        await event_log.wait(lambda ev: any(e.command_id == "reuse" for e in ev))

        await taker.sell(symbol, bid_size + qty * Decimal("0.4"))
        await event_log.wait(lambda ev: ("partially_filled", qty * Decimal("0.4")) in history(ev, first.client_order_id))
        await taker.sell(symbol, qty * Decimal("0.6"))
        await event_log.wait(lambda ev: ("filled", qty) in history(ev, first.client_order_id))

        book = await taker.call("orderbook", OrderBookQuery(symbol=symbol, depth=5))
        low = book.bids[-1].price  # a price on the venue's tick, below the best bid: it rests
        second = place(venue, f"{venue}rest2", "buy", qty, low)
        await publish(js, second)
        await event_log.wait(lambda ev: ("accepted", 0) in history(ev, second.client_order_id))
        await publish(js, cancel(venue, second.client_order_id))
        events = await event_log.wait(lambda ev: any(s == "canceled" for s, _ in history(ev, second.client_order_id)))

        client = OrderClient(await nats.connect(nats_url))
        balances = await client.query(venue, "demo", BalanceQuery())
        fills = await client.query(venue, "demo", TradeHistoryQuery(symbol=symbol))
        await client.nc.close()

    reuse = [e for e in events if e.command_id == "reuse"]
    assert [(e.status, e.error) for e in reuse] == [("rejected", "duplicate_order")]
    assert history(events, first.client_order_id) == [("accepted", 0), ("partially_filled", qty * Decimal("0.4")),
                                                      ("filled", qty)]
    counts = orders_of(sim.ledger_snapshot(), venue)
    assert counts[first.client_order_id] == 1 and counts[second.client_order_id] == 1, counts

    assert isinstance(balances, BalanceReply), balances
    held = wallet(sim, venue)
    read = {b.asset: (b.free, b.locked) for b in balances.balances if b.free or b.locked}
    assert read == held, (read, held)
    if "trade_history" not in rest_adapter(venue).endpoints:  # Upbit has no account trade history endpoint
        assert isinstance(fills, QueryError) and fills.error == "invalid_command", fills
        return
    assert isinstance(fills, TradeHistoryReply), fills
    assert sorted((f.price, f.quantity) for f in fills.fills) == ledger_fills(sim, venue, symbol)
    assert sum(f.quantity for f in fills.fills) == qty


@pytest.mark.timeout(300)
@pytest.mark.parametrize("venue", VENUES)
async def test_lost_replies_rate_limits_and_outages_end_in_one_order(venue: str, nats_url: str, bus: Any,
                                                                     event_log: EventLog, sim: Simulator) -> None:
    """Timeouts are generous: reconciling takes several status queries, and on Kraken
    (15 calls per 45 s) each waits for its share of the budget."""
    symbol, qty_text = MARKET[venue]
    qty = Decimal(qty_text)
    js = bus.jetstream()
    async with HttpTransport() as http:
        book = await Taker(venue, sim, http).call("orderbook", OrderBookQuery(symbol=symbol, depth=5))
    low = book.bids[-1].price
    # a lost answer is given up on after 2 s, and "no such order" must hold over four looks in 1.75 s
    async with fleet(nats_url, sim, replicas=2, ack_wait_s=20, request_timeout_s=2.0,
                     reconcile_delays_s=[0.0, 0.25, 0.5, 1.0]):
        # the venue accepts the order, then the answer never comes
        sim.set_faults([{"kind": "timeout", "venue": venue, "route": "place", "count": 1}])
        lost = place(venue, f"{venue}lost1", "buy", qty, low)
        await publish(js, lost)
        await event_log.wait(lambda ev: any(e.client_order_id == lost.client_order_id for e in ev), timeout=120)

        # a rate-limit answer (the venue's 429 with Retry-After: 1): the fleet waits, then sends once
        sim.set_faults([{"kind": "error_5xx", "status": 429, "retry_after_s": 1, "venue": venue, "route": "place",
                         "count": 1}])
        limited = place(venue, f"{venue}limited1", "buy", qty, low)
        sent = time.time_ns()
        await publish(js, limited)
        await event_log.wait(lambda ev: any(e.client_order_id == limited.client_order_id for e in ev), timeout=120)

        # the venue down for maintenance before it processed the order
        sim.set_faults([{"kind": "error_5xx", "status": 503, "venue": venue, "route": "place", "count": 1}])
        outage = place(venue, f"{venue}outage1", "buy", qty, low)
        events = await _publish_and_wait(js, event_log, outage)
    ledger = sim.ledger_snapshot()
    counts = orders_of(ledger, venue)
    for command in (lost, limited, outage):
        assert counts[command.client_order_id] == 1, (command.client_order_id, counts)
        assert [e.status for e in events if e.client_order_id == command.client_order_id] == ["accepted"]
    lost_order = ledger_order(ledger, venue, lost.client_order_id)
    assert lost_order["response"] == "timeout"
    limited_order = ledger_order(ledger, venue, limited.client_order_id)
    assert limited_order["ts"] - sent >= 1_000_000_000, "the order went out before the venue's Retry-After"
    assert not ledger["limits_exceeded"], ledger["limits"]


async def _publish_and_wait(js: Any, log: EventLog, command: PlaceOrder) -> list[schemas.OrderEvent]:
    await publish(js, command)
    return await log.wait(lambda ev: any(e.client_order_id == command.client_order_id and e.status in TERMINAL
                                         for e in ev), timeout=120)


@pytest.mark.parametrize("venue", VENUES)
async def test_refusals_reach_the_strategy_as_the_taxonomy_error(venue: str, nats_url: str, bus: Any,
                                                                 event_log: EventLog, sim: Simulator) -> None:
    symbol, qty_text = MARKET[venue]
    js = bus.jetstream()
    demo, taker = (paper_keys()[(venue, name)] for name in ("demo", "taker"))
    credentials = StaticCredentials({
        (venue, "demo"): demo,
        (venue, "forger"): Credentials(api_key=demo.api_key, secret=taker.secret, passphrase=demo.passphrase),
        (venue, "stranger"): Credentials(api_key=f"{demo.api_key}-unknown", secret=taker.secret,
                                         passphrase=taker.passphrase),
    })
    async with HttpTransport() as http:
        book = await Taker(venue, sim, http).call("orderbook", OrderBookQuery(symbol=symbol, depth=5))
    base = symbol.split("-")[0]
    held = max(free for asset, (free, _) in wallet(sim, venue).items() if asset in (base, _venue_base(sim, venue, symbol)))
    ask, low = book.asks[0].price, book.bids[-1].price
    too_much = place(venue, f"{venue}big1", "sell", held * 2, ask)
    forged = PlaceOrder(**{**_fields(place(venue, f"{venue}forged1", "buy", Decimal(qty_text), low)), "account": "forger"})
    stranger = PlaceOrder(**{**_fields(place(venue, f"{venue}stranger1", "buy", Decimal(qty_text), low)),
                             "account": "stranger"})
    unknown = cancel(venue, f"{venue}never1")
    off_tick = place(venue, f"{venue}offtick1", "buy", Decimal(qty_text), low + Decimal("0.000000000001"))
    commands = (too_much, forged, stranger, unknown, off_tick)
    async with fleet(nats_url, sim, credentials=credentials):
        for command in commands:
            await publish(js, command)
        events = await event_log.wait(lambda ev: {e.command_id for e in ev} >= {c.command_id for c in commands},
                                      timeout=60)
    outcome = {e.command_id: (e.status, e.error) for e in events}
    assert outcome[too_much.command_id] == ("rejected", "insufficient_balance"), outcome
    assert outcome[forged.command_id] == ("rejected", "auth_error"), outcome
    assert outcome[stranger.command_id] == ("rejected", "auth_error"), outcome
    assert outcome[unknown.command_id] == ("rejected", "order_not_found"), outcome
    # off the venue's tick: refused by exbus's market rules where the venue publishes its tick, else by the venue
    assert outcome[off_tick.command_id] in (("rejected", "market_rules"), ("rejected", "invalid_order")), outcome
    assert not orders_of(sim.ledger_snapshot(), venue), "nothing was placed"


def _fields(command: Any) -> dict[str, Any]:
    return {f: getattr(command, f) for f in command.__struct_fields__}


def _venue_base(sim: Simulator, venue: str, symbol: str) -> str:
    """The base asset's name in the simulator's wallets (Binance and Upbit keep venue symbols)."""
    markets = core_of(sim, venue).exchange.markets
    for name, m in markets.items():
        if name == symbol or _exbus(m) == symbol or name in (symbol.replace("-", ""), "-".join(reversed(symbol.split("-")))):
            return m.base
    return symbol.split("-")[0]
