"""JSON encoding every simulated venue shares: replies with Decimals as strings or numbers,
and the plain-decimal parameter check."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
from aiohttp import web


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
