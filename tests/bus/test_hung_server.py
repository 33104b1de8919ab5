"""A NATS server that hangs without closing its sockets (SIGSTOP: a frozen host) is found
dead by the client's pings within a few ping intervals, not nats-py's default of two
unanswered pings two minutes apart; the client reconnects once the server answers again."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from services.bus.connect import connect
from services.bus.embedded import EmbeddedNats
from services.config import NatsSettings


async def test_a_hung_server_is_taken_for_dead_after_unanswered_pings(tmp_path: Path) -> None:
    async with EmbeddedNats(tmp_path / "nats") as server:
        settings = NatsSettings(url=server.url, ping_interval_s=0.3)
        down, up = asyncio.Event(), asyncio.Event()
        nc = await connect(settings, name="hung-server-test", disconnected_cb=_set(down), reconnected_cb=_set(up))
        assert server.pid is not None
        os.kill(server.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            await asyncio.wait_for(down.wait(), 5)
            noticed = time.monotonic() - stopped
        finally:
            os.kill(server.pid, signal.SIGCONT)
        await asyncio.wait_for(up.wait(), 10)
        await nc.flush(timeout=5)  # usable again
        await nc.close()
    assert noticed < 3.0, f"a hung server noticed after {noticed:.1f} s"


def _set(event: asyncio.Event):
    async def callback() -> None:
        event.set()

    return callback
