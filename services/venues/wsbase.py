"""The WebSocket half of a venue adapter, sans-IO.

A venue's ``ws.py`` subclasses :class:`WsAdapter` and declares, as data, what differs:
its URL, keep-alive policy, stream limits, book rules and checksum; and implements
only ``subscribe_messages`` and ``parse_frame`` (plus symbol formats when the WS ones
differ from the REST ones). One adapter instance is the protocol state of one
connection (channel ids, symbol map); ``reset()`` forgets it before a reconnect.

``parse_frame(data, ts_recv)`` turns one received frame into a list of events:
schemas objects (Trade, Ticker, BBO) ready to publish, and the venue's raw book
messages as :class:`BookUpdate`, which the shared book engine (services.venues.book)
checks against the venue's sequence/checksum rules before anything is published.
The transport (services.ingestor) does all I/O.

Writing a venue: ``services/venues/<venue>/ws.py`` defines ``class XWs(WsAdapter)``
with the class attributes below, ``venue_symbol``, ``subscribe_messages``,
``unsubscribe_messages`` (when ``resync = "resubscribe"``) and ``parse_frame``
(typed msgspec Structs per venue message, one conversion function per message
type), and ends with ``ADAPTER = XWs``. Frames for symbols not subscribed are
dropped (``symbol_of`` returns None). ``parse_frame`` raises
``msgspec.DecodeError``/``ValidationError`` (or ValueError) on a frame it cannot read;
the ingestor counts and logs those and goes on.
"""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit, urlunsplit
from decimal import Decimal
from typing import Callable, ClassVar, Literal, Sequence, Union

import msgspec

from schemas.market import BBO, Ticker, Trade

Channel = Literal["trade", "ticker", "book", "bbo"]
"""exbus market-data channels (the subject token of ``md.<venue>.<channel>.<symbol>``)."""

Level = tuple[Decimal, Decimal]
"""``(price, size)``; in a delta, size 0 deletes the level."""

BookRule = Literal["none", "update_id", "prev_sequence", "snapshots"]
"""How a venue's book messages chain (see services.venues.book.rule_for):

- ``none``: deltas carry no id; integrity comes from a checksum and/or a
  connection-wide :class:`StreamSequence` (Kraken, Bitfinex, Coinbase).
- ``update_id``: Binance diff depth: ``U``/``u`` first/last update id per event,
  chained to a REST snapshot's ``lastUpdateId``.
- ``prev_sequence``: OKX ``seqId``/``prevSeqId``: each update names its predecessor.
- ``snapshots``: every book message is a full snapshot (Upbit, Bithumb, Korbit, Coinone).
"""

ResyncMethod = Literal["rest", "resubscribe", "next_snapshot"]
"""How a book that lost sync is rebuilt, for one symbol only:

- ``rest``: buffer deltas, fetch a REST snapshot (under the venue's rate budget),
  replay the buffered deltas that follow it (Binance, OKX).
- ``resubscribe``: unsubscribe and subscribe that symbol's book on the same
  connection; the venue sends a fresh snapshot (Kraken, Bitfinex, Coinbase).
- ``next_snapshot``: nothing to do; the next message is a full book anyway.
"""


class Subscription(msgspec.Struct, frozen=True, order=True):
    """One stream: a channel of one symbol (exbus ``BASE-QUOTE``)."""

    channel: Channel
    symbol: str


class BookUpdate(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A venue's book message before the book engine has checked and applied it.

    ``snapshot`` True replaces the book; otherwise levels are absolute sizes at
    a price (0 deletes). Sequence fields carry whatever the venue gives:
    ``sequence`` the id of this message (Binance ``u``, OKX ``seqId``, REST
    ``lastUpdateId``), ``first_sequence`` the first id it covers (Binance ``U``),
    ``prev_sequence`` the id of the message it follows (OKX ``prevSeqId``),
    ``checksum`` the venue's CRC32 of the book after applying it.
    """

    symbol: str
    snapshot: bool
    bids: list[Level]
    asks: list[Level]
    ts_event: int
    ts_recv: int
    sequence: int | None = None
    first_sequence: int | None = None
    prev_sequence: int | None = None
    checksum: int | None = None


class StreamSequence(msgspec.Struct, frozen=True, gc=False):
    """A connection-wide message sequence number (Bitfinex SEQ_ALL, Coinbase
    ``sequence_num``). It must grow by exactly one per message; a gap means any
    book or trade stream on the connection may have lost a message."""

    sequence: int


class Subscribed(msgspec.Struct, frozen=True):
    """The venue confirmed a subscription."""

    channel: Channel
    symbol: str


class VenueNotice(msgspec.Struct, frozen=True):
    """A control message from the venue worth acting on or logging.

    ``reconnect``: the venue asks us to reconnect (Bitfinex info 20051, maintenance);
    ``error``: a rejected request (bad symbol, subscription error);
    ``info``: anything else worth a log line.
    """

    kind: Literal["info", "error", "reconnect"]
    message: str
    symbol: str | None = None


class TradeBackfill(msgspec.Struct, frozen=True):
    """Recent trades the venue re-sends (Bitfinex's trades snapshot on subscribe).
    The ingestor publishes only those newer than the last trade it published before a
    disconnect, so a reconnect fills the hole instead of duplicating or skipping."""

    symbol: str
    trades: list[Trade]


class Reply(msgspec.Struct, frozen=True):
    """A message the venue expects us to send back (an application-level pong)."""

    data: str | bytes


WsEvent = Union[Trade, Ticker, BBO, BookUpdate, StreamSequence, Subscribed, VenueNotice, TradeBackfill, Reply]


class KeepAlive(msgspec.Struct, frozen=True):
    """How a connection is kept open.

    ``message`` None: WebSocket ping frames every ``interval_s`` (the transport
    also answers the venue's pings). Otherwise an application-level ping text the
    venue requires (OKX ``"ping"``, Kraken ``{"event":"ping"}``, Coinone
    ``{"request_type":"PING"}``), sent every ``interval_s``; the venue's answer is
    swallowed by ``parse_frame``.
    """

    interval_s: float = 20.0
    message: str | bytes | None = None


ChecksumFn = Callable[[Sequence[Level], Sequence[Level]], int]
"""``checksum(bids_best_first, asks_best_first) -> int`` as the venue defines it."""


class WsAdapter:
    """Base of every venue's WebSocket adapter (sans-IO). Subclasses set the class
    attributes and implement ``subscribe_messages`` and ``parse_frame``."""

    venue: ClassVar[str]
    url: ClassVar[str]
    """Public market-data endpoint; an instance may be given another (simulator, replay,
    see :func:`with_default_path`)."""
    keepalive: ClassVar[KeepAlive] = KeepAlive()
    max_streams_per_connection: ClassVar[int] = 200
    """Subscriptions (channel x symbol) one connection may carry (venue limit, with margin)."""
    subscribe_interval_s: ClassVar[float] = 0.0
    """Minimum pause between two sent control messages (Binance: 5 msgs/s inbound)."""
    stale_after_s: ClassVar[float] = 30.0
    """Watchdog: a connection with no frame for this long is stale (and reconnected)."""
    book_rule: ClassVar[BookRule] = "none"
    resync: ClassVar[ResyncMethod] = "resubscribe"
    book_depth: ClassVar[int | None] = None
    """Levels per side the venue maintains; the book is truncated to it (Kraken: the
    checksum only matches a book truncated to the subscribed depth)."""
    snapshot_depth: ClassVar[int] = 1000
    """Depth asked of the REST snapshot when resync is ``rest``."""
    snapshot_on_subscribe: ClassVar[bool] = True
    """Subscribing the book makes the venue send a snapshot (all but Binance): when REST
    snapshots keep failing, a resubscription resyncs the book instead."""
    snapshot_requests_per_s: ClassVar[float] = 1.0
    """Budget for REST snapshot requests of the ingestor, well inside the venue's limit
    (it shares the IP with the executors)."""
    checksum: ClassVar[ChecksumFn | None] = None
    """CRC32 of the book as the venue computes it (services.venues.checksum)."""
    checksum_depth: ClassVar[int] = 25
    """Levels per side the checksum covers."""
    trades_resent_on_subscribe: ClassVar[bool] = False
    """The venue sends its latest trades on subscribe (as :class:`TradeBackfill`), so a
    reconnect can fill the trades missed while disconnected."""
    bbo_from_book: ClassVar[bool] = True
    """True: the ``bbo`` channel is derived from the book (subscribing it subscribes
    the book); False: the venue has its own best-bid/offer stream."""

    def __init__(self, url: str | None = None) -> None:
        if url:
            self.url = with_default_path(url, type(self).url)  # type: ignore[misc]
        self._symbols: dict[str, str] = {}
        self.reset()

    # -- connection state ---------------------------------------------------------
    def reset(self) -> None:
        """Forget per-connection state (channel ids, sequences) before a new connection.
        The symbol map survives: it comes from our own subscriptions."""

    def connect_url(self, channels: Sequence[Channel], symbols: Sequence[str]) -> str:
        """URL to open for these subscriptions (venues that subscribe in the URL override)."""
        return self.url

    # -- symbols ------------------------------------------------------------------
    def venue_symbol(self, symbol: str) -> str:
        """The venue's WS name of an exbus symbol (``BTC-USDT`` -> ``btcusdt``).
        Venues whose WS names equal the REST ones return services.venues.symbols'."""
        raise NotImplementedError

    def remember(self, symbols: Sequence[str]) -> None:
        """Record the venue names of subscribed symbols so frames map back to exbus ones."""
        for s in symbols:
            self._symbols[self.venue_symbol(s)] = s

    def symbol_of(self, venue_symbol: str) -> str | None:
        """The exbus symbol of a venue symbol we subscribed, else None (frame ignored)."""
        return self._symbols.get(venue_symbol)

    # -- protocol -----------------------------------------------------------------
    def connect_messages(self) -> list[str | bytes]:
        """Messages sent once right after connecting, before any subscription
        (Bitfinex ``conf`` flags)."""
        return []

    def subscribe_messages(self, channels: Sequence[Channel], symbols: Sequence[str]) -> list[str | bytes]:
        """Messages that subscribe every channel of every symbol (after ``remember``)."""
        raise NotImplementedError

    def unsubscribe_messages(self, channels: Sequence[Channel], symbols: Sequence[str]) -> list[str | bytes]:
        """Messages that unsubscribe them (needed by ``resync = "resubscribe"``)."""
        raise NotImplementedError

    def resubscribe_messages(self, symbol: str) -> list[str | bytes]:
        """Messages that make the venue send a fresh book snapshot for one symbol."""
        return [*self.unsubscribe_messages(["book"], [symbol]), *self.subscribe_messages(["book"], [symbol])]

    def parse_frame(self, data: str | bytes, ts_recv: int) -> list[WsEvent]:
        """Events in one received frame; ``ts_recv`` is the local receive time in ns."""
        raise NotImplementedError

    # -- public trades over REST, to backfill a disconnect ------------------------------
    trades_page_limit: ClassVar[int] = 0
    """Most trades one backfill request returns (0: the venue has no such request)."""

    def trades_backfill_url(self, symbol: str, since_ns: int, until_ns: int) -> str | None:
        """GET URL of the venue's public trades of ``symbol`` in [since, until], or None
        when it has none. No credentials: public market data only."""
        return None

    def parse_trades_backfill(self, symbol: str, body: bytes, ts_recv: int) -> list[Trade]:
        """Trades in the venue's answer to ``trades_backfill_url``, oldest first."""
        raise NotImplementedError

    def recorded_subscriptions(self, url: str, sent: Sequence[str]) -> list[Subscription]:
        """The subscriptions a recorded session made (its URL and sent messages), so a
        recording can be replayed without naming them; also adopts recorded options
        (e.g. the book depth). Venues without recordings may leave this empty and
        replay takes ``--symbols``/``--channels``."""
        return []


def with_default_path(url: str, default: str) -> str:
    """An endpoint override: a bare ``ws://host:port`` keeps the venue's own path
    (``/stream``, ``/ws/v5/public``), so a simulator serving the venue's paths needs only
    its host; a URL with a path is taken as is."""
    parts = urlsplit(url)
    if parts.path not in ("", "/"):
        return url
    path = urlsplit(default).path
    return urlunsplit((parts.scheme, parts.netloc, path or parts.path, parts.query, ""))


def ws_adapter(venue: str) -> type[WsAdapter]:
    """The WebSocket adapter class of a venue (``services.venues.<venue>.ws.ADAPTER``)."""
    name = f"services.venues.{venue}.ws"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and name.startswith(e.name):
            raise ValueError(f"no WebSocket adapter for venue {venue!r}") from None
        raise
    return module.ADAPTER


def ms_to_ns(ms: int | str) -> int:
    """Milliseconds (int or decimal string) to integer nanoseconds."""
    return int(ms) * 1_000_000


def seconds_to_ns(seconds: str) -> int:
    """A decimal-seconds string (``"1618678142.557535"``) to integer nanoseconds, exactly."""
    if len(seconds) > 7 and seconds[-7] == "." and seconds[0] != "-":
        return int(seconds.replace(".", "", 1)) * 1000  # six decimals (Kraken's): the digits are microseconds
    whole, _, frac = seconds.partition(".")
    return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])


__all__ = [
    "BBO", "BookRule", "BookUpdate", "Channel", "ChecksumFn", "KeepAlive", "Level", "Reply",
    "ResyncMethod", "StreamSequence", "Subscribed", "Subscription", "Ticker", "Trade", "TradeBackfill",
    "VenueNotice", "WsAdapter", "WsEvent", "ms_to_ns", "seconds_to_ns", "ws_adapter",
]
