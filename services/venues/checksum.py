"""Order-book CRC32 checksums as the venues define them.

Each function takes the book's levels best first (``(price, size)`` Decimals, as
received: Decimal keeps the wire precision, which the checksums depend on) and
returns the integer the venue sends.
"""

from __future__ import annotations

import zlib
from decimal import Decimal
from typing import Sequence

Level = tuple[Decimal, Decimal]


def crc32_signed(text: str) -> int:
    """CRC32 of the ASCII text as a signed 32-bit integer (OKX, Bitfinex)."""
    c = zlib.crc32(text.encode("ascii"))
    return c - (1 << 32) if c >= 1 << 31 else c


def _kraken_digits(value: Decimal) -> str:
    # "0.05005" -> "5005": decimal point removed, then leading zeros stripped.
    text = str(value)  # the wire text back, unless tiny enough for an exponent
    if "E" in text:
        text = format(value, "f")
    return text.replace(".", "").lstrip("0")


def kraken(bids: Sequence[Level], asks: Sequence[Level]) -> int:
    """Kraken spot (WS v1 ``c``, v2 ``checksum``): unsigned CRC32 over the top 10 asks
    (ascending) then the top 10 bids (descending), each as price then quantity with
    the decimal point removed and leading zeros stripped.
    https://docs.kraken.com/api/docs/guides/spot-ws-book-v1"""
    parts = [_kraken_digits(p) + _kraken_digits(q) for p, q in asks[:10]]
    parts += [_kraken_digits(p) + _kraken_digits(q) for p, q in bids[:10]]
    return zlib.crc32("".join(parts).encode("ascii"))


def _interleaved(bids: Sequence[Level], asks: Sequence[Level], depth: int, fmt, ask_sign: int) -> str:
    parts: list[str] = []
    for i in range(depth):
        if i < len(bids):
            parts += (fmt(bids[i][0]), fmt(bids[i][1]))
        if i < len(asks):
            parts += (fmt(asks[i][0]), fmt(ask_sign * asks[i][1]))
    return ":".join(parts)


def _wire(value: Decimal) -> str:
    return format(value, "f")


def okx(bids: Sequence[Level], asks: Sequence[Level]) -> int:
    """OKX v5 ``books``: signed CRC32 over up to 25 levels interleaved
    ``bidPx:bidSz:askPx:askSz:...`` (a shorter side simply stops), wire strings.
    https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-channel"""
    return crc32_signed(_interleaved(bids, asks, 25, _wire, 1))


def js_number(value: Decimal) -> str:
    """A number as JavaScript's ``String(n)`` writes it (Bitfinex computes its
    checksum from JSON numbers): no trailing zeros, exponent below 1e-6."""
    if value == 0:
        return "0"
    v = value.normalize()
    if abs(v) < Decimal("1e-6"):
        digits = format(v, "e")  # "1e-7", "1.5e-8"
        mantissa, _, exponent = digits.partition("e")
        return f"{mantissa}e{int(exponent)}"
    return format(v, "f")


def bitfinex(bids: Sequence[Level], asks: Sequence[Level]) -> int:
    """Bitfinex ws/2 ``cs`` (flag 131072): signed CRC32 over up to 25 levels interleaved
    ``bidPrice:bidAmount:askPrice:askAmount``, ask amounts negative, JS number text.
    https://docs.bitfinex.com/docs/ws-websocket-checksum"""
    return crc32_signed(_interleaved(bids, asks, 25, js_number, -1))


__all__ = ["bitfinex", "crc32_signed", "js_number", "kraken", "okx"]
