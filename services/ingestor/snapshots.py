"""REST book snapshots for resync, under a per-venue rate budget.

The request and its parsing are the venue's REST adapter's (``orderbook`` operation:
``build_request`` / ``parse_response`` in services.venues); this module only sends it,
paces it, and turns the reply into a :class:`BookUpdate` for the book engine.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from schemas.market import BookSnapshot
from schemas.queries import OrderBookQuery
from services.venues.wsbase import BookUpdate


class SnapshotError(RuntimeError):
    """A book snapshot could not be fetched or read."""


class SnapshotSource(Protocol):
    async def fetch(self, venue: str, symbol: str, depth: int) -> BookUpdate:
        """The venue's current book of ``symbol`` (``sequence`` = its update id, if any)."""
        ...


class RateBudget:
    """Token bucket: ``rate`` requests per second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        """Wait until a request may be sent."""
        async with self._lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


def rebase(url: str, base: str) -> str:
    """``url`` with its scheme and host replaced by those of ``base`` (simulator, replay)."""
    u, b = urlsplit(url), urlsplit(base)
    return urlunsplit((b.scheme, b.netloc, (b.path.rstrip("/") + u.path) if b.path else u.path, u.query, ""))


def to_book_update(book: BookSnapshot, ts_recv: int) -> BookUpdate:
    """A published-form snapshot (from the REST adapter) as input for the book engine."""
    return BookUpdate(
        symbol=book.symbol, snapshot=True, ts_event=book.ts_event or ts_recv, ts_recv=ts_recv, sequence=book.venue_sequence,
        bids=[(lv.price, lv.size) for lv in book.bids], asks=[(lv.price, lv.size) for lv in book.asks],
    )


class RestSnapshots:
    """Book snapshots through the venues' REST adapters, and public GETs (trade backfill).

    ``base_urls`` sends a venue's requests elsewhere (the replay server, the simulator, a
    testnet), with the venue's ``headers`` (a testnet's); ``tap`` sees every response
    (``exbus record``).
    """

    def __init__(self, *, base_urls: dict[str, str] | None = None, headers: dict[str, dict[str, str]] | None = None,
                 tap: Any = None, timeout_s: float = 10.0) -> None:
        self.base_urls = base_urls or {}
        self.headers = headers or {}
        self.tap = tap
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def get(self, venue: str, url: str) -> bytes:
        """Body of a public GET (trade backfill); raises SnapshotError unless 200."""
        target = rebase(url, self.base_urls[venue]) if venue in self.base_urls else url
        try:
            async with self._client().get(target, headers=self.headers.get(venue)) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as e:
            raise SnapshotError(f"GET {url}: {type(e).__name__}: {e}") from None
        if self.tap is not None:
            self.tap.http(url, body)
        if status != 200:
            raise SnapshotError(f"GET {url}: HTTP {status}: {body[:200]!r}")
        return body

    async def fetch(self, venue: str, symbol: str, depth: int) -> BookUpdate:
        adapter = _rest_adapter(venue)
        query = OrderBookQuery(symbol=symbol, depth=depth)
        request = adapter.build_request("orderbook", query, None, time.time_ns() // 1_000_000)
        url = rebase(request.url, self.base_urls[venue]) if venue in self.base_urls else request.url
        try:
            sent = {**request.headers, **self.headers.get(venue, {})}
            async with self._client().request(request.method, url, headers=sent or None,
                                             data=request.body or None) as resp:
                body = await resp.read()
                status, headers = resp.status, dict(resp.headers)
        except (aiohttp.ClientError, TimeoutError) as e:
            raise SnapshotError(f"{venue} {symbol}: {type(e).__name__}: {e}") from None
        ts_recv = time.time_ns()
        if self.tap is not None:
            self.tap.http(request.url, body)
        result = adapter.parse_response("orderbook", status, headers, body, query)
        book = getattr(result, "book", result)
        if not isinstance(book, BookSnapshot):
            raise SnapshotError(f"{venue} {symbol}: {result!r}")
        return to_book_update(book, ts_recv)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _rest_adapter(venue: str) -> Any:
    venues = importlib.import_module("services.venues")
    factory = getattr(venues, "rest_adapter", None)
    if factory is None:
        raise SnapshotError(f"no REST adapter to fetch {venue} book snapshots (services.venues.rest_adapter)")
    return factory(venue)


__all__ = ["RateBudget", "RestSnapshots", "SnapshotError", "SnapshotSource", "rebase", "to_book_update"]
