"""Helpers of the Upbit and Bithumb private stream tests (test_private_upbit.py,
test_private_bithumb.py): a raw connection authenticated as exbus authenticates it, the
venue's answers, a refused handshake's HTTP error."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, AsyncIterator

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from schemas.vault import Credentials
from services.simulator import Simulator
from services.venues import rest_adapter
from services.venues.privatews import private_stream


def bearer(sim: Simulator, venue: str, creds: Credentials) -> dict[str, str]:
    """The handshake headers exbus's adapter makes (a fresh JWT each time)."""
    adapter = private_stream(venue, rest_adapter(venue, sim.url(venue)))
    assert adapter is not None
    return adapter.connection(None, creds, time.time_ns() // 1_000_000).headers


@asynccontextmanager
async def raw_ws(sim: Simulator, venue: str, path: str, creds: Credentials) -> AsyncIterator[ClientConnection]:
    async with connect(sim.ws_url(venue) + path, additional_headers=bearer(sim, venue, creds), open_timeout=2) as ws:
        yield ws


async def reply(ws: ClientConnection) -> Any:
    data = await asyncio.wait_for(ws.recv(), 2)
    assert isinstance(data, bytes), data  # both venues send binary frames
    return json.loads(data)


async def subscribe(ws: ClientConnection, *types: dict[str, Any], fmt: str | None = None) -> None:
    """Send a request; Upbit and Bithumb acknowledge none, so a PING's answer marks it processed."""
    await ws.send(json.dumps([{"ticket": "test"}, *types, *([{"format": fmt}] if fmt else [])]))
    await ws.send("PING")
    assert await reply(ws) == {"status": "UP"}


async def refusal(url: str, headers: dict[str, str]) -> tuple[int, Any]:
    """The HTTP status and JSON body of a refused upgrade."""
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, additional_headers=headers, open_timeout=2):
            pass
    response = refused.value.response
    assert response.headers["Content-Type"].startswith("application/json")
    return response.status_code, json.loads(response.body)


def ahead_of_us(sim: Simulator, venue: str, code: str) -> Decimal:
    """The recorded size at the best bid, which a new buy there waits behind."""
    return sim.venues[venue].core.levels(code, "buy", 1)[0][1]


__all__ = ["ahead_of_us", "bearer", "raw_ws", "refusal", "reply", "subscribe"]
