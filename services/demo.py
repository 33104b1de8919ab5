"""`make demo` / `exbus demo`: the whole system on the embedded default, printing what flows.

It runs what `exbus up --sim` runs (embedded nats-server, streams and buckets, the venue
simulator replaying recorded Binance/Upbit markets, the ingestor publishing normalized
market data), sends one order command through ORDERS (published twice: the server drops
the duplicate by Nats-Msg-Id) and reads it back, samples the market data a strategy
sees, then shows a live view of subject rates until Ctrl-C or ``--seconds``.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from decimal import Decimal
from typing import TextIO

import schemas
from schemas import PlaceOrder, subjects
from services.bus.lifecycle import Bus
from services.bus.rates import SubjectRates
from services.bus.tail import format_line
from services.bus.streams import ORDERS
from services.config import Config

DEMO_CONSUMER = "demo-readback"


def sample_order() -> PlaceOrder:
    """The order command the demo sends: a small Binance limit buy."""
    coid = f"demo-{uuid.uuid4().hex[:12]}"
    return PlaceOrder(
        command_id=coid, venue="binance", account="demo", symbol="BTC-USDT", client_order_id=coid,
        side="buy", order_type="limit", quantity=Decimal("0.001"), price=Decimal("30000.00"),
        ts_created=schemas.now_ns(),
    )


async def order_round_trip(bus: Bus, out: TextIO) -> PlaceOrder:
    """Publish one command through ORDERS twice (de-duplicated) and read it back."""
    order = sample_order()
    subject = subjects.orders_submit(order.venue, order.account)
    headers = {"Nats-Msg-Id": order.command_id}
    first = await bus.js.publish(subject, schemas.encode(order), headers=headers)
    again = await bus.js.publish(subject, schemas.encode(order), headers=headers)
    print(f"published {order.command_id} on {subject}: stream {first.stream} seq {first.seq}; "
          f"re-published: duplicate={bool(again.duplicate)}", file=out)
    sub = await bus.js.pull_subscribe(subject, durable=DEMO_CONSUMER, stream=ORDERS)
    try:
        while True:
            (msg,) = await sub.fetch(1, timeout=5)
            back = schemas.decode(msg.data, schemas.OrderCommand)
            await msg.ack_sync()
            if back.command_id == order.command_id:
                break
        print(f"read back from {ORDERS}: {type(back).__name__} "
              f"{back.side} {back.quantity} {back.symbol} @ {back.price} (client_order_id {back.client_order_id})",
              file=out)
        assert back == order, "the command read back differs from the one sent"
    finally:
        await sub.unsubscribe()
        await bus.js.delete_consumer(ORDERS, DEMO_CONSUMER)
    return order


async def run_demo(config: Config, stop: asyncio.Event, seconds: float | None = None, out: TextIO = sys.stdout) -> int:
    """Run the demo until ``stop`` is set or ``seconds`` have passed; returns an exit status."""
    if seconds:
        asyncio.get_running_loop().call_later(seconds, stop.set)
    from services.up import System

    async with System(config, stop, sim=True, out=out) as system:
        bus = system.bus
        where = "embedded nats-server" if bus.server else "NATS"
        print(f"exbus demo: {where} at {bus.url}", file=out)
        if bus.report:
            print(f"streams and buckets: created {bus.report.created or '-'}, updated "
                  f"{bus.report.updated or '-'}, unchanged {bus.report.unchanged or '-'}", file=out)
        rates = SubjectRates(">")
        await rates.start(bus.nc)
        await order_round_trip(bus, out)
        await sample_market_data(bus, out, stop)
        await rates.show(out, stop)
        await rates.stop()
    print("exbus demo: stopped cleanly" if not system.failed else f"exbus demo: failed services {system.failed}", file=out)
    return 1 if system.failed else 0


async def sample_market_data(bus: Bus, out: TextIO, stop: asyncio.Event, count: int = 8, timeout_s: float = 10.0) -> None:
    """Print the first market-data messages a strategy subscribed to ``md.>`` receives."""
    got: list[str] = []
    done = asyncio.Event()

    async def on_msg(msg) -> None:
        if len(got) < count:
            got.append(format_line(msg.subject, msg.data)[:160])
            if len(got) == count:
                done.set()

    sub = await bus.nc.subscribe("md.>", cb=on_msg)
    waits = [asyncio.ensure_future(done.wait()), asyncio.ensure_future(stop.wait())]
    await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    for w in waits:
        w.cancel()
    await sub.unsubscribe()
    print(f"market data a strategy subscribed to md.> receives ({len(got)} shown):", file=out)
    for line in got:
        print(f"  {line}", file=out)
