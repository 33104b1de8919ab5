"""A venue's private stream driven the way the executor drives it, without the executor:
exbus's private stream adapter over a real WebSocket to the simulator, and exbus's REST
adapter for the orders that make it move. Shared by the ``test_private_<venue>.py`` tests.

:func:`open_probe` connects one account's stream (REST ``open_op`` first where the venue
has one, the subscribe messages, the venue's ``Send`` replies, its ping text) and collects
every parsed event; :class:`Trader` places, fills and cancels through the REST adapter.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, AsyncIterator, Callable

from websockets.asyncio.client import ClientConnection, connect

from schemas import CancelOrder, PlaceOrder
from schemas.queries import OrderBookQuery
from schemas.vault import Credentials
from services.executor.credentials import paper_keys
from services.simulator import Simulator
from services.venues import rest_adapter
from services.venues.errors import VenueError
from services.venues.http import HttpTransport
from services.venues.privatews import OrderUpdate, PrivateEvent, PrivateStream, Send, StreamReady, private_stream

_nonces = itertools.count(time.time_ns() // 1000)


def next_nonce() -> int:
    """Increasing nonces for the venues that want them (above any earlier run's)."""
    return max(next(_nonces), time.time_ns() // 1000)


async def rest_call(rest: Any, http: HttpTransport, op: str, args: Any, creds: Credentials | None) -> Any:
    """One REST operation through exbus's adapter; returns the result or the VenueError."""
    nonce = next_nonce() if rest.shared_nonce and creds is not None else None
    request = rest.build_request(op, args, creds, time.time_ns() // 1_000_000, nonce)
    response = await http.send(request, idempotent=op not in ("place_order", "cancel_order"))
    return rest.parse_response(op, response.status, {k.lower(): v for k, v in response.headers.items()},
                               response.body, args)


class Probe:
    """One connected private stream and everything it parsed."""

    def __init__(self, adapter: PrivateStream, ws: ClientConnection) -> None:
        self.adapter = adapter
        self.ws = ws
        self.events: list[PrivateEvent] = []
        self.raw: list[str | bytes] = []
        self.errors: list[Exception] = []
        self._changed = asyncio.Event()

    @property
    def updates(self) -> list[OrderUpdate]:
        return [e for e in self.events if isinstance(e, OrderUpdate)]

    @property
    def ready(self) -> bool:
        return any(isinstance(e, StreamReady) for e in self.events)

    async def read(self) -> None:
        async for data in self.ws:
            self.raw.append(data)
            try:
                events = self.adapter.parse_frame(data, time.time_ns())
            except Exception as e:  # noqa: BLE001 - kept for the test to look at
                self.errors.append(e)
                events = []
            for event in events:
                if isinstance(event, Send):
                    await self.ws.send(event.message)
                self.events.append(event)
            self._changed.set()
            self._changed = asyncio.Event()

    async def until(self, predicate: Callable[["Probe"], Any], timeout: float = 5.0) -> Any:
        """Wait until ``predicate(probe)`` is truthy; returns its value."""
        async def wait() -> Any:
            while True:
                changed = self._changed
                value = predicate(self)
                if value:
                    return value
                await changed.wait()

        return await asyncio.wait_for(wait(), timeout)

    async def updates_of(self, client_order_id: str, n: int, timeout: float = 5.0) -> list[OrderUpdate]:
        """The first ``n`` updates naming ``client_order_id`` (directly or by venue order id)."""
        def found(p: Probe) -> list[OrderUpdate] | None:
            ids = {u.venue_order_id for u in p.updates if u.client_order_id == client_order_id}
            mine = [u for u in p.updates if u.client_order_id == client_order_id
                    or (u.client_order_id is None and u.venue_order_id in ids)]
            return mine[:n] if len(mine) >= n else None

        return await self.until(found, timeout)


@asynccontextmanager
async def open_probe(sim: Simulator, venue: str, account: str = "demo", *, creds: Credentials | None = None,
                     wait_ready: bool = True) -> AsyncIterator[Probe]:
    """Connect ``account``'s private stream on the simulated ``venue`` as the executor does."""
    rest = rest_adapter(venue, sim.url(venue))
    adapter = private_stream(venue, rest)
    assert adapter is not None, f"{venue} has no private stream adapter"
    creds = creds or paper_keys()[(venue, account)]
    token = None
    async with HttpTransport() as http:
        if adapter.open_op is not None:
            token = await rest_call(rest, http, adapter.open_op, None, creds)
            assert not isinstance(token, VenueError), token
    nonce = next_nonce() if rest.shared_nonce else None
    target = adapter.connection(token, creds, time.time_ns() // 1_000_000)
    ping = adapter.keepalive.interval_s if adapter.keepalive.message is None else None
    async with connect(target.url, additional_headers=target.headers, ping_interval=ping, open_timeout=5) as ws:
        probe = Probe(adapter, ws)
        for message in adapter.subscribe_messages(creds, token, time.time_ns() // 1_000_000, nonce):
            await ws.send(message)
        reader = asyncio.create_task(probe.read())
        try:
            if wait_ready and adapter.ready_on_connect is False:
                await probe.until(lambda p: p.ready or reader.done())
            yield probe
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


class Trader:
    """Orders on the simulated venue through exbus's REST adapter: ``demo`` rests, ``taker`` takes."""

    def __init__(self, sim: Simulator, venue: str, http: HttpTransport) -> None:
        self.venue, self.http = venue, http
        self.rest = rest_adapter(venue, sim.url(venue))
        self.keys = paper_keys()
        self.n = 0

    async def call(self, op: str, args: Any, account: str | None = "demo") -> Any:
        result = await rest_call(self.rest, self.http, op, args, self.keys[(self.venue, account)] if account else None)
        assert not isinstance(result, VenueError), result
        return result

    async def best_bid(self, symbol: str) -> Decimal:
        return (await self.call("orderbook", OrderBookQuery(symbol=symbol, depth=5), None)).bids[0].price

    async def rest_buy(self, symbol: str, client_order_id: str, quantity: Decimal, price: Decimal) -> Any:
        """A resting limit buy of ``demo`` (its venue order id is in the result)."""
        order = PlaceOrder(command_id=f"c-{client_order_id}", venue=self.venue, account="demo", symbol=symbol,  # type: ignore[arg-type]
                           client_order_id=client_order_id, side="buy", order_type="limit", quantity=quantity,
                           price=price)
        return await self.call("place_order", order)

    async def take(self, symbol: str, quantity: Decimal) -> None:
        """A market sell of ``taker``: it meets the best bids (the resting buy first when it is the best)."""
        self.n += 1
        order = PlaceOrder(command_id=f"take-{self.n}", venue=self.venue, account="taker", symbol=symbol,  # type: ignore[arg-type]
                           client_order_id=f"taker{self.n}x{time.time_ns() % 10**9}", side="sell",
                           order_type="market", quantity=quantity)
        await self.call("place_order", order, "taker")

    async def cancel(self, symbol: str, client_order_id: str, venue_order_id: str | None = None) -> Any:
        order = CancelOrder(command_id=f"x-{client_order_id}", venue=self.venue, account="demo", symbol=symbol,  # type: ignore[arg-type]
                            client_order_id=client_order_id, venue_order_id=venue_order_id)
        return await self.call("cancel_order", order)


__all__ = ["Probe", "Trader", "next_nonce", "open_probe", "rest_call"]
