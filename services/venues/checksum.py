"""Order-book CRC32 checksums as the venues define them.

A venue's checksum is the CRC32 of a text built from the text of each of the book's
best levels. :class:`BookChecksum` declares those parts (the text of one level, per
side, and how the level texts are joined) and computes it two ways:

- called with the levels best first (``(price, size)`` Decimals, as received: Decimal
  keeps the wire precision, which the checksums depend on), from scratch;
- ``of_book`` from a :class:`VersionedBook` (services.venues.book.OrderBook is one; this
  module does not import it) and a per-book :class:`LevelTexts`: the text of a level is computed when its
  :class:`~schemas.market.PriceLevel` object enters the side's best levels, and reused
  while that same object stays among them (a level object never changes: frozen), so
  a reused text is exactly the text of its level; a side whose version is unchanged,
  or whose best levels are the same objects, reuses its joined texts as a whole.
"""

from __future__ import annotations

import zlib
from decimal import Decimal
from operator import is_
from typing import Any, Callable, Protocol, Sequence

from schemas.market import PriceLevel

Level = tuple[Decimal, Decimal]
LevelText = Callable[[Decimal, Decimal], str]
Join = Callable[[list[str]], Any]


class VersionedBook(Protocol):
    """What ``BookChecksum.of_book`` reads of a book: each side's best levels and a version
    that changes whenever that side does."""

    @property
    def bid_version(self) -> int: ...
    @property
    def ask_version(self) -> int: ...
    def bid_levels(self, n: int) -> Sequence[PriceLevel]: ...
    def ask_levels(self, n: int) -> Sequence[PriceLevel]: ...


def crc32_signed(text: str) -> int:
    """CRC32 of the ASCII text as a signed 32-bit integer (OKX, Bitfinex)."""
    c = zlib.crc32(text.encode("ascii"))
    return c - (1 << 32) if c >= 1 << 31 else c


class _SideTexts:
    """One side's part of a book's cached checksum."""

    __slots__ = ("version", "depth", "levels", "texts", "value")

    def __init__(self) -> None:
        self.version = -1
        self.depth = 0
        """The side's version and the depth when ``levels`` was read."""
        self.levels: list[PriceLevel] = []
        """The side's best levels then (held, so an ``is`` match is that very level)."""
        self.texts: list[str] = []
        """Their texts."""
        self.value: object = None
        """What the checksum combines for this side (the side's join of ``texts``, None
        until read); a new object whenever the texts change."""

    def read(self, levels: list[PriceLevel], text: LevelText, join: Join) -> None:
        """Take the side's best ``levels`` (read after the side changed)."""
        old = self.levels
        # list == compares identical items without calling __eq__: C speed in the usual
        # case; equal but distinct levels (the same numbers sent again, perhaps written
        # with other trailing zeros) are new levels, whose text may differ
        if levels == old and all(map(is_, levels, old)) and self.value is not None:
            return  # a change deeper in the book
        self.texts = _texts(levels, old, self.texts, text)
        self.levels = levels
        self.value = join(self.texts)


class LevelTexts:
    """One book's cache of level texts, per side, and its last checksum (for one book
    and one checksum)."""

    __slots__ = ("bids", "asks", "last")

    def __init__(self) -> None:
        self.bids = _SideTexts()
        self.asks = _SideTexts()
        self.last: tuple[object, object, int] | None = None
        """(bid value, ask value, checksum) of the last computation."""


def _texts(levels: Sequence[PriceLevel], old: Sequence[PriceLevel], old_texts: list[str], text: LevelText) -> list[str]:
    """Texts of ``levels`` (a side's best, in order), reusing ``old_texts`` of the
    levels ``old`` that are still there, the same objects: a delta usually replaces,
    adds or removes one level, so the ones after it are found at the same place in
    ``old`` or one further (a level before them left)."""
    out = []
    j, m = 0, len(old)
    for level in levels:
        if j < m and level is old[j]:
            out.append(old_texts[j])
            j += 1
        elif j + 1 < m and level is old[j + 1]:
            out.append(old_texts[j + 1])
            j += 2
        else:  # new among the best levels (or after several changes)
            out.append(text(level.price, level.size))
    return out


def _as_is(texts: list[str]) -> list[str]:
    return texts


class BookChecksum:
    """A venue's checksum over its best ``depth`` levels per side: ``bid_text`` /
    ``ask_text`` give one level's text, ``bid_join`` / ``ask_join`` a side's value
    from its level texts (by default the list itself; computed once per change of
    that side), ``combine(bid_value, ask_value)`` the integer."""

    def __init__(self, depth: int, bid_text: LevelText, ask_text: LevelText,
                 combine: Callable[[Any, Any], int], doc: str, *,
                 bid_join: Join = _as_is, ask_join: Join = _as_is) -> None:
        self.depth = depth
        self.bid_text = bid_text
        self.ask_text = ask_text
        self.bid_join = bid_join
        self.ask_join = ask_join
        self.combine = combine
        self.__doc__ = doc

    def __call__(self, bids: Sequence[Level], asks: Sequence[Level]) -> int:
        n = self.depth
        return self.combine(self.bid_join([self.bid_text(p, q) for p, q in bids[:n]]),
                            self.ask_join([self.ask_text(p, q) for p, q in asks[:n]]))

    def of_book(self, book: VersionedBook, depth: int, cache: LevelTexts) -> int:
        """The checksum of an order book's best ``depth`` (at most ``self.depth``) levels,
        reusing the texts in ``cache`` (one per book) of the levels and sides it has seen."""
        n = depth if depth < self.depth else self.depth
        bids, asks = cache.bids, cache.asks
        # a side is read again only when its version changed
        if book.bid_version != bids.version or n != bids.depth:
            bids.read(book.bid_levels(n), self.bid_text, self.bid_join)
            bids.version, bids.depth = book.bid_version, n
        if book.ask_version != asks.version or n != asks.depth:
            asks.read(book.ask_levels(n), self.ask_text, self.ask_join)
            asks.version, asks.depth = book.ask_version, n
        b, a = bids.value, asks.value
        last = cache.last
        if last is not None and last[0] is b and last[1] is a:
            return last[2]  # the same side values: the same checksum
        value = self.combine(b, a)
        cache.last = (b, a, value)
        return value


def _kraken_digits(value: Decimal) -> str:
    # "0.05005" -> "5005": decimal point removed, then leading zeros stripped.
    text = str(value)  # the wire text back, unless tiny enough for an exponent
    if "E" in text:
        text = format(value, "f")
    return text.replace(".", "").lstrip("0")


def _kraken_level(price: Decimal, size: Decimal) -> str:
    text = str(price).replace(".", "").lstrip("0") + str(size).replace(".", "").lstrip("0")
    if "E" in text:  # an exponent (a tiny number) in either
        return _kraken_digits(price) + _kraken_digits(size)
    return text


def _kraken_bids(texts: list[str]) -> bytes:
    return "".join(texts).encode("ascii")


def _kraken_asks(texts: list[str]) -> int:
    return zlib.crc32("".join(texts).encode("ascii"))


def _kraken_combine(bids: bytes, asks_crc: int) -> int:
    return zlib.crc32(bids, asks_crc)  # the asks' CRC32 continued over the bids: CRC32 of asks + bids


kraken = BookChecksum(10, _kraken_level, _kraken_level, _kraken_combine, """\
Kraken spot (WS v1 ``c``, v2 ``checksum``): unsigned CRC32 over the top 10 asks
(ascending) then the top 10 bids (descending), each as price then quantity with
the decimal point removed and leading zeros stripped.
https://docs.kraken.com/api/docs/guides/spot-ws-book-v1""", bid_join=_kraken_bids, ask_join=_kraken_asks)


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
