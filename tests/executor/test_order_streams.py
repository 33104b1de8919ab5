"""Order tracking over the venues' private streams (Binance user data stream, Upbit
myOrder), with polling as the fallback and the reconciliation after a reconnect.

Unit tests parse the venues' documented payloads:
- Binance: binance-spot-api-docs ``user-data-stream.md`` (revision "User Data Streams for
  Binance (2022-12-05)", binance/binance-spot-api-docs@021bed18), "Order Update" payload,
  and the current page's ``{"subscriptionId", "event"}`` wrapping
  (developers.binance.com/docs/binance-spot-api-docs/user-data-stream).
- Upbit: docs.upbit.com/kr/reference/websocket-myorder ("구독 데이터 명세": field names,
  meanings and types; numbers are JSON Doubles) and docs.upbit.com/reference/connection
  (Authorization: Bearer JWT; error objects; ``PING`` -> {"status": "UP"}).

Integration tests run a real nats-server, the simulator (which fills resting orders when
another account's order crosses them) and one executor replica, and count the
simulator's order-status requests with a zero-latency fault rule on that route.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, AsyncIterator

import jwt
import nats
import pytest

import schemas
from schemas import PlaceOrder
from schemas.queries import OrderBookQuery
from schemas.vault import Credentials
from services.executor import order_streams
from services.executor.credentials import simulator_credentials
from services.executor.service import ExecutorReplica
from services.executor.settings import ExecutorSettings
from services.simulator import Simulator
from services.simulator.config import sim_config
from services.venues import rest_adapter
from services.venues.binance.private import BinanceUserStream
from services.venues.errors import VenueError
from services.venues.http import HttpTransport
from services.venues.privatews import OrderUpdate, StreamReady, private_stream
from services.venues.upbit.private import UpbitPrivateStream
from services.venues.wsbase import VenueNotice

from .conftest import EventLog, publish

CREDS = Credentials(api_key="doc-api-key", secret="doc-secret-" + "0" * 32)

# --- unit: the venues' documented payloads ------------------------------------------------------

# user-data-stream.md, "Order Update" (comments removed; the conditional fields d, D, j, J kept)
BINANCE_EXECUTION_REPORT = {
    "e": "executionReport", "E": 1499405658658, "s": "ETHBTC", "c": "mUvoqJxFIILMdfAW5iGSOW", "S": "BUY",
    "o": "LIMIT", "f": "GTC", "q": "1.00000000", "p": "0.10264410", "P": "0.00000000", "d": 4,
    "F": "0.00000000", "g": -1, "C": "", "x": "NEW", "X": "NEW", "r": "NONE", "i": 4293153, "l": "0.00000000",
    "z": "0.00000000", "L": "0.00000000", "n": "0", "N": None, "T": 1499405658657, "t": -1, "I": 8641984,
    "w": True, "m": False, "M": False, "O": 1499405658657, "Z": "0.00000000", "Y": "0.00000000",
    "Q": "0.00000000", "D": 1668680518494, "j": 1, "J": 1000000, "W": 1499405658657, "V": "NONE",
}


def binance() -> BinanceUserStream:
    stream = private_stream("binance", rest_adapter("binance"))
    assert isinstance(stream, BinanceUserStream)
    return stream


def upbit() -> UpbitPrivateStream:
    stream = private_stream("upbit", rest_adapter("upbit"))
    assert isinstance(stream, UpbitPrivateStream)
    return stream


def test_binance_documented_execution_report_new() -> None:
    (update,) = binance().parse_frame(json.dumps({"subscriptionId": 0, "event": BINANCE_EXECUTION_REPORT}), 0)
    assert update == OrderUpdate(
        venue="binance", client_order_id="mUvoqJxFIILMdfAW5iGSOW", venue_order_id="4293153", state="open",
        filled_quantity=Decimal("0E-8"), ts_event=1499405658657 * 1_000_000, symbol="ETH-BTC", side="buy",
        order_type="limit", price=Decimal("0.10264410"), quantity=Decimal("1.00000000"))


def test_binance_execution_report_of_a_fill_and_of_a_cancel() -> None:
    """The documented payload with the fields a partial fill, then a cancel, change."""
    fill = BINANCE_EXECUTION_REPORT | {"x": "TRADE", "X": "PARTIALLY_FILLED", "l": "0.40000000", "z": "0.40000000",
                                       "L": "0.10264410", "n": "0.00040000", "N": "ETH", "t": 123456,
                                       "Z": "0.04105764", "Y": "0.04105764"}
    (u,) = binance().parse_frame(json.dumps({"subscriptionId": 0, "event": fill}), 0)
    assert (u.state, u.filled_quantity, u.last_fill_quantity, u.last_fill_price) == (
        "partially_filled", Decimal("0.4"), Decimal("0.4"), Decimal("0.10264410"))
    assert (u.fee, u.fee_asset, u.trade_id, u.average_price) == (
        Decimal("0.0004"), "ETH", "123456", Decimal("0.04105764") / Decimal("0.4"))
    cancel = fill | {"x": "CANCELED", "X": "CANCELED", "c": "cancelRequest1", "C": "mUvoqJxFIILMdfAW5iGSOW", "t": -1}
    (c,) = binance().parse_frame(json.dumps({"subscriptionId": 0, "event": cancel}), 0)
    assert (c.client_order_id, c.state, c.filled_quantity, c.last_fill_quantity, c.trade_id) == (
        "mUvoqJxFIILMdfAW5iGSOW", "canceled", Decimal("0.4"), None, None)


# A myOrder frame with every field of the docs' table, values of the documented types.
UPBIT_MY_ORDER_TRADE = (
    b'{"type": "myOrder", "code": "KRW-BTC", "uuid": "ac2dc2a3-fce9-40a2-a4f6-5987c25c438f", "ask_bid": "BID",'
    b' "order_type": "limit", "state": "trade", "trade_uuid": "68315169-fba4-4175-ade3-aff14a616657",'
    b' "price": 0.001453, "avg_price": 0.00145372, "volume": 30925891.29839369,'
    b' "remaining_volume": 29968038.09235948, "executed_volume": 30925891.29839369, "trades_count": 1,'
    b' "reserved_fee": 44.23943970238218, "remaining_fee": 21.77177967409916, "paid_fee": 22.467660028283017,'
    b' "locked": 43565.33250074177, "executed_funds": 44935.32005656603, "time_in_force": null,'
    b' "trade_fee": 22.467660028283017, "is_maker": true, "identifier": "test-1", "smp_type": null,'
    b' "prevented_volume": 0, "prevented_locked": 0, "trade_timestamp": 1710751590421,'
    b' "order_timestamp": 1710751590000, "timestamp": 1710751597500, "stream_type": "REALTIME"}'
)


def test_upbit_my_order_trade_is_read_exactly() -> None:
    (u,) = upbit().parse_frame(UPBIT_MY_ORDER_TRADE, 0)
    assert u == OrderUpdate(
        venue="upbit", client_order_id="test-1", venue_order_id="ac2dc2a3-fce9-40a2-a4f6-5987c25c438f",
        state="partially_filled", filled_quantity=Decimal("30925891.29839369"), ts_event=1710751590421 * 1_000_000,
        symbol="BTC-KRW", side="buy", order_type="limit", price=None,
        quantity=Decimal("30925891.29839369") + Decimal("29968038.09235948"), average_price=Decimal("0.00145372"),
        last_fill_price=Decimal("0.001453"), last_fill_quantity=Decimal("30925891.29839369"),
        fee=Decimal("22.467660028283017"), fee_asset="KRW", trade_id="68315169-fba4-4175-ade3-aff14a616657")


@pytest.mark.parametrize(("state", "remaining", "expected"), [
    ("wait", "30925891.29839369", "open"), ("done", "0", "filled"), ("cancel", "29968038.09235948", "canceled"),
    ("trade", "0", "filled"),
])
def test_upbit_my_order_states(state: str, remaining: str, expected: str) -> None:
    frame = json.loads(UPBIT_MY_ORDER_TRADE) | {"state": state, "remaining_volume": float(remaining)}
    if state == "wait":
        frame["executed_volume"] = 0
    (u,) = upbit().parse_frame(json.dumps(frame), 0)
    assert u.state == expected


def test_upbit_connection_subscription_and_control_frames() -> None:
    stream = upbit()
    target = stream.connection(None, CREDS, 0)
    assert target.url == "wss://api.upbit.com/websocket/v1/private"
    scheme, token = target.headers["Authorization"].split(" ")
    claims = jwt.decode(token, CREDS.secret, algorithms=["HS256"])
    assert scheme == "Bearer" and claims["access_key"] == "doc-api-key" and "query_hash" not in claims
    subscribe, ping = stream.subscribe_messages(CREDS, None, 0)
    ticket, kind, fmt = json.loads(subscribe)
    assert set(ticket) == {"ticket"} and kind == {"type": "myOrder"} and fmt == {"format": "DEFAULT"} and ping == "PING"
    assert stream.parse_frame(b'{"status": "UP"}', 0) == [StreamReady()]
    (error,) = stream.parse_frame('{"error": {"name": "INVALID_AUTH", "message": "인증 정보가 올바르지 않습니다."}}'.encode(), 0)
    assert error.kind == "error" and "INVALID_AUTH" in error.message


def test_stream_endpoint_follows_a_rest_override() -> None:
    assert private_stream("binance", rest_adapter("binance", "http://127.0.0.1:9000")).url == \
        "ws://127.0.0.1:9000/ws-api/v3"  # type: ignore[union-attr]
    assert private_stream("upbit", rest_adapter("upbit", "http://127.0.0.1:9001")).url == \
        "ws://127.0.0.1:9001/websocket/v1/private"  # type: ignore[union-attr]
    assert private_stream("nowhere", rest_adapter("kraken")) is None  # no such venue: polled


# --- integration: the executor against the simulator ---------------------------------------------

TAKER = {"name": "taker", "api_key": "sim-taker-key", "secret": "sim-taker-secret-" + "1" * 40}


def accounts(venue_config: Any, taker_balances: dict[str, str]) -> list[dict[str, Any]]:
    demo = venue_config.accounts[0]
    return [{"name": demo.name, "api_key": demo.api_key, "secret": demo.secret,
             "balances": {k: str(v) for k, v in demo.balances.items()}}, TAKER | {"balances": taker_balances}]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    base = sim_config({})
    async with Simulator({"replay": False,
                          "binance": {"accounts": accounts(base.binance, {"NKN": "100000", "USDT": "100000"})},
                          "upbit": {"accounts": accounts(base.upbit, {"LAMB": "100000", "KRW": "10000000"})}}) as s:
        yield s


@pytest.fixture(autouse=True)
def quick_reconnect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(order_streams, "RECONNECT_MAX_S", 0.5)


@asynccontextmanager
async def replica(nats_url: str, sim: Simulator) -> AsyncIterator[ExecutorReplica]:
    """One executor replica (its tracker leads) against the simulator."""
    nc = await nats.connect(nats_url)
    settings = ExecutorSettings(venue_urls={"binance": sim.binance_url, "upbit": sim.upbit_url}, tracker_interval_s=0.2)
    executor = ExecutorReplica(nc, settings, simulator_credentials("demo"))
    stop = asyncio.Event()
    task = asyncio.create_task(executor.run(stop))
    try:
        await asyncio.wait_for(executor.ready.wait(), 30)
        yield executor
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        await nc.drain()


class Venue:
    """The other side of the market: a taker account's orders, sent with the venue adapter."""

    def __init__(self, venue: str, url: str, http: HttpTransport) -> None:
        self.venue, self.rest, self.http = venue, rest_adapter(venue, url), http

    async def call(self, op: str, args: Any, creds: Credentials | None) -> Any:
        request = self.rest.build_request(op, args, creds, time.time_ns() // 1_000_000)
        response = await self.http.send(request, idempotent=op not in ("place_order", "cancel_order"))
        result = self.rest.parse_response(op, response.status, response.headers, response.body, args)
        assert not isinstance(result, VenueError), result
        return result

    async def best_bid(self, symbol: str) -> Decimal:
        return (await self.call("orderbook", OrderBookQuery(symbol=symbol, depth=5), None)).bids[0].price

    async def take(self, symbol: str, quantity: str, n: int) -> None:
        """The taker sells ``quantity`` at market: it meets the best (our resting) bid."""
        sell = PlaceOrder(command_id=f"t{n}", venue=self.venue, account="taker", symbol=symbol,  # type: ignore[arg-type]
                          client_order_id=f"taker-{n}", side="sell", order_type="market", quantity=Decimal(quantity))
        await self.call("place_order", sell, Credentials(api_key=TAKER["api_key"], secret=TAKER["secret"]))


def buy(venue: str, symbol: str, client_order_id: str, quantity: str, price: Decimal) -> PlaceOrder:
    return PlaceOrder(command_id=client_order_id, venue=venue, account="demo", symbol=symbol,  # type: ignore[arg-type]
                      client_order_id=client_order_id, side="buy", order_type="limit", quantity=Decimal(quantity),
                      price=price)


def status_polls(sim: Simulator) -> int:
    """Order-status requests counted by the zero-latency rule of :func:`count_status_polls`."""
    return sum(f["fired"] for f in sim.faults.describe() if f["kind"] == "latency")


def count_status_polls(sim: Simulator, *extra: dict[str, Any]) -> None:
    routes = {"binance": "GET /api/v3/order", "upbit": "GET /v1/order"}
    sim.set_faults([{"kind": "latency", "latency_ms": 0, "venue": v, "route": r} for v, r in routes.items()]
                   + list(extra))


def statuses(events: list[schemas.OrderEvent], client_order_id: str) -> list[tuple[str, Decimal]]:
    return [(e.status, e.filled_quantity) for e in events if e.client_order_id == client_order_id]


def assert_no_duplicates(events: list[schemas.OrderEvent]) -> None:
    repeated = [k for k, n in Counter(e.event_id for e in events).items() if n > 1]
    assert not repeated, f"events published twice: {repeated}"
    changes = Counter((e.client_order_id, e.status, e.filled_quantity) for e in events)
    assert max(changes.values()) == 1, changes


async def followed(executor: ExecutorReplica, venue: str, client_order_id: str, timeout: float = 20) -> None:
    """Return once the demo account's stream follows the order (it is polled no more)."""
    streams = executor.tracker.streams
    await streams.until(lambda: streams.covers(venue, "demo", client_order_id), timeout)


async def published_by(executor: ExecutorReplica, expected: Counter, timeout: float = 5.0) -> Counter:
    """The replica's published-changes counter once it equals ``expected`` (or at the
    timeout): an event reaches the event log before its publisher has the stream's
    acknowledgement and counts it."""
    changes = executor.tracker.changes
    deadline = asyncio.get_running_loop().time() + timeout
    while changes.published != expected and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    return changes.published


@pytest.mark.parametrize(("venue", "symbol", "tick"), [("binance", "NKN-USDT", "0.0001"), ("upbit", "LAMB-KRW", "0.5")])
async def test_fills_of_a_resting_order_arrive_over_the_private_stream(
        nats_url: str, bus: Any, event_log: EventLog, sim: Simulator, venue: str, symbol: str, tick: str) -> None:
    async with HttpTransport() as http, replica(nats_url, sim) as executor:
        market = Venue(venue, getattr(sim, f"{venue}_url"), http)
        price = await market.best_bid(symbol) + Decimal(tick)  # the best bid: first in line
        await publish(bus.jetstream(), buy(venue, symbol, "rest-1", "1000", price))
        await event_log.wait(lambda ev: ("accepted", 0) in statuses(ev, "rest-1"))
        await followed(executor, venue, "rest-1")
        count_status_polls(sim)
        await market.take(symbol, "400", 1)
        await event_log.wait(lambda ev: ("partially_filled", 400) in statuses(ev, "rest-1"))
        await market.take(symbol, "600", 2)
        events = await event_log.wait(lambda ev: ("filled", 1000) in statuses(ev, "rest-1"))
        assert status_polls(sim) == 0, "the fills were polled, not streamed"
        assert await published_by(executor, Counter(stream=2)) == Counter(stream=2)
    assert statuses(events, "rest-1") == [("accepted", 0), ("partially_filled", 400), ("filled", 1000)]
    partial, filled = [e for e in events if e.client_order_id == "rest-1"][1:]
    assert (partial.last_fill_quantity, partial.last_fill_price) == (Decimal(400), price)
    assert (filled.last_fill_quantity, filled.last_fill_price, filled.average_price) == (Decimal(600), price, price)
    assert filled.command_id == "rest-1" and filled.fee is not None and filled.fee > 0
    assert_no_duplicates(events)


async def test_a_cancel_made_at_the_venue_arrives_over_the_stream(nats_url: str, bus: Any, event_log: EventLog,
                                                                  sim: Simulator) -> None:
    """The order is canceled outside exbus (say, in the venue's web page) after a partial fill."""
    demo = simulator_credentials("demo")
    async with HttpTransport() as http, replica(nats_url, sim) as executor:
        market = Venue("binance", sim.binance_url, http)
        place = buy("binance", "NKN-USDT", "rest-2", "100", await market.best_bid("NKN-USDT") + Decimal("0.0001"))
        await publish(bus.jetstream(), place)
        await event_log.wait(lambda ev: ("accepted", 0) in statuses(ev, "rest-2"))
        await followed(executor, "binance", "rest-2")
        count_status_polls(sim)
        await market.take("NKN-USDT", "30", 3)
        await event_log.wait(lambda ev: ("partially_filled", 30) in statuses(ev, "rest-2"))
        cancel = schemas.CancelOrder(command_id="web-cancel", venue="binance", account="demo", symbol="NKN-USDT",
                                     client_order_id="rest-2")
        await market.call("cancel_order", cancel, await demo.get("binance", "demo"))
        events = await event_log.wait(lambda ev: ("canceled", 30) in statuses(ev, "rest-2"))
        assert status_polls(sim) == 0
        assert await published_by(executor, Counter(stream=2)) == Counter(stream=2)
    assert statuses(events, "rest-2") == [("accepted", 0), ("partially_filled", 30), ("canceled", 30)]
    assert [e.command_id for e in events if e.client_order_id == "rest-2"] == ["rest-2"] * 3
    assert_no_duplicates(events)


async def test_while_the_stream_is_down_polls_follow_and_a_reconnect_reconciles(
        nats_url: str, bus: Any, event_log: EventLog, sim: Simulator) -> None:
    no_status = {"kind": "error_5xx", "venue": "binance", "route": "GET /api/v3/order"}
    async with HttpTransport() as http, replica(nats_url, sim) as executor:
        streams = executor.tracker.streams
        market = Venue("binance", sim.binance_url, http)
        price = await market.best_bid("NKN-USDT") + Decimal("0.0001")
        await publish(bus.jetstream(), buy("binance", "NKN-USDT", "rest-3", "1000", price))
        await event_log.wait(lambda ev: ("accepted", 0) in statuses(ev, "rest-3"))
        await followed(executor, "binance", "rest-3")
        connects = streams.sessions[("binance", "demo")].connects

        # 1. the stream drops and cannot come back: polling finds the fill (status, then
        #    the trade history, which names it)
        count_status_polls(sim)
        sim.binance.private_refused = True
        sim.binance.drop_private()
        await streams.until(lambda: not streams.covers("binance", "demo", "rest-3"), 10)
        await market.take("NKN-USDT", "200", 4)
        await event_log.wait(lambda ev: ("partially_filled", 200) in statuses(ev, "rest-3"))
        assert await published_by(executor, Counter(trades=1)) == Counter(trades=1) and status_polls(sim) > 0

        # 2. a fill nobody sees (no stream, status queries failing) ...
        sim.set_faults([no_status])
        await market.take("NKN-USDT", "500", 5)
        # ... is found by the poll that reconciles the stream once it is back
        sim.set_faults([])
        sim.binance.private_refused = False
        await followed(executor, "binance", "rest-3")
        events = await event_log.wait(lambda ev: ("partially_filled", 700) in statuses(ev, "rest-3"))
        assert await published_by(executor, Counter(trades=2)) == Counter(trades=2)
        assert streams.sessions[("binance", "demo")].connects > connects

        # 3. and the stream carries the rest
        count_status_polls(sim)
        await market.take("NKN-USDT", "300", 6)
        events = await event_log.wait(lambda ev: ("filled", 1000) in statuses(ev, "rest-3"))
        assert status_polls(sim) == 0 and await published_by(executor, Counter(trades=2, stream=1)) == \
            Counter(trades=2, stream=1)
    assert statuses(events, "rest-3") == [("accepted", 0), ("partially_filled", 200), ("partially_filled", 700),
                                          ("filled", 1000)]
    assert_no_duplicates(events)


async def test_an_order_the_stream_saw_from_its_start_is_never_polled_and_its_fills_publish_once(
        nats_url: str, bus: Any, event_log: EventLog, sim: Simulator) -> None:
    """A buy that crosses the ask fills partly on arrival: the placement's answer and the
    stream both report that fill (in either order). The command ends ``accepted``; the
    stream, which reported the order from its beginning, publishes that fill once, with its
    trade id and fee, and then the rest."""
    async with HttpTransport() as http, replica(nats_url, sim) as executor:
        market = Venue("binance", sim.binance_url, http)
        book = await market.call("orderbook", OrderBookQuery(symbol="NKN-USDT", depth=5), None)
        await publish(bus.jetstream(), buy("binance", "NKN-USDT", "rest-4", "100", book.bids[0].price))
        await event_log.wait(lambda ev: ("accepted", 0) in statuses(ev, "rest-4"))
        await followed(executor, "binance", "rest-4")
        count_status_polls(sim)
        ask = book.asks[0]
        await publish(bus.jetstream(), buy("binance", "NKN-USDT", "cross-1", str(ask.size + 1000), ask.price))
        await event_log.wait(lambda ev: ("partially_filled", ask.size) in statuses(ev, "cross-1"))
        await market.take("NKN-USDT", "1000", 7)  # the rest of cross-1 is the best bid now
        events = await event_log.wait(lambda ev: ("filled", ask.size + 1000) in statuses(ev, "cross-1"))
        assert status_polls(sim) == 0
        assert await published_by(executor, Counter(stream=2)) == Counter(stream=2)
    assert statuses(events, "cross-1") == [("accepted", 0), ("partially_filled", ask.size), ("filled", ask.size + 1000)]
    mine = [e for e in events if e.client_order_id == "cross-1"]
    assert [e.command_id for e in mine] == ["cross-1"] * 3
    assert [e.last_fill_quantity for e in mine[1:]] == [ask.size, 1000] and all(e.trade_id and e.fee is not None for e in mine[1:])
    assert_no_duplicates(events)
