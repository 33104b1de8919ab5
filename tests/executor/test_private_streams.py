"""Every venue's private stream through the executor: a real nats-server, one executor
replica (its tracker leads and runs the streams) and the simulator, which pushes each
venue's own private messages with its own authentication.

Per venue:
- the fills of a resting order arrive over the stream, each once, and match the venue's
  fills (the simulator's core);
- the stream dies in the middle of a sequence of partial fills and cannot come back for a
  while: polls (status, then the trade history since the last event) report what happened
  meanwhile, the stream takes over again once it is back, and against the simulator's
  ledger every fill appears once and the order ends filled.
"""

from __future__ import annotations

import asyncio
import tomllib
from collections import Counter
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, AsyncIterator

import nats
import pytest

import schemas
from schemas.queries import OrderBookQuery
from services.executor import order_streams
from services.executor.credentials import simulator_credentials
from services.executor.service import ExecutorReplica
from services.executor.settings import ExecutorSettings
from services.simulator import Simulator
from services.venues import rest_adapter
from services.venues.http import HttpTransport
from services.venues.privatews import private_stream

from .conftest import EventLog, publish
from .processes import LIFTED_MARGIN, LIFTED_SIM_LIMITS
from .test_every_venue import MARKET, Taker, core_of, history, place

VENUES = [venue for venue in MARKET if private_stream(venue, rest_adapter(venue)) is not None]
"""Venues with a private stream adapter (the others are polled: tests/executor/test_every_venue.py)."""
TOTALS_ONLY = {"coinbase"}
"""Venues whose stream gives no trade id (Coinbase ``user``: totals only)."""


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """The simulator with its rate limits lifted (so is the replica's margin): these tests are
    about the streams and their recovery; the limits are tests/executor/test_every_venue.py's.
    (Kraken's Starter counter alone made the drop test take 40 s.)"""
    async with Simulator({"replay": False, **tomllib.loads(LIFTED_SIM_LIMITS)["sim"]}) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def quick_reconnect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(order_streams, "RECONNECT_MAX_S", 0.5)


@asynccontextmanager
async def replica(nats_url: str, sim: Simulator) -> AsyncIterator[ExecutorReplica]:
    """One executor replica (its tracker leads) against every simulated venue."""
    nc = await nats.connect(nats_url)
    executor = ExecutorReplica(nc, ExecutorSettings(venue_urls=dict(sim.base_urls), tracker_interval_s=0.2,
                                                    rate_limit_margin=LIFTED_MARGIN),
                               simulator_credentials("demo"))
    stop = asyncio.Event()
    task = asyncio.create_task(executor.run(stop))
    try:
        await asyncio.wait_for(executor.ready.wait(), 30)
        yield executor
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        await nc.drain()


async def followed(executor: ExecutorReplica, venue: str, cid: str, timeout: float = 30) -> None:
    streams = executor.tracker.streams
    await streams.until(lambda: streams.covers(venue, "demo", cid), timeout)


def venue_fills(sim: Simulator, venue: str, cid: str) -> list[tuple[Decimal, Decimal]]:
    """(price, quantity) of the venue's fills of exbus's order ``cid``, oldest first."""
    wanted = rest_adapter(venue).venue_client_order_id(cid)
    (order,) = [o for o in core_of(sim, venue).orders.values() if o.account == "demo" and o.client_order_id == wanted]
    return [(f.price, f.quantity) for f in order.fills]


def fills_of(events: list[schemas.OrderEvent], cid: str) -> list[schemas.OrderEvent]:
    return [e for e in events if e.client_order_id == cid and e.last_fill_quantity]


def assert_each_fill_once(events: list[schemas.OrderEvent], cid: str, venue: str, expected: list[tuple[Decimal, Decimal]],
                          quantity: Decimal, *, exact: bool = True) -> None:
    """Every venue fill once in the events; ``exact``: one event per fill (else fills
    found by a poll without a trade history may come as one difference of totals)."""
    mine = [e for e in events if e.client_order_id == cid]
    assert len({e.event_id for e in mine}) == len(mine), "an event published twice"
    fills = fills_of(events, cid)
    assert sum(e.last_fill_quantity for e in fills) == quantity == sum(q for _, q in expected)
    if exact:
        assert sorted((e.last_fill_price, e.last_fill_quantity) for e in fills) == sorted(expected)
    else:
        assert sum(e.last_fill_price * e.last_fill_quantity for e in fills) == sum(p * q for p, q in expected)
    assert mine[-1].status == "filled" and mine[-1].filled_quantity == quantity
    named = [e.trade_id for e in fills if e.trade_id is not None]
    assert len(set(named)) == len(named), named
    if venue not in TOTALS_ONLY and exact:
        assert len(named) == len(fills), [e.trade_id for e in fills]
    # a fee comes with every fill the venue named (a difference of polled totals has none)
    assert all(e.fee is not None and e.fee >= 0 for e in fills if e.trade_id is not None or venue in TOTALS_ONLY)


async def rest_bid(venue: str, sim: Simulator, events: EventLog, executor: ExecutorReplica, js: Any,
                   taker: Taker, cid: str) -> tuple[Decimal, Decimal]:
    """A resting buy at the best bid (behind the recorded liquidity), followed by the stream;
    returns (its quantity, the bid's recorded size)."""
    symbol, qty_text = MARKET[venue]
    bid, bid_size = await taker.best_bid(symbol)
    await publish(js, place(venue, cid, "buy", Decimal(qty_text), bid))
    await events.wait(lambda ev: ("accepted", 0) in history(ev, cid))
    await followed(executor, venue, cid)
    return Decimal(qty_text), bid_size


@pytest.mark.timeout(180)
@pytest.mark.parametrize("venue", VENUES)
async def test_fills_arrive_over_the_private_stream_each_once(venue: str, nats_url: str, bus: Any,
                                                              event_log: EventLog, sim: Simulator) -> None:
    symbol = MARKET[venue][0]
    cid = f"{venue}push1"
    async with HttpTransport() as http, replica(nats_url, sim) as executor:
        taker = Taker(venue, sim, http)
        qty, bid_size = await rest_bid(venue, sim, event_log, executor, bus.jetstream(), taker, cid)
        await taker.sell(symbol, bid_size + qty * Decimal("0.3"))
        await event_log.wait(lambda ev: ("partially_filled", qty * Decimal("0.3")) in history(ev, cid))
        await taker.sell(symbol, qty * Decimal("0.7"))
        events = await event_log.wait(lambda ev: ("filled", qty) in history(ev, cid))
        published = dict(executor.tracker.changes.published)
    assert history(events, cid) == [("accepted", 0), ("partially_filled", qty * Decimal("0.3")), ("filled", qty)]
    assert published == {"stream": 2}, published
    assert_each_fill_once(events, cid, venue, venue_fills(sim, venue, cid), qty)
    if venue in TOTALS_ONLY:
        assert [e.trade_id for e in fills_of(events, cid)] == [None, None]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("venue", VENUES)
async def test_a_stream_dropped_between_partial_fills_loses_and_repeats_no_fill(
        venue: str, nats_url: str, bus: Any, event_log: EventLog, sim: Simulator) -> None:
    symbol = MARKET[venue][0]
    cid = f"{venue}drop1"
    dialect = sim.venues[venue]
    async with HttpTransport() as http, replica(nats_url, sim) as executor:
        streams = executor.tracker.streams
        taker = Taker(venue, sim, http)
        qty, bid_size = await rest_bid(venue, sim, event_log, executor, bus.jetstream(), taker, cid)
        part = qty / 4

        await taker.sell(symbol, bid_size + part)  # 1. over the stream
        await event_log.wait(lambda ev: ("partially_filled", part) in history(ev, cid))

        dialect.private_refused = True  # 2. the stream dies and cannot come back
        assert dialect.drop_private() >= 1
        await streams.until(lambda: not streams.covers(venue, "demo", cid), 10)
        await taker.sell(symbol, part)
        await taker.sell(symbol, part)  # two fills nobody pushes: polls find them
        await event_log.wait(lambda ev: ("partially_filled", 3 * part) in history(ev, cid), timeout=60)

        dialect.private_refused = False  # 3. back: the stream carries the rest
        await followed(executor, venue, cid, timeout=60)
        await taker.sell(symbol, part)
        events = await event_log.wait(lambda ev: ("filled", qty) in history(ev, cid), timeout=60)
        published = Counter(executor.tracker.changes.published)
        session = streams.sessions[(venue, "demo")]
        assert session.connects >= 2 and session.unreadable == 0

    assert published["stream"] >= 2 and published["poll"] + published["trades"] >= 1, published
    filled = [f for s, f in history(events, cid)]
    assert filled == sorted(filled) and filled[-1] == qty
    has_history = "trade_history" in rest_adapter(venue).endpoints
    assert_each_fill_once(events, cid, venue, venue_fills(sim, venue, cid), qty, exact=has_history)
    if has_history:
        assert published["trades"] == 2, published  # the two missed fills, each with its trade id


LONG_ID = "0" * 14
BY_VENUE_ID = [venue for venue in VENUES if rest_adapter(venue).venue_client_order_id(f"order-{LONG_ID}") != f"order-{LONG_ID}"]
"""Venues whose stream names exbus's orders only by a hash of the client id: updates are
matched by the venue's order id, which the placing replica records."""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("venue", BY_VENUE_ID)
async def test_a_fill_naming_only_the_venue_id_is_published_without_waiting_for_a_round(
        venue: str, nats_url: str, bus: Any, event_log: EventLog, sim: Simulator) -> None:
    """The tracker's rounds are an hour apart once the stream runs: an order that fills as it
    is placed (its fill pushed before the placing replica recorded the order) and one that
    rests and fills later are both published from the stream, each fill with its trade id
    and fee, through the tracker's watch of the order records. (Long client ids with a dash:
    Kraken and OKX are sent a hash of those, Bitfinex of every id.)"""
    symbol = MARKET[venue][0]
    async with HttpTransport() as http, replica(nats_url, sim) as executor:
        taker = Taker(venue, sim, http)
        js = bus.jetstream()
        qty, bid_size = await rest_bid(venue, sim, event_log, executor, js, taker, f"{venue}-keep1-{LONG_ID}")  # starts the stream
        executor.tracker.interval_s = 3600.0
        await asyncio.sleep(0.5)  # the round under way ends; the next is an hour away
        book = await taker.call("orderbook", OrderBookQuery(symbol=symbol, depth=5))
        through = next(a.price for n, a in enumerate(book.asks) if sum(x.size for x in book.asks[:n + 1]) >= qty)
        await publish(js, place(venue, f"{venue}-take1-{LONG_ID}", "buy", qty, through))  # fills as placed
        await publish(js, place(venue, f"{venue}-rest1-{LONG_ID}", "buy", qty, book.bids[0].price))
        await event_log.wait(lambda ev: ("accepted", 0) in history(ev, f"{venue}-rest1-{LONG_ID}"))
        cids = (f"{venue}-keep1-{LONG_ID}", f"{venue}-take1-{LONG_ID}", f"{venue}-rest1-{LONG_ID}")
        await taker.sell(symbol, bid_size + qty)  # the recorded bid, then keep1
        await event_log.wait(lambda ev: ("filled", qty) in history(ev, cids[0]), timeout=20)
        await taker.sell(symbol, qty)  # rest1
        events = await event_log.wait(lambda ev: all(("filled", qty) in history(ev, cid) for cid in cids), timeout=20)
        published = dict(executor.tracker.changes.published)
    fills = {cid: venue_fills(sim, venue, cid) for cid in cids}
    assert published == {"stream": sum(len(f) for f in fills.values())}, published
    for cid in cids:
        steps = history(events, cid)
        assert steps[0] == ("accepted", 0) and steps[-1] == ("filled", qty), steps
        assert_each_fill_once(events, cid, venue, fills[cid], qty)
