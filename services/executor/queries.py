"""Queries over request/reply (``venue.<venue>.<account>.<query>``, ``venue.<venue>.public.<query>``),
answered by the executors in one queue group under the same rate-limit leases."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

import schemas
from schemas import subjects
from schemas.queries import (
    BalanceReply, OpenOrdersReply, OrderBookReply, OrderStatusReply, Query, QueryError, TickerReply,
    TradeHistoryReply,
)
from services.executor.credentials import CredentialsUnavailable
from services.executor.gateway import VenueGateway
from services.executor.ratelimit import LeaseTimeout
from services.logs import get_logger
from services.venues.errors import RateLimited, VenueError

log = get_logger("queries")
QUEUE_GROUP = "executors"

REPLY = {
    "balance": lambda r: BalanceReply(balances=r),
    "order_status": lambda r: OrderStatusReply(order=r),
    "open_orders": lambda r: OpenOrdersReply(orders=r),
    "trade_history": lambda r: TradeHistoryReply(fills=r),
    "ticker": lambda r: TickerReply(ticker=r),
    "orderbook": lambda r: OrderBookReply(book=r),
}


async def answer(gateway: VenueGateway, subject: str, data: bytes) -> Any:
    """The reply to one query message (a *Reply or a QueryError, never silence)."""
    try:
        parsed = subjects.parse(subject)
        query = schemas.decode(data, Query)
    except (subjects.SubjectError, msgspec.DecodeError) as e:
        return QueryError(error="invalid_command", message=str(e))
    name = type(query).__struct_config__.tag
    if name != parsed.query:
        return QueryError(error="invalid_command", message=f"a {name} query sent to {subject}")
    venue, account = parsed.venue, parsed.account or "public"
    try:
        result = await gateway.call(venue, account, name, query)  # type: ignore[arg-type]
        return REPLY[name](result)
    except RateLimited as e:
        return QueryError(error="rate_limited", message=str(e), retry_after_s=e.retry_after)
    except VenueError as e:
        return QueryError(error=e.code, message=str(e))  # type: ignore[arg-type]
    except CredentialsUnavailable as e:
        return QueryError(error="auth_error", message=str(e))
    except LeaseTimeout as e:
        return QueryError(error="rate_limited", message=str(e))
    except ValueError as e:  # unknown venue adapter, unsupported query for the venue
        return QueryError(error="invalid_command", message=str(e))


async def serve_queries(nc: Any, gateway: VenueGateway) -> list[Any]:
    """Subscribe the executor's queue group to every query subject; returns the subscriptions."""

    pending: set[asyncio.Task[None]] = set()

    async def respond(msg: Any) -> None:
        reply = await answer(gateway, msg.subject, msg.data)
        if msg.reply:
            await msg.respond(schemas.encode(reply))

    async def on_query(msg: Any) -> None:  # queries run concurrently, each under its lease
        task = asyncio.create_task(respond(msg))
        pending.add(task)
        task.add_done_callback(pending.discard)

    return [await nc.subscribe("venue.*.*.*", queue=QUEUE_GROUP, cb=on_query)]
