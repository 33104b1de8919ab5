"""Fault injection: latency, 5xx answers, accepted-then-unanswered requests, dropped
connections and malformed bodies, chosen per request by the configured rules."""

from __future__ import annotations

import asyncio
import random
from contextvars import ContextVar
from typing import Awaitable, Callable

from aiohttp import web

from services.simulator.config import Fault
from services.simulator.ledger import Ledger
from services.simulator.matching import Order

DEFAULT_WHEN = {"latency": "before", "error_5xx": "before", "timeout": "after", "drop": "after", "malformed": "after"}
ANSWERS = {"error_5xx": "error_5xx", "timeout": "timeout", "drop": "dropped", "malformed": "malformed"}

_accepted: ContextVar[list[Order] | None] = ContextVar("sim_accepted_orders", default=None)

RouteKind = Callable[[str, str], str | None]
"""(method, path) -> "place", "cancel" or None: what a venue route does."""


def note_order(order: Order) -> None:
    """Called by a handler that accepted (or canceled) ``order``: the ledger then records how
    the answer to this request went."""
    held = _accepted.get()
    if held is not None:
        held.append(order)


class FaultInjector:
    """The fault rules in force and the seeded dice that apply them."""

    def __init__(self, faults: list[Fault], seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.set(faults)

    def set(self, faults: list[Fault]) -> None:
        """Replace the rules (counts start again)."""
        self.faults = list(faults)
        self.fired = [0] * len(self.faults)

    def describe(self) -> list[dict]:
        return [{"kind": f.kind, "ratio": f.ratio, "venue": f.venue, "route": f.route, "count": f.count,
                 "latency_ms": f.latency_ms, "status": f.status, "retry_after_s": f.retry_after_s,
                 "when": f.when or DEFAULT_WHEN[f.kind],
                 "fired": n} for f, n in zip(self.faults, self.fired)]

    @staticmethod
    def _matches(f: Fault, venue: str, method: str, path: str, kind: str | None) -> bool:
        if f.venue and f.venue != venue:
            return False
        route = f.route
        if route == "*":
            return True
        if route in ("place", "cancel"):
            return kind == route
        if " " in route:
            m, p = route.split(" ", 1)
            return m.upper() == method and p == path
        return route == path

    def draw(self, venue: str, method: str, path: str, kind: str | None) -> tuple[float, Fault | None]:
        """Seconds of added latency, and the fault (other than latency) this request gets."""
        latency, chosen = 0.0, None
        for i, f in enumerate(self.faults):
            if not self._matches(f, venue, method, path, kind):
                continue
            if f.count and self.fired[i] >= f.count:
                continue
            if f.kind != "latency" and chosen is not None:
                continue
            if f.ratio < 1.0 and self.rng.random() >= f.ratio:
                continue
            self.fired[i] += 1
            if f.kind == "latency":
                latency += f.latency_ms / 1000
            else:
                chosen = f
        return latency, chosen


async def _stopped_within(closing: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds``, or less if the simulator stops meanwhile (then True)."""
    try:
        await asyncio.wait_for(closing.wait(), seconds)
    except asyncio.TimeoutError:
        return False
    return True


def fault_middleware(
    injector: FaultInjector,
    venue: str,
    route_kind: RouteKind,
    ledger: Ledger,
    closing: asyncio.Event,
    error_body: Callable[[int], bytes],
) -> Callable[[web.Request, Callable[[web.Request], Awaitable[web.StreamResponse]]], Awaitable[web.StreamResponse]]:
    """aiohttp middleware applying the injector's faults to one venue's REST routes.

    Handlers report the orders a request accepted with :func:`note_order`.
    """

    @web.middleware
    async def middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
        if request.path.startswith("/__sim/") or request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)
        latency, fault = injector.draw(venue, request.method, request.path, route_kind(request.method, request.path))
        if latency and await _stopped_within(closing, latency):
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=503)
        if fault is None:
            return await handler(request)
        held: list[Order] = []
        token = _accepted.set(held)
        try:
            response = await handler(request) if (fault.when or DEFAULT_WHEN[fault.kind]) == "after" else None
        finally:
            _accepted.reset(token)
        for order in held:
            ledger.answered(order, ANSWERS[fault.kind])
        if fault.kind == "error_5xx":
            headers = {"Retry-After": str(fault.retry_after_s)} if fault.retry_after_s else None
            return web.Response(status=fault.status, body=error_body(fault.status), content_type="application/json",
                                headers=headers)
        if fault.kind == "malformed":
            body = response.body if isinstance(response, web.Response) and isinstance(response.body, bytes) else b"{}"
            garbled = web.Response(status=200, body=body[: max(1, len(body) // 2)], content_type="application/json")
            if response is not None:
                for name, value in response.headers.items():  # usage headers and the like are kept
                    if name.lower() not in ("content-length", "content-type"):
                        garbled.headers[name] = value
            return garbled
        if fault.kind == "timeout":
            await closing.wait()  # never answered while the simulator runs
        if request.transport is not None:
            request.transport.close()
        return response or web.Response(status=204)

    return middleware
