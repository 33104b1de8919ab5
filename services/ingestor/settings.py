"""The ``[ingestor]`` section of the config file: which venues, symbols and channels.

    [ingestor.venues.binance]
    symbols = ["BTC-USDT", "ETH-USDT"]
    channels = ["trade", "book", "bbo"]      # default: trade, ticker, book, bbo

    [ingestor]
    share_feeds = true      # several `exbus ingest` processes split the feeds (default)
    lease_s = 1.0
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
    book_depth: int = 0
    """Book depth to subscribe where the venue takes one (Kraken, Bitfinex, OKX); 0: exbus's default."""


class IngestorSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The ingestor service."""

    venues: dict[str, FeedSettings] = msgspec.field(default_factory=dict)
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0
    share_feeds: bool = True
    """``exbus ingest`` processes with the same feed list split the feeds among themselves
    through leases in KV bucket ``feeds`` and take over the feeds of one that dies
    (services.ingestor.ownership). False: this process runs every feed on its own."""
    lease_s: float = 1.0
    """A feed whose owner has not renewed its lease for this long is taken over."""
    symbols_per_feed: int = 0
    """Split each venue's symbols into feeds of this many (each shared on its own); 0: one
    feed per venue."""
    standby: bool = False
    """Also keep warm (connected, books current, not publishing) the feeds this process is
    next in line for, so it takes them over without connecting or fetching snapshots."""
    member_id: str = ""
    """This process's name among the sharing processes (letters, digits, ``-``, ``_``);
    empty: host-pid-random. In k8s, the pod name."""


__all__ = ["FeedSettings", "IngestorSettings"]
