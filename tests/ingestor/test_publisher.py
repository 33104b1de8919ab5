"""The ingestor's Publisher against a real nats-server: batched, in order, nothing left behind."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import nats
import pytest
from nats.errors import ConnectionClosedError

import schemas
from schemas.market import MarketData, Trade
from services.ingestor.service import Publisher


def trade(i: int) -> Trade:
    return Trade(venue="kraken", symbol="XMR-USD", ts_event=i, ts_recv=i, trade_id=str(i),
                 price=Decimal("100.5"), quantity=Decimal("0.25"), side="buy")


async def test_frames_published_back_to_back_arrive_whole_and_in_order(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    got: list = []

    async def collect(msg) -> None:
        got.append(schemas.decode(msg.data, MarketData))

    await nc.subscribe("md.kraken.>", cb=collect)
    await nc.flush()
    publisher = Publisher(nc)
    for frame in range(300):  # one to three messages a frame, as a busy feed hands them over
        publisher.publish([trade(frame * 3 + k) for k in range(frame % 3 + 1)])
        if frame % 50 == 0:
            await asyncio.sleep(0)
    await publisher.flush()
    expected = [trade(f * 3 + k) for f in range(300) for k in range(f % 3 + 1)]
    for _ in range(100):
        if len(got) >= len(expected):
            break
        await asyncio.sleep(0.05)
    assert got == expected
    assert publisher.published[("kraken", "trade")] == len(expected)
    await nc.drain()


async def test_a_write_that_fails_is_raised_by_the_next_publish(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    publisher = Publisher(nc)
    await nc.close()
    publisher.publish([trade(1)])  # queued; the writer finds the client closed
    await publisher.flush()
    with pytest.raises(ConnectionClosedError):
        publisher.publish([trade(2)])
    publisher.publish([trade(3)])  # raised once: later messages are queued again
    await publisher.flush()
