"""The one REST transport: status/headers/body on success, and a precise failure class:
NetworkError when nothing reached the venue, OutcomeUnknown when a non-idempotent
request may have been executed (timeouts and dropped connections after sending)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web

from services.venues.base import HttpRequest
from services.venues.errors import NetworkError, OutcomeUnknown
from services.venues.http import HttpTransport
from tests.local_http import serve_http


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def venue():
    """A loopback HTTP server with routes that answer, hang, or drop the connection."""
    received: list[str] = []

    async def ok(request: web.Request) -> web.Response:
        received.append(await request.text())
        return web.json_response({"ok": True}, headers={"X-MBX-USED-WEIGHT-1M": "7"})

    async def hang(request: web.Request) -> web.Response:
        received.append(await request.text())
        await asyncio.sleep(2)  # longer than the client timeout
        return web.Response()

    async def drop(request: web.Request) -> web.Response:
        received.append(await request.text())
        request.transport.close()  # the order was taken; the answer never comes
        await asyncio.sleep(1)
        return web.Response()

    async with serve_http([("*", "/ok", ok), ("*", "/hang", hang), ("*", "/drop", drop)]) as url:
        yield url, received


async def test_success_returns_status_headers_and_body(venue) -> None:
    url, received = venue
    async with HttpTransport() as http:
        resp = await http.send(HttpRequest("POST", f"{url}/ok", {"Content-Type": "text/plain"}, b"symbol=BTCUSDT"), idempotent=False)
    assert resp.status == 200 and resp.headers["X-MBX-USED-WEIGHT-1M"] == "7" and resp.body == b'{"ok": true}'
    assert received == ["symbol=BTCUSDT"]


async def test_refused_connection_is_a_network_error_even_for_orders() -> None:
    async with HttpTransport(connect_timeout_s=1) as http:
        with pytest.raises(NetworkError):
            await http.send(HttpRequest("POST", f"http://127.0.0.1:{_free_port()}/order", {}, b"x"), idempotent=False)


async def test_timeout_after_sending_an_order_is_outcome_unknown(venue) -> None:
    url, received = venue
    async with HttpTransport(timeout_s=0.5) as http:
        with pytest.raises(OutcomeUnknown):
            await http.send(HttpRequest("POST", f"{url}/hang", {}, b"order"), idempotent=False)
        with pytest.raises(NetworkError):  # a query may simply be retried
            await http.send(HttpRequest("GET", f"{url}/hang", {}), idempotent=True)
    assert received[0] == "order"  # the venue did receive it


async def test_dropped_connection_after_an_order_is_outcome_unknown(venue) -> None:
    url, _ = venue
    async with HttpTransport() as http:
        with pytest.raises(OutcomeUnknown):
            await http.send(HttpRequest("POST", f"{url}/drop", {}, b"order"), idempotent=False)


async def test_connections_are_pooled(venue) -> None:
    url, _ = venue
    async with HttpTransport() as http:
        for _ in range(5):
            await http.send(HttpRequest("GET", f"{url}/ok", {}), idempotent=True)
        connector = http._client().connector
        assert connector is not None and len(connector._conns) == 1  # one kept-alive connection reused
