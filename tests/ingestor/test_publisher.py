"""The ingestor's Publisher against a real nats-server: batched, in order, nothing left behind."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import nats
import pytest
from nats.errors import ConnectionClosedError

import schemas
from schemas.market import MarketData, Trade
from services.ingestor.service import Publisher, batch_writer


def trade(i: int) -> Trade:
    return Trade(venue="kraken", symbol="XMR-USD", ts_event=i, ts_recv=i, trade_id=str(i),
                 price=Decimal("100.5"), quantity=Decimal("0.25"), side="buy")


@pytest.mark.parametrize("path", ["batch", "publish"])
async def test_frames_published_back_to_back_arrive_whole_and_in_order(path: str, nats_url: str) -> None:
    """Both ways of handing a batch to the client (batch_writer, nats-py's publish)."""
    nc = await nats.connect(nats_url)
    got: list = []

    async def collect(msg) -> None:
        got.append(schemas.decode(msg.data, MarketData))

    await nc.subscribe("md.kraken.>", cb=collect)
    await nc.flush()
    publisher = Publisher(nc)
    if path == "publish":
        publisher._raw = False  # as for a client without the internals batch_writer uses
    else:
        assert batch_writer(nc) is not None
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


class RecordingClient:
    """The parts of a nats-py client batch_writer uses, keeping what would be sent."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.stats = {"out_msgs": 0, "out_bytes": 0}
        self._flush_queue = None
        self._max_payload = 1024 * 1024
        self.published: list[tuple[str, bytes]] = []

    async def _send_command(self, cmd: bytes, priority: bool = False) -> None:
        self.sent.append(cmd)

    async def _flush_pending(self) -> None:
        pass

    async def publish(self, subject: str, payload: bytes) -> None:
        self.published.append((subject, payload))


async def test_the_batch_path_sends_the_bytes_nats_py_would() -> None:
    from nats.protocol.command import pub_cmd

    client = RecordingClient()
    write = batch_writer(client)
    assert write is not None
    batch = [(f"md.kraken.trade.XMR-USD", schemas.encode(trade(i))) for i in range(5)] + [("md.kraken.status", b"{}")]
    await write(batch)
    assert client.sent == [b"".join(pub_cmd(subject, "", payload) for subject, payload in batch)]
    assert client.stats == {"out_msgs": 6, "out_bytes": sum(len(p) for _, p in batch)}
    client._max_payload = 10  # a payload over the server's limit: the public path, which refuses it
    await write(batch)
    assert client.published == batch and len(client.sent) == 1


def test_a_client_without_the_internals_gets_the_public_path() -> None:
    assert batch_writer(object()) is None
