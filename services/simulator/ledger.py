"""What the simulator saw: every order it accepted (and what became of it and of the
answer to it), every order it refused, and rate-limit usage per scope. Served as
``GET /__sim/ledger`` so tests can prove exactly-once placement and limit compliance."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable

from services.simulator.matching import Order


@dataclass(slots=True)
class LedgerEntry:
    venue: str
    order: Order
    response: str = "answered"
    """What the client got: answered, timeout, dropped, error_5xx, malformed."""


@dataclass(slots=True)
class Rejection:
    venue: str
    account: str
    client_order_id: str
    error: str
    """The venue's error code or name (``-2010``, ``insufficient_funds_bid`` ...)."""
    message: str
    ts: int


@dataclass
class Ledger:
    entries: list[LedgerEntry] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    _by_order: dict[int, LedgerEntry] = field(default_factory=dict)
    _waiters: list[asyncio.Future[None]] = field(default_factory=list)

    def accepted(self, venue: str, order: Order) -> None:
        entry = LedgerEntry(venue, order)
        self.entries.append(entry)
        self._by_order[id(order)] = entry
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def orders_at_least(self, n: int) -> None:
        """Return once ``n`` orders have been accepted (for a client that got no answer)."""
        while len(self.entries) < n:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def answered(self, order: Order, response: str) -> None:
        """How the request that created ``order`` was answered (set by the fault layer)."""
        entry = self._by_order.get(id(order))
        if entry is not None:
            entry.response = response

    def rejected(self, venue: str, account: str, client_order_id: str, error: str, message: str, ts: int) -> None:
        self.rejections.append(Rejection(venue, account, client_order_id, error, message, ts))

    def snapshot(self, limits: dict[str, Callable[[], dict[str, Any]]]) -> dict[str, Any]:
        """The JSON body of ``GET /__sim/ledger``; ``limits`` gives each venue's usage."""
        usage = {venue: snap() for venue, snap in limits.items()}
        return {
            "orders": [_order_json(e) for e in self.entries],
            "rejected": [
                {"venue": r.venue, "account": r.account, "client_order_id": r.client_order_id,
                 "error": r.error, "message": r.message, "ts": r.ts}
                for r in self.rejections
            ],
            "limits": usage,
            "limits_exceeded": any(s["exceeded"] for v in usage.values() for s in v.values()),
        }


def _order_json(e: LedgerEntry) -> dict[str, Any]:
    o = e.order
    return {
        "venue": e.venue, "account": o.account, "symbol": o.symbol,
        "client_order_id": o.client_order_id, "order_id": str(o.order_id),
        "side": o.side, "type": o.order_type, "ts": o.ts_created,
        "outcome": o.status, "filled": str(o.filled), "fills": len(o.fills),
        "response": e.response,
    }
