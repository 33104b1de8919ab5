"""`make demo` / `exbus demo`: the whole system on the embedded default, printing what flows.

It runs what `exbus up --sim` runs: the embedded nats-server with its streams and
buckets, the venue simulator speaking all nine venues' REST protocols (replaying recorded
Binance and Upbit markets), replays of the seven other venues' market data, the ingestor
publishing normalized market data and the executors placing orders. A sample strategy
then samples the market data, places an order on every venue through ORDERS
(re-publishing the first: the server drops the duplicate), reads back each event and
cancels each order, buys on Upbit at market and asks for its balance; it keeps placing
and canceling on every venue in turn while a live view shows the message rate per
subject and the orders per venue, until Ctrl-C or ``--seconds``.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import uuid
from decimal import Decimal
from typing import Any, TextIO

import schemas
from schemas import CancelOrder, PlaceOrder, subjects
from schemas.queries import BalanceQuery, OrderBookQuery, OrderBookReply
from services.bus.rates import SubjectRates
from services.bus.tail import format_line
from services.config import Config
from services.executor.client import FINAL, OrderClient

DEMO_MARKETS: dict[str, tuple[str, Decimal]] = {
    "binance": ("NKN-USDT", Decimal("100")),
    "coinbase": ("BTC-USD", Decimal("0.01")),
    "kraken": ("BTC-CHF", Decimal("0.01")),
    "bitfinex": ("TESTBTC-TESTUSD", Decimal("0.01")),
    "okx": ("BTC-USDT", Decimal("0.01")),
    "upbit": ("LAMB-KRW", Decimal("1000")),
    "bithumb": ("BTC-KRW", Decimal("0.01")),
    "korbit": ("BTC-KRW", Decimal("0.01")),
    "coinone": ("BTC-KRW", Decimal("0.01")),
}
"""Venue -> the market the sample strategy trades there and its order size."""
_ids = itertools.count(1)
_run = uuid.uuid4().hex[:6]
"""Ids are unique per demo run: ORDERS and KV ``orders`` remember earlier runs' ids."""


def _event_line(event: schemas.OrderEvent) -> str:
    extra = f" error={event.error} ({event.reason})" if event.error else ""
    filled = f" filled {event.filled_quantity}" if event.filled_quantity else ""
    return (f"{event.venue} {event.symbol} {event.client_order_id}: {event.status}"
            f"{' venue order ' + event.venue_order_id if event.venue_order_id else ''}{filled}{extra}")


async def sample_market_data(nc: Any, out: TextIO, stop: asyncio.Event, count: int = 6, timeout_s: float = 10.0) -> None:
    """Print the first market-data messages a strategy subscribed to ``md.>`` receives."""
    got: list[str] = []
    done = asyncio.Event()

    async def on_msg(msg: Any) -> None:
        if len(got) < count:
            got.append(format_line(msg.subject, msg.data)[:150])
            if len(got) == count:
                done.set()

    sub = await nc.subscribe("md.>", cb=on_msg)
    waits = [asyncio.ensure_future(done.wait()), asyncio.ensure_future(stop.wait())]
    await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    for w in waits:
        w.cancel()
    await sub.unsubscribe()
    print(f"market data a strategy subscribed to md.> receives ({len(got)} shown):", file=out)
    for line in got:
        print(f"  {line}", file=out)


async def place_and_cancel(client: OrderClient, out: TextIO, venue: str, show_duplicate: bool = False) -> None:
    """A limit buy a few levels under the best bid (on the venue's tick), then its cancel;
    prints both outcomes."""
    symbol, quantity = DEMO_MARKETS[venue]
    reply = await client.query(venue, None, OrderBookQuery(symbol=symbol, depth=5))
    if not isinstance(reply, OrderBookReply) or not reply.book.bids:
        print(f"strategy: {venue} {symbol}: no book to price an order ({reply})", file=out)
        return
    n = next(_ids)
    order = PlaceOrder(command_id=f"demo-place-{_run}-{n}", venue=venue, account="demo", symbol=symbol,  # type: ignore[arg-type]
                       client_order_id=f"demo{_run}{n}", side="buy", order_type="limit", quantity=quantity,
                       price=reply.book.bids[-1].price, ts_created=schemas.now_ns())
    event = await client.submit(order)
    print(f"strategy: placed {order.side} {order.quantity} {symbol} @ {order.price} -> {_event_line(event)}", file=out)
    if show_duplicate:
        ack = await client.js.publish(subjects.orders_submit(venue, "demo"), schemas.encode(order),
                                      headers={"Nats-Msg-Id": order.command_id})
        print(f"strategy: re-published {order.command_id}: ORDERS dropped it as a duplicate={bool(ack.duplicate)}", file=out)
    if event.status not in ("accepted", "partially_filled"):
        return
    cancel = CancelOrder(command_id=f"demo-cancel-{_run}-{n}", venue=venue, account="demo", symbol=symbol,  # type: ignore[arg-type]
                         client_order_id=order.client_order_id)
    print(f"strategy: canceled -> {_event_line(await client.submit(cancel))}", file=out)


class OrdersPerVenue:
    """Order events per venue and status, for the demo's live view."""

    STATUSES = ("accepted", "partially_filled", "filled", "canceled", "rejected", "failed")

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {}

    async def start(self, nc: Any) -> None:
        async def on_event(msg: Any) -> None:
            event = schemas.decode(msg.data, schemas.OrderEvent)
            row = self.counts.setdefault(event.venue, dict.fromkeys(self.STATUSES, 0))
            row[event.status] = row.get(event.status, 0) + 1

        await nc.subscribe("orders.events.>", cb=on_event)

    def render(self) -> str:
        lines = [f"{'orders per venue':<16}" + "".join(f"{s:>18}" for s in self.STATUSES)]
        for venue in DEMO_MARKETS:
            row = self.counts.get(venue, {})
            lines.append(f"{venue:<16}" + "".join(f"{row.get(s, 0):>18}" for s in self.STATUSES))
        return "\n".join(lines)


async def print_alerts(nc: Any, out: TextIO) -> None:
    """Print every alert on ``alerts.>`` as it comes (a pager bridge would subscribe so)."""

    async def on_alert(msg: Any) -> None:
        a = schemas.decode(msg.data, schemas.Alert)
        print(f"alert: {msg.subject} [{a.service}] {a.summary}", file=out)

    await nc.subscribe(subjects.ALERTS_ALL, cb=on_alert)


async def sample_strategy(system: Any, nc: Any, out: TextIO, stop: asyncio.Event) -> None:
    """What a strategy does with exbus (on ``nc``, its own connection), once; then it keeps
    trading until ``stop``."""
    await asyncio.wait_for(system.executors_ready.wait(), 30)
    client = OrderClient(nc)
    for i, venue in enumerate(DEMO_MARKETS):
        await place_and_cancel(client, out, venue, show_duplicate=i == 0)
    buy = PlaceOrder(command_id=f"demo-upbit-{_run}", venue="upbit", account="demo", symbol="WAVES-KRW",
                     client_order_id=f"demo-upbit-{_run}", side="buy", order_type="market", quote_quantity=Decimal("10000"))
    print(f"strategy: market buy 10000 KRW of WAVES on upbit -> {_event_line(await client.submit(buy, until=FINAL))}", file=out)
    balance = await client.query("upbit", "demo", BalanceQuery())
    shown = ", ".join(f"{b.asset} {b.free}" for b in getattr(balance, "balances", [])[:4])
    print(f"strategy: upbit balances: {shown}", file=out)
    turns = itertools.cycle(DEMO_MARKETS)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=1.0)
        except asyncio.TimeoutError:
            await place_and_cancel(client, out, next(turns))


async def run_demo(config: Config, stop: asyncio.Event, seconds: float | None = None, out: TextIO = sys.stdout) -> int:
    """Run the demo until ``stop`` is set or ``seconds`` have passed; returns an exit status."""
    from services.up import System

    if seconds:
        asyncio.get_running_loop().call_later(seconds, stop.set)
    async with System(config, stop, sim=True, executors=2, out=out) as system:
        bus = system.bus
        where = "embedded nats-server" if bus.server else "NATS"
        print(f"exbus demo: {where} at {bus.url}", file=out)
        if bus.report:
            print(f"streams and buckets: created {bus.report.created or '-'}, updated "
                  f"{bus.report.updated or '-'}, unchanged {bus.report.unchanged or '-'}", file=out)
        rates = SubjectRates(">")
        await rates.start(bus.nc)
        orders = OrdersPerVenue()
        await orders.start(bus.nc)
        strategy_nc = await system.connect_as("strategy", "exbus-demo-strategy")  # what deploy/ lets strategies do
        await print_alerts(strategy_nc, out)
        await sample_market_data(strategy_nc, out, stop)
        strategy = asyncio.create_task(sample_strategy(system, strategy_nc, out, stop))
        await rates.show(out, stop, extra=orders.render)
        await rates.stop()
        try:
            await asyncio.wait_for(strategy, 30)
        except Exception as e:  # the strategy's failure is the demo's
            print(f"exbus demo: sample strategy failed: {e!r}", file=out)
            return 1
    print("exbus demo: stopped cleanly" if not system.failed else f"exbus demo: failed services {system.failed}", file=out)
    return 1 if system.failed else 0
