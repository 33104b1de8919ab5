"""The strategy client API against a real executor and the simulator: ids made for the
caller, place/cancel awaited to their outcome, order events and market data delivered
as schemas objects."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import schemas
from schemas import subjects
from schemas.market import Trade
from schemas.orders import PlaceOrder
from services.executor.client import OrderClient, new_client_order_id

from .conftest import fleet


def test_generated_client_order_ids_are_valid_everywhere_unique_and_time_ordered() -> None:
    ids = [new_client_order_id("mm1") for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"mm1[a-z0-9]{20,29}", i) and len(i) <= 32 for i in ids)  # OKX: 1-32 alphanumerics
    assert ids == sorted(ids, key=lambda i: (len(i), i))  # base 36 of the time: later ids sort after
    with pytest.raises(ValueError, match="prefix"):
        new_client_order_id("has-dash")


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", max_size=8))
def test_any_valid_prefix_gives_an_id_the_contract_accepts(prefix: str) -> None:
    coid = new_client_order_id(prefix)
    order = PlaceOrder(command_id=coid, venue="okx", account="main", symbol="BTC-USDT", client_order_id=coid,
                       side="buy", order_type="limit", quantity=Decimal("1"), price=Decimal("1"))
    assert schemas.decode(schemas.encode(order), PlaceOrder) == order


async def test_place_then_cancel_with_generated_ids_and_live_events(nats_url, bus, simulator) -> None:
    client = OrderClient(bus)
    seen: list[schemas.OrderEvent] = []
    got_two = asyncio.Event()

    async def on_event(event: schemas.OrderEvent) -> None:
        seen.append(event)
        if len(seen) >= 2:
            got_two.set()

    events = await client.order_events(on_event, venue="binance", account="demo")
    async with fleet(nats_url, simulator):
        accepted = await client.place("binance", "demo", "NKN-USDT", "buy", "limit", quantity="100", price="0.30",
                                      prefix="t1")
        assert accepted.status == "accepted" and accepted.client_order_id.startswith("t1")
        assert accepted.venue_order_id
        canceled = await client.cancel("binance", "demo", "NKN-USDT", accepted.client_order_id)
        assert canceled.status == "canceled" and canceled.client_order_id == accepted.client_order_id
        rejected = await client.place("binance", "demo", "NKN-USDT", "buy", "limit", quantity="100", price="0.30001")
        assert rejected.status == "rejected"  # breaks the tick size: refused before it leaves
        await asyncio.wait_for(got_two.wait(), 30)
    await events.unsubscribe()
    assert [e.status for e in seen if e.client_order_id == accepted.client_order_id][:2] == ["accepted", "canceled"]
    coids = {o["client_order_id"] for o in simulator.ledger_snapshot()["orders"]}
    assert accepted.client_order_id in coids and rejected.client_order_id not in coids


async def test_market_data_arrives_decoded(bus) -> None:
    client = OrderClient(bus)
    got: asyncio.Future = asyncio.get_running_loop().create_future()

    async def on_md(message: object) -> None:
        if not got.done():
            got.set_result(message)

    sub = await client.market_data(on_md, venue="kraken", channel="trade")
    trade = Trade(venue="kraken", symbol="BTC-USD", ts_event=1, ts_recv=2, price=Decimal("30000.1"),
                  quantity=Decimal("0.5"), side="buy", trade_id="t-1")
    await bus.publish(subjects.md("kraken", "trade", "BTC-USD"), schemas.encode(trade))
    await bus.publish(subjects.md("okx", "trade", "BTC-USDT"), b"not for this subscriber")
    assert await asyncio.wait_for(got, 10) == trade
    await sub.unsubscribe()
