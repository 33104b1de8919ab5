"""The ``[ingestor]`` section of the config file: which venues, symbols and channels.

    [ingestor.venues.binance]
    symbols = ["BTC-USDT", "ETH-USDT"]
    channels = ["trade", "book", "bbo"]      # default: trade, ticker, book, bbo
"""

from __future__ import annotations

import msgspec


class FeedSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One venue's market-data subscriptions."""

    symbols: list[str]
    channels: list[str] = msgspec.field(default_factory=lambda: ["trade", "ticker", "book", "bbo"])
    url: str = ""
    """WebSocket endpoint override (simulator, replay); empty: the venue's own."""
    rest_url: str = ""
    """REST base URL override for book snapshots; empty: the venue's own."""
    max_streams_per_connection: int = 0
    """0: the venue's limit."""


class IngestorSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The ingestor service."""

    venues: dict[str, FeedSettings] = msgspec.field(default_factory=dict)
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0


__all__ = ["FeedSettings", "IngestorSettings"]
