"""The one REST transport: sends an HttpRequest with aiohttp and returns status, headers
and body. Pooled connections, timeouts, and a precise failure class: NetworkError when
nothing can have reached the venue, OutcomeUnknown when a non-idempotent request may have."""

from __future__ import annotations

import asyncio

import aiohttp
import msgspec

from services.venues.base import HttpRequest
from services.venues.errors import NetworkError, OutcomeUnknown


class HttpResponse(msgspec.Struct, frozen=True):
    status: int
    headers: dict[str, str]
    body: bytes


class HttpTransport:
    """Pooled aiohttp client shared by every venue adapter of a process."""

    def __init__(self, *, timeout_s: float = 10.0, connect_timeout_s: float = 3.0, pool_size: int = 64) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, connect=connect_timeout_s)
        self.pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.pool_size, ttl_dns_cache=300, enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(timeout=self.timeout, connector=connector, auto_decompress=True)
        return self._session

    async def send(self, request: HttpRequest, *, idempotent: bool) -> HttpResponse:
        """Send ``request``; raise NetworkError or OutcomeUnknown (never a raw aiohttp error)."""
        where = f"{request.method} {request.url.split('?')[0]}"
        try:
            async with self._client().request(
                request.method, request.url, headers=request.headers, data=request.body, allow_redirects=False,
            ) as resp:
                body = await resp.read()
                return HttpResponse(resp.status, {k: v for k, v in resp.headers.items()}, body)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, aiohttp.InvalidURL) as e:
            # the TCP/TLS connection was never established: the request was not sent
            raise NetworkError(f"{where}: {type(e).__name__}: {e}") from None
        except (asyncio.TimeoutError, aiohttp.ClientError) as e:
            message = f"{where}: {type(e).__name__}: {e or 'timed out'}"
            if idempotent:
                raise NetworkError(message) from None
            raise OutcomeUnknown(message) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> "HttpTransport":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
