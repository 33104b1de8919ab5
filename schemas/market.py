"""Normalized market data published by the ingestor on ``md.<venue>.<channel>.<symbol>``."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, Union

import msgspec

from schemas.common import Nanos, Price, Quantity, Side, Symbol, Venue, require_non_negative, require_positive

_ZERO = Decimal(0)


class MarketMessage(msgspec.Struct, frozen=True, gc=False, tag_field="type", kw_only=True):
    """Base of every market-data message: where it came from and when."""

    venue: Venue
    symbol: Symbol
    ts_event: Nanos
    """Venue time of the event (ns); equals ts_recv when the venue gives none."""
    ts_recv: Nanos
    """Local receive time (ns)."""


class Trade(MarketMessage, tag="trade"):
    """One public trade."""

    trade_id: str
    price: Price
    quantity: Quantity
    side: Side | None = None
    """Taker side when the venue reports it."""

    def __post_init__(self) -> None:
        price, quantity = self.price, self.quantity
        if not (price.is_finite() and price > _ZERO and quantity.is_finite() and quantity > _ZERO):
            require_positive("price", price)  # one inline test on the hot path; these name the field
            require_positive("quantity", quantity)


class Ticker(MarketMessage, tag="ticker"):
    """Top of book plus last trade and 24h statistics; fields a venue lacks are null."""

    bid: Price | None = None
    bid_size: Quantity | None = None
    ask: Price | None = None
    ask_size: Quantity | None = None
    last: Price | None = None
    open_24h: Price | None = None
    high_24h: Price | None = None
    low_24h: Price | None = None
    volume_24h: Quantity | None = None
    """Base-asset volume over 24h."""
    quote_volume_24h: Quantity | None = None


class PriceLevel(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """One book level as ``[price, size]``; in a delta, size 0 removes the level."""

    price: Price
    size: Quantity

    def __post_init__(self) -> None:
        price, size = self.price, self.size
        if not (price.is_finite() and price > _ZERO and size.is_finite() and size >= _ZERO):
            require_positive("price", price)  # one inline test on the hot path; these name the field
            require_non_negative("size", size)


class BookSnapshot(MarketMessage, tag="book_snapshot"):
    """Full L2 book (to the venue's depth): replaces whatever the subscriber holds."""

    sequence: int
    """exbus book sequence: increases by one per published book message of this symbol."""
    bids: list[PriceLevel]
    """Best first (descending price)."""
    asks: list[PriceLevel]
    """Best first (ascending price)."""
    venue_sequence: int | None = None
    """The venue's own update id / sequence, when it has one."""


class BookDelta(MarketMessage, tag="book_delta"):
    """Changed levels since the message with ``sequence - 1``; size 0 deletes a level."""

    sequence: int
    bids: list[PriceLevel]
    asks: list[PriceLevel]
    venue_sequence: int | None = None


class BBO(MarketMessage, tag="bbo"):
    """Best bid and offer."""

    bid: Price | None
    bid_size: Quantity | None
    ask: Price | None
    ask_size: Quantity | None


FeedState = Literal["connected", "disconnected", "gap", "resynced", "stale", "trades_missed"]


class FeedStatus(msgspec.Struct, frozen=True, tag_field="type", tag="feed_status", kw_only=True):
    """Health of a feed, on ``md.<venue>.status``.

    ``gap``: a book lost sync (sequence gap, bad checksum, crossed book) and is being
    resynced; ``resynced``: a fresh snapshot was published; ``stale``: no frames within
    the watchdog interval; ``trades_missed``: trades in [missed_from, missed_to] may be lost.
    """

    venue: Venue
    state: FeedState
    ts: Nanos
    symbol: Symbol | None = None
    channel: str | None = None
    reason: str | None = None
    missed_from: Nanos | None = None
    missed_to: Nanos | None = None


BookMessage = Union[BookSnapshot, BookDelta]
MarketData = Union[Trade, Ticker, BookSnapshot, BookDelta, BBO, FeedStatus]

CHANNELS: tuple[str, ...] = ("trade", "ticker", "book", "bbo")
"""Market-data channel tokens used in subjects."""

__all__ = [
    "BBO", "BookDelta", "BookMessage", "BookSnapshot", "CHANNELS", "Decimal", "FeedState",
    "FeedStatus", "MarketData", "MarketMessage", "PriceLevel", "Ticker", "Trade",
]
