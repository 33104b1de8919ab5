"""A strategy's order submission through a moment when ORDERS cannot take it (a leader
election after a NATS node was lost looks the same to the client: no responders, then
timeouts): OrderClient keeps publishing until the stream acknowledges, and the repeats
are dropped by the command id. Real nats-server; the stream appears while it waits."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import nats

from schemas.orders import PlaceOrder
from services.bus.streams import ORDERS, ensure_streams
from services.config import StreamSettings
from services.executor.client import OrderClient


async def test_a_command_published_while_orders_is_unavailable_goes_in_once_when_it_is_back(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        command = PlaceOrder(command_id="during-election-1", venue="binance", account="demo", symbol="BTC-USDT",
                             client_order_id="during-election-1", side="buy", order_type="limit",
                             quantity=Decimal("1"), price=Decimal("100"))
        publishing = asyncio.create_task(OrderClient(nc)._publish(command))
        await asyncio.sleep(0.5)  # no stream yet: every attempt is refused (no responders)
        assert not publishing.done(), "the publish gave up while ORDERS could not take it"
        await ensure_streams(js, StreamSettings(replicas=1))
        await asyncio.wait_for(publishing, 10)
        await asyncio.wait_for(OrderClient(nc)._publish(command), 10)  # the strategy sends it again
        assert (await js.stream_info(ORDERS)).state.messages == 1, "the repeat was not de-duplicated"
    finally:
        await nc.close()
