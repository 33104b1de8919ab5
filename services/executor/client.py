"""What strategies use: place and cancel orders through ORDERS and await their outcome
event; ask queries over request/reply. Strategies never talk to a venue."""

from __future__ import annotations

import asyncio
from typing import Any

import schemas
from schemas import subjects
from schemas.orders import CancelOrder, OrderEvent, PlaceOrder
from schemas.queries import Query, QueryReply

OUTCOMES = frozenset({"accepted", "partially_filled", "filled", "canceled", "expired", "rejected", "failed"})


class OrderClient:
    """A strategy's handle on exbus over an existing NATS connection."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.js = nc.jetstream()

    async def submit(self, command: PlaceOrder | CancelOrder, timeout_s: float = 30.0) -> OrderEvent:
        """Publish ``command`` (de-duplicated by its command id) and return the event that
        ends it; raises TimeoutError if none arrives in time."""
        subject = subjects.orders_event(command.venue, command.account, command.client_order_id)
        outcome: asyncio.Future[OrderEvent] = asyncio.get_running_loop().create_future()

        async def on_event(msg: Any) -> None:
            event = schemas.decode(msg.data, OrderEvent)
            if event.command_id == command.command_id and event.status in OUTCOMES and not outcome.done():
                outcome.set_result(event)

        sub = await self.nc.subscribe(subject, cb=on_event)
        try:
            await self.js.publish(subjects.orders_submit(command.venue, command.account), schemas.encode(command),
                                  headers={"Nats-Msg-Id": command.command_id})
            return await asyncio.wait_for(outcome, timeout_s)
        finally:
            await sub.unsubscribe()

    async def query(self, venue: str, account: str | None, query: Query, timeout_s: float = 10.0) -> Any:
        """Ask a query; ``account`` None for public ones. Returns a *Reply or a QueryError."""
        name = type(query).__struct_config__.tag
        subject = subjects.public_query(venue, name) if account is None else subjects.query(venue, account, name)
        msg = await self.nc.request(subject, schemas.encode(query), timeout=timeout_s)
        return schemas.decode(msg.data, QueryReply)
