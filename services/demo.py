"""`make demo` / `exbus demo`: the whole system on the embedded default, printing what flows.

Today it shows the bus: the embedded nats-server, streams and buckets, one order command
through ORDERS (published twice: the server drops the duplicate by Nats-Msg-Id) read
back by a pull consumer, then a live view of subject rates until Ctrl-C or ``--seconds``.
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
    async with Bus(config, name="demo") as bus:
        where = "embedded nats-server" if bus.server else "NATS"
        print(f"exbus demo: {where} at {bus.url}", file=out)
        if bus.report:
            print(f"streams and buckets: created {bus.report.created or '-'}, updated "
                  f"{bus.report.updated or '-'}, unchanged {bus.report.unchanged or '-'}", file=out)
        rates = SubjectRates(">")
        await rates.start(bus.nc)
        await order_round_trip(bus, out)
        await rates.show(out, stop)
        await rates.stop()
    print("exbus demo: stopped cleanly", file=out)
    return 0
