"""What strategies use: place and cancel orders through ORDERS and await their outcome
event; subscribe to market data and order events; ask queries over request/reply.
Strategies never talk to a venue."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from decimal import Decimal
from typing import Any, Awaitable, Callable

from nats.errors import Error as NatsError

import schemas
from schemas import subjects
from schemas.market import MarketData
from schemas.orders import CancelOrder, OrderEvent, PlaceOrder
from schemas.queries import Query, QueryReply

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_PREFIX = re.compile(r"^[A-Za-z0-9]{0,8}$")


def _base36(n: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
    return out or "0"


def new_client_order_id(prefix: str = "x") -> str:
    """A fresh client order id every venue takes as it is: at most 8 prefix characters, then
    the time in ns and 40 random bits, base 36, letters and digits only (<= 32 characters,
    OKX's limit), so ids sort by creation time."""
    if not _PREFIX.match(prefix):
        raise ValueError(f"client order id prefix {prefix!r}: up to 8 letters or digits")
    return f"{prefix}{_base36(time.time_ns())}{_base36(secrets.randbits(40)).rjust(8, '0')}"

OUTCOMES = frozenset({"accepted", "partially_filled", "filled", "canceled", "expired", "rejected", "failed"})
"""The statuses that end a command."""
FINAL = frozenset({"filled", "canceled", "expired", "rejected", "failed"})
"""The statuses that end an order (a market order's command ends ``accepted``; its fills follow)."""
PUBLISH_ATTEMPT_S = 1.0
"""One publish of a command: one that went to an ORDERS leader as its node died is sent
again after this (the stream drops the repeat by its command id)."""


class OrderClient:
    """A strategy's handle on exbus over an existing NATS connection."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.js = nc.jetstream()

    async def submit(self, command: PlaceOrder | CancelOrder, timeout_s: float = 30.0,
                     until: frozenset[str] = OUTCOMES) -> OrderEvent:
        """Publish ``command`` (de-duplicated by its command id) and return the event that
        ends it (``until=FINAL``: the event that ends its order); raises TimeoutError if none
        arrives in time. The publish is repeated until the stream takes it (a failover)."""
        subject = subjects.orders_event(command.venue, command.account, command.client_order_id)
        outcome: asyncio.Future[OrderEvent] = asyncio.get_running_loop().create_future()

        async def on_event(msg: Any) -> None:
            event = schemas.decode(msg.data, OrderEvent)
            if event.command_id == command.command_id and event.status in until and not outcome.done():
                outcome.set_result(event)

        sub = await self.nc.subscribe(subject, cb=on_event)
        try:
            async with asyncio.timeout(timeout_s):
                await self._publish(command)
                return await outcome
        finally:
            await sub.unsubscribe()

    async def _publish(self, command: PlaceOrder | CancelOrder) -> None:
        """Publish until ORDERS acknowledges: through a leader election (a NATS node lost) the
        stream has no leader for a few seconds; the repeats are de-duplicated by command id."""
        subject, data = subjects.orders_submit(command.venue, command.account), schemas.encode(command)
        pause = 0.05
        while True:
            try:
                await self.js.publish(subject, data, headers={"Nats-Msg-Id": command.command_id},
                                      timeout=PUBLISH_ATTEMPT_S)
                return
            except (NatsError, asyncio.TimeoutError):
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.2)

    async def place(self, venue: str, account: str, symbol: str, side: str, order_type: str, *,
                    quantity: Decimal | str | None = None, price: Decimal | str | None = None,
                    quote_quantity: Decimal | str | None = None, time_in_force: str = "gtc",
                    post_only: bool = False, client_order_id: str | None = None, prefix: str = "x",
                    timeout_s: float = 30.0) -> OrderEvent:
        """Place one order and return the event that ends its command (accepted, filled,
        rejected, ...). Without ``client_order_id`` a fresh one is made; the command id is
        the client order id, so re-sending the same order is de-duplicated."""
        coid = client_order_id or new_client_order_id(prefix)
        dec = (lambda v: None if v is None else Decimal(str(v)))
        command = PlaceOrder(command_id=coid, venue=venue, account=account, symbol=symbol,  # type: ignore[arg-type]
                             client_order_id=coid, side=side, order_type=order_type,  # type: ignore[arg-type]
                             quantity=dec(quantity), price=dec(price), quote_quantity=dec(quote_quantity),
                             time_in_force=time_in_force, post_only=post_only,  # type: ignore[arg-type]
                             ts_created=time.time_ns())
        return await self.submit(command, timeout_s)

    async def cancel(self, venue: str, account: str, symbol: str, client_order_id: str, *,
                     venue_order_id: str | None = None, timeout_s: float = 30.0) -> OrderEvent:
        """Cancel the order ``client_order_id``; returns its canceled (or rejected) event."""
        command = CancelOrder(command_id=f"cancel-{client_order_id}", venue=venue, account=account,  # type: ignore[arg-type]
                              symbol=symbol, client_order_id=client_order_id, venue_order_id=venue_order_id)
        return await self.submit(command, timeout_s)

    async def market_data(self, on_message: Callable[[MarketData], Awaitable[None]], venue: str = "*",
                          channel: str = "*", symbol: str = "*") -> Any:
        """Subscribe to normalized market data; ``on_message`` gets schemas objects.
        Returns the NATS subscription (``await sub.unsubscribe()`` to stop)."""
        async def deliver(msg: Any) -> None:
            await on_message(schemas.decode(msg.data, MarketData))  # type: ignore[arg-type]

        return await self.nc.subscribe(subjects.md_of(venue, channel, symbol), cb=deliver)

    async def order_events(self, on_event: Callable[[OrderEvent], Awaitable[None]], venue: str = "*",
                           account: str = "*") -> Any:
        """Subscribe to live order events of a venue/account (``*`` for any)."""
        async def deliver(msg: Any) -> None:
            await on_event(schemas.decode(msg.data, OrderEvent))

        return await self.nc.subscribe(subjects.orders_events_of(venue, account), cb=deliver)

    async def query(self, venue: str, account: str | None, query: Query, timeout_s: float = 10.0) -> Any:
        """Ask a query; ``account`` None for public ones. Returns a *Reply or a QueryError."""
        name = type(query).__struct_config__.tag
        subject = subjects.public_query(venue, name) if account is None else subjects.query(venue, account, name)
        msg = await self.nc.request(subject, schemas.encode(query), timeout=timeout_s)
        return schemas.decode(msg.data, QueryReply)
