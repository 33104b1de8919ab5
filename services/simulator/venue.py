"""What every simulated venue shares: JSON responses, the control routes' data, the
replay task, and the hooks the server needs (routes, route kinds, error bodies)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import msgspec
from aiohttp import web

from services.simulator.clock import Clock
from services.simulator.ledger import Ledger
from services.simulator.limits import RateLimits
from services.simulator.matching import Exchange
from services.simulator.streams import Hub

_json_strings = msgspec.json.Encoder(decimal_format="string")
_json_numbers = msgspec.json.Encoder(decimal_format="number")


def encode(obj: Any, *, decimals_as_numbers: bool = False) -> bytes:
    """JSON bytes; Decimals as strings (Binance, Upbit orders) or as numbers (Upbit quotes)."""
    return (_json_numbers if decimals_as_numbers else _json_strings).encode(obj)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None,
                  *, decimals_as_numbers: bool = False) -> web.Response:
    return web.Response(status=status, body=encode(obj, decimals_as_numbers=decimals_as_numbers),
                        content_type="application/json", headers=headers)


def parse_decimal(text: str) -> Decimal | None:
    """A plain non-negative decimal (digits, optional fraction), else None."""
    if not text or not all(c.isdigit() or c == "." for c in text) or text.count(".") > 1 or text[0] == ".":
        return None
    return Decimal(text)


class Venue:
    """Base of a simulated venue; subclasses add routes and wire formats."""

    name = ""

    def __init__(self, clock: Clock, ledger: Ledger, limits: RateLimits) -> None:
        self.clock = clock
        self.ledger = ledger
        self.limits = limits
        self.hub = Hub()
        self.exchange: Exchange
        self._replay: asyncio.Task[None] | None = None

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def route_kind(self, method: str, path: str) -> str | None:
        """"place", "cancel" or None (what fault rules call a route)."""
        raise NotImplementedError

    def error_body(self, status: int) -> bytes:
        """The venue's body for an injected 5xx."""
        raise NotImplementedError

    def start_replay(self, speed: float) -> None:
        raise NotImplementedError

    def now_ms(self) -> int:
        return self.clock() // 1_000_000

    def usage(self) -> dict[str, Any]:
        return self.limits.snapshot(self.clock())

    async def stop(self) -> None:
        if self._replay is not None:
            self._replay.cancel()
            await asyncio.gather(self._replay, return_exceptions=True)
        self.hub.close_all()
