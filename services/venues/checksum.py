"""Order-book CRC32 checksums as the venues define them.

A venue's checksum is the CRC32 of a text built from the text of each of the book's
best levels. :class:`BookChecksum` declares those two parts (the text of one level,
per side, and how the level texts are joined) and computes it two ways:

- called with the levels best first (``(price, size)`` Decimals, as received: Decimal
  keeps the wire precision, which the checksums depend on), from scratch;
- ``of_book`` from an :class:`~services.venues.book.OrderBook` and a per-book
  :class:`LevelTexts`: the text of a level is computed once, when its
  :class:`~schemas.market.PriceLevel` object appears, and reused while the book keeps
  that object (a level object never changes: frozen), so a reused text is exactly the
  text of its level; a side whose version is unchanged reuses its texts as a whole.
"""

from __future__ import annotations

import zlib
from decimal import Decimal
from operator import is_
from typing import TYPE_CHECKING, Callable, Sequence

from schemas.market import PriceLevel

if TYPE_CHECKING:
    from services.venues.book import OrderBook

Level = tuple[Decimal, Decimal]
LevelText = Callable[[Decimal, Decimal], str]


def crc32_signed(text: str) -> int:
    """CRC32 of the ASCII text as a signed 32-bit integer (OKX, Bitfinex)."""
    c = zlib.crc32(text.encode("ascii"))
    return c - (1 << 32) if c >= 1 << 31 else c


class _SideTexts:
    __slots__ = ("texts", "levels", "version", "depth", "top_levels", "top")

    def __init__(self) -> None:
        self.texts: dict[int, str] = {}
        """id(level) -> the level's text."""
        self.levels: dict[int, PriceLevel] = {}
        """id(level) -> the level: holding it keeps that id from being reused."""
        self.version = -1
        self.depth = 0
        """The side's version and the depth when ``top_levels`` was read."""
        self.top_levels: list[PriceLevel] = []
        self.top: list[str] = []
        """Texts of ``top_levels``; a new list whenever they change, never mutated."""

    def current(self, version: int, levels: Callable[[int], list[PriceLevel]], n: int, text: LevelText) -> list[str]:
        """Texts of the side's best ``n`` levels; ``levels(n)`` is called only when the
        side changed since the last call (``version`` differs), and the same list is
        returned while those levels are the same objects (a change deeper in the book)."""
        if version != self.version or n != self.depth:
            top_levels = levels(n)
            if len(top_levels) != len(self.top_levels) or not all(map(is_, top_levels, self.top_levels)):
                self.top = _texts(top_levels, self, text)
                self.top_levels = top_levels
            self.version, self.depth = version, n
        return self.top


class LevelTexts:
    """One book's cache of level texts, per side, by level object, and its last checksum
    (for one book and one checksum)."""

    __slots__ = ("bids", "asks", "last")

    def __init__(self) -> None:
        self.bids = _SideTexts()
        self.asks = _SideTexts()
        self.last: tuple[list[str], list[str], int] | None = None
        """(bid texts, ask texts, checksum) of the last computation."""


def _texts(levels: Sequence[PriceLevel], cache: _SideTexts, text: LevelText) -> list[str]:
    ids = list(map(id, levels))
    if len(cache.texts) > 4 * len(ids) + 64:  # most are levels the book no longer holds
        cache.texts.clear()
        cache.levels.clear()
    out = list(map(cache.texts.get, ids))
    if None in out:
        i = out.index(None)
        while True:  # the levels seen for the first time: usually one
            level = levels[i]
            out[i] = cache.texts[ids[i]] = text(level.price, level.size)
            cache.levels[ids[i]] = level
            if None not in out:
                return out
            i = out.index(None, i + 1)
    return out


class BookChecksum:
    """A venue's checksum over its best ``depth`` levels per side: ``bid_text`` /
    ``ask_text`` give one level's text, ``combine(bid_texts, ask_texts)`` the integer."""

    def __init__(self, depth: int, bid_text: LevelText, ask_text: LevelText,
                 combine: Callable[[list[str], list[str]], int], doc: str) -> None:
        self.depth = depth
        self.bid_text = bid_text
        self.ask_text = ask_text
        self.combine = combine
        self.__doc__ = doc

    def __call__(self, bids: Sequence[Level], asks: Sequence[Level]) -> int:
        n = self.depth
        return self.combine([self.bid_text(p, q) for p, q in bids[:n]], [self.ask_text(p, q) for p, q in asks[:n]])

    def of_book(self, book: OrderBook, depth: int, cache: LevelTexts) -> int:
        """The checksum of an order book's best ``depth`` (at most ``self.depth``) levels,
        reusing the texts in ``cache`` (one per book) of the levels and sides it has seen."""
        n = depth if depth < self.depth else self.depth
        bids = cache.bids.current(book.bid_version, book.bid_levels, n, self.bid_text)
        asks = cache.asks.current(book.ask_version, book.ask_levels, n, self.ask_text)
        last = cache.last
        if last is not None and last[0] is bids and last[1] is asks:
            return last[2]  # the same text lists: the same checksum
        value = self.combine(bids, asks)
        cache.last = (bids, asks, value)
        return value


def _kraken_digits(value: Decimal) -> str:
    # "0.05005" -> "5005": decimal point removed, then leading zeros stripped.
    text = str(value)  # the wire text back, unless tiny enough for an exponent
    if "E" in text:
        text = format(value, "f")
    return text.replace(".", "").lstrip("0")


def _kraken_level(price: Decimal, size: Decimal) -> str:
    p, q = str(price), str(size)
    if "E" in p or "E" in q:
        return _kraken_digits(price) + _kraken_digits(size)
    return p.replace(".", "").lstrip("0") + q.replace(".", "").lstrip("0")


def _kraken_combine(bids: list[str], asks: list[str]) -> int:
    return zlib.crc32("".join(asks + bids).encode("ascii"))


kraken = BookChecksum(10, _kraken_level, _kraken_level, _kraken_combine, """\
Kraken spot (WS v1 ``c``, v2 ``checksum``): unsigned CRC32 over the top 10 asks
(ascending) then the top 10 bids (descending), each as price then quantity with
the decimal point removed and leading zeros stripped.
https://docs.kraken.com/api/docs/guides/spot-ws-book-v1""")


def _interleaved(bids: list[str], asks: list[str]) -> int:
    """``bid0:ask0:bid1:ask1...``; a shorter side simply stops."""
    n = min(len(bids), len(asks))
    parts = [text for pair in zip(bids, asks) for text in pair]
    parts += bids[n:] or asks[n:]
    return crc32_signed(":".join(parts))


def _okx_level(price: Decimal, size: Decimal) -> str:
    return f"{price:f}:{size:f}"


okx = BookChecksum(25, _okx_level, _okx_level, _interleaved, """\
OKX v5 ``books``: signed CRC32 over up to 25 levels interleaved
``bidPx:bidSz:askPx:askSz:...`` (a shorter side simply stops), wire strings.
https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-channel""")


_JS_EXPONENT_BELOW = Decimal("1e-6")


def js_number(value: Decimal) -> str:
    """A number as JavaScript's ``String(n)`` writes it (Bitfinex computes its
    checksum from JSON numbers): no trailing zeros, exponent below 1e-6."""
    if value == 0:
        return "0"
    v = value.normalize()
    if abs(v) < _JS_EXPONENT_BELOW:
        digits = format(v, "e")  # "1e-7", "1.5e-8"
        mantissa, _, exponent = digits.partition("e")
        return f"{mantissa}e{int(exponent)}"
    return format(v, "f")


def _bitfinex_bid(price: Decimal, size: Decimal) -> str:
    return f"{js_number(price)}:{js_number(size)}"


def _bitfinex_ask(price: Decimal, size: Decimal) -> str:
    return f"{js_number(price)}:{js_number(-size)}"


bitfinex = BookChecksum(25, _bitfinex_bid, _bitfinex_ask, _interleaved, """\
Bitfinex ws/2 ``cs`` (flag 131072): signed CRC32 over up to 25 levels interleaved
``bidPrice:bidAmount:askPrice:askAmount``, ask amounts negative, JS number text.
https://docs.bitfinex.com/docs/ws-websocket-checksum""")


__all__ = ["BookChecksum", "LevelTexts", "bitfinex", "crc32_signed", "js_number", "kraken", "okx"]
