"""One venue's market-data feed, without I/O: frames in, what to do out.

A :class:`Feed` splits its subscriptions over connections (the venue's stream
limit), runs each connection's adapter, keeps one :class:`SymbolBook` per symbol,
and turns every input (a frame, a connect, a disconnect, a REST snapshot, a quiet
watchdog) into :class:`Actions`: messages to publish, messages to send on a
connection, symbols whose REST snapshot to fetch, connections to reopen. The
ingestor service carries the actions out; tests drive a Feed directly.

Integrity, as published on ``md.<venue>.status``:
- a book that breaks its venue's rules (sequence gap, bad checksum, crossed) gets a
  ``gap`` status, then only that symbol is resynced (REST snapshot or resubscribe),
  then a fresh BookSnapshot and a ``resynced`` status;
- a gap in a connection-wide sequence (Bitfinex, Coinbase) or a disconnect puts every
  book of that connection out of sync the same way;
- trades that may have been lost (disconnect, sequence gap) get a ``trades_missed``
  status with the time range; where the venue has public trades over REST (Binance,
  Kraken, OKX) the range is fetched and the unseen trades published, then a
  ``resynced`` status on the trade channel; where it re-sends its latest trades on
  subscribe (Bitfinex) those fill the range and the status says what they missed.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Sequence

import msgspec

from schemas.common import now_ns
from schemas.market import BBO, BookDelta, BookSnapshot, FeedStatus, Ticker, Trade
from services.venues.book import BookOutcome, SymbolBook
from services.venues.wsbase import (
    BookUpdate, Channel, Reply, StreamSequence, TradeBackfill, VenueNotice, WsAdapter,
)

CHANNELS: tuple[Channel, ...] = ("trade", "ticker", "book", "bbo")
CHANNEL_OF_MESSAGE: dict[type, str] = {
    Trade: "trade", Ticker: "ticker", BookSnapshot: "book", BookDelta: "book", BBO: "bbo",
}
RECENT_TRADE_IDS = 256
"""Trade ids remembered per symbol, to drop duplicates when a venue re-sends trades."""

Published = Trade | Ticker | BookSnapshot | BookDelta | BBO | FeedStatus


class Actions(msgspec.Struct, gc=False):
    """What the ingestor must do after one input.

    Nearly every input only publishes: the other fields are tuples, empty ones cost
    nothing to make (``actions.send += (item,)`` adds to them)."""

    publish: list[Published] = msgspec.field(default_factory=list)
    send: tuple[tuple[int, str | bytes], ...] = ()
    """(connection index, message)."""
    fetch: tuple[str, ...] = ()
    """Symbols whose REST book snapshot is needed."""
    reconnect: tuple[int, ...] = ()
    backfill: tuple[tuple[str, int, int], ...] = ()
    """(symbol, since ns, until ns): trades to fetch over REST after a disconnect."""
    log: tuple[str, ...] = ()
    """Notices worth a log line (venue errors)."""


class FeedStats(msgspec.Struct):
    """Counters of one feed (the replay summary and the benchmark read them)."""

    frames: int = 0
    parse_errors: int = 0
    gaps: int = 0
    resyncs: int = 0
    checksum_failures: int = 0
    stream_gaps: int = 0
    disconnects: int = 0
    trades_backfilled: int = 0


class _TradeTrail(msgspec.Struct):
    """The last trades published for a symbol, to place a venue's re-sent trades."""

    last_ts: int = 0
    ids: set = msgspec.field(default_factory=set)
    """Ids of the last RECENT_TRADE_IDS trades (``order`` keeps their order)."""
    order: deque = msgspec.field(default_factory=deque)
    missed_from: int | None = None
    """Set while disconnected: trades after this time may be lost."""

    def remember(self, trade_id: str) -> None:
        if len(self.order) >= RECENT_TRADE_IDS:
            self.ids.discard(self.order.popleft())
        self.order.append(trade_id)
        self.ids.add(trade_id)


class Connection:
    """One planned connection of a feed: its adapter (protocol state) and streams."""

    def __init__(self, index: int, adapter: WsAdapter, symbols: list[str], channels: list[Channel]) -> None:
        self.index = index
        self.adapter = adapter
        self.symbols = symbols
        self.channels = channels
        self.stream_sequence: int | None = None
        self.last_frame_ns: int | None = None
        self.down_since: int | None = None
        self.ever_connected = False
        self.stale = False


class Feed:
    """A venue's subscriptions, connections, books and status (sans-IO)."""

    def __init__(
        self,
        adapter_class: type[WsAdapter],
        symbols: Sequence[str],
        channels: Sequence[str],
        *,
        url: str | None = None,
        max_streams_per_connection: int | None = None,
        prepare: Callable[[WsAdapter], None] | None = None,
        clock: Callable[[], int] = now_ns,
    ) -> None:
        unknown = set(channels) - set(CHANNELS)
        if unknown:
            raise ValueError(f"unknown channels {sorted(unknown)}; use {', '.join(CHANNELS)}")
        self.venue = adapter_class.venue
        self.channels = frozenset(channels)
        self.clock = clock
        self.stats = FeedStats()
        wire: list[Channel] = [c for c in CHANNELS if c in self.channels]
        if "bbo" in self.channels and adapter_class.bbo_from_book:
            wire = [c for c in wire if c != "bbo"] + ([] if "book" in wire else ["book"])
        self.wire_channels = wire
        limit = max_streams_per_connection or adapter_class.max_streams_per_connection
        per_connection = max(1, limit // max(1, len(wire)))
        symbols = list(dict.fromkeys(symbols))
        self.connections: list[Connection] = []
        for i in range(0, len(symbols), per_connection):
            adapter = adapter_class(url)
            if prepare is not None:
                prepare(adapter)
            group = symbols[i:i + per_connection]
            adapter.remember(group)
            self.connections.append(Connection(len(self.connections), adapter, group, wire))
        self.connection_of: dict[str, Connection] = {s: c for c in self.connections for s in c.symbols}
        self.books: dict[str, SymbolBook] = {}
        if "book" in wire:
            for c in self.connections:
                a = c.adapter
                for s in c.symbols:
                    self.books[s] = SymbolBook(
                        self.venue, s, rule=a.book_rule, resync=a.resync, depth=a.book_depth, checksum=a.checksum,
                        checksum_depth=a.checksum_depth, emit_book="book" in self.channels,
                        emit_bbo="bbo" in self.channels and a.bbo_from_book,
                    )
        self.trades: dict[str, _TradeTrail] = {s: _TradeTrail() for s in symbols} if "trade" in self.channels else {}

    # -- connection lifecycle ---------------------------------------------------------
    def opening(self, index: int) -> tuple[str, list[str | bytes]]:
        """URL to open for connection ``index`` and the messages to send once open."""
        c = self.connections[index]
        c.adapter.reset()
        c.stream_sequence = None
        messages = [*c.adapter.connect_messages(), *c.adapter.subscribe_messages(c.channels, c.symbols)]
        return c.adapter.connect_url(c.channels, c.symbols), messages

    def on_connected(self, index: int) -> Actions:
        c = self.connections[index]
        now = self.clock()
        actions = Actions()
        actions.publish.append(self._status("connected", now, reason=self._describe(c)))
        if c.down_since is not None and not type(c.adapter).trades_resent_on_subscribe:
            self._report_missed_trades(c, now, actions)
        c.down_since = None
        c.ever_connected = True
        c.stale = False
        return actions

    def on_disconnected(self, index: int, reason: str, *, final: bool = False) -> Actions:
        """The connection dropped (or never opened): every book on it is out of sync.
        ``final``: the stream ended for good (end of a replay); the books stay as they are."""
        c = self.connections[index]
        now = self.clock()
        actions = Actions()
        if c.down_since is not None:
            return actions  # already down: a failed reconnect attempt
        self.stats.disconnects += c.ever_connected
        c.down_since = now
        actions.publish.append(self._status("disconnected", now, reason=reason))
        if final:
            return actions
        for s in c.symbols:
            if s in self.books:
                self._book_outcome(c, s, self.books[s].invalidate("disconnected"), actions, resync=False)
            trail = self.trades.get(s)
            if trail is not None and c.ever_connected and trail.missed_from is None:
                trail.missed_from = c.last_frame_ns or now
        return actions

    def on_stale(self, index: int, quiet_s: float) -> Actions:
        """The watchdog saw no frame for ``quiet_s`` seconds."""
        c = self.connections[index]
        actions = Actions()
        if not c.stale:
            c.stale = True
            actions.publish.append(self._status("stale", self.clock(), reason=f"no frame for {quiet_s:.0f}s on {self._describe(c)}"))
        return actions

    def current_books(self) -> Actions:
        """Every synced book as it stands, as a BookSnapshot (a warm standby starting to
        publish: services.ingestor.ownership)."""
        actions = Actions()
        now = self.clock()
        for book in self.books.values():
            actions.publish.extend(book.current(now))
        return actions

    # -- frames -------------------------------------------------------------------------
    def on_frame(self, index: int, data: str | bytes, ts_recv: int) -> Actions:
        """Parse one received frame and act on every event in it."""
        c = self.connections[index]
        self.stats.frames += 1
        actions = Actions()
        if c.stale:
            c.stale = False
            actions.publish.append(self._status("connected", ts_recv, reason="frames resumed"))
        c.last_frame_ns = ts_recv
        try:
            events = c.adapter.parse_frame(data, ts_recv)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, KeyError, IndexError) as e:
            self.stats.parse_errors += 1
            actions.log += (f"unreadable frame: {e}: {str(data)[:200]}",)
            return actions
        channels = self.channels
        for e in events:
            cls = type(e)
            if cls is BookUpdate:
                book = self.books.get(e.symbol)
                if book is not None:
                    # a delta publishes straight into the actions; an outcome only when there is more to do
                    out = book.on_update(e) if e.snapshot else book.on_delta(e, actions.publish)
                    if out is not None:
                        self._book_outcome(c, e.symbol, out, actions)
            elif cls is StreamSequence:
                sequence = e.sequence
                if c.stream_sequence == sequence - 1:  # in order (never when None): the common case, without a call
                    c.stream_sequence = sequence
                else:
                    self._stream_sequence(c, sequence, ts_recv, actions)
            elif cls is Trade:
                if "trade" in channels:
                    self._trade(e, actions)
            elif cls is Ticker:
                if "ticker" in channels:
                    actions.publish.append(e)
            elif cls is BBO:
                if "bbo" in channels:
                    actions.publish.append(e)
            elif cls is TradeBackfill:
                if "trade" in channels:
                    self._backfill(e, ts_recv, actions)
            elif cls is Reply:
                actions.send += ((index, e.data),)
            elif cls is VenueNotice:
                actions.log += (f"{e.kind}: {e.message}" + (f" ({e.symbol})" if e.symbol else ""),)
                if e.kind == "reconnect":
                    actions.reconnect += (index,)
        return actions

    def on_snapshot(self, symbol: str, snapshot: BookUpdate) -> Actions:
        """A REST book snapshot arrived for ``symbol``."""
        actions = Actions()
        self._book_outcome(self.connection_of[symbol], symbol, self.books[symbol].on_snapshot(snapshot), actions)
        return actions

    def on_snapshot_failed(self, symbol: str, error: str) -> Actions:
        """The REST snapshot could not be fetched (after retries): resubscribe the book
        where that brings a snapshot, else ask REST again with the next delta."""
        c = self.connection_of[symbol]
        actions = Actions(log=(f"book snapshot of {symbol} failed: {error}",))
        if c.adapter.snapshot_on_subscribe:
            actions.send += tuple((c.index, m) for m in c.adapter.resubscribe_messages(symbol))
        else:
            self.books[symbol].snapshot_requested = False
        return actions

    # -- internals ------------------------------------------------------------------------
    def _book_outcome(self, c: Connection, symbol: str, out: BookOutcome, actions: Actions, *, resync: bool = True) -> None:
        if out.messages:
            actions.publish += out.messages
        if out.gap is not None:
            self.stats.gaps += 1
            self.stats.checksum_failures += out.checksum_failed
            actions.publish.append(self._status("gap", self.clock(), symbol=symbol, channel="book", reason=out.gap))
            if resync and self.books[symbol].resync == "resubscribe":
                actions.send += tuple((c.index, m) for m in c.adapter.resubscribe_messages(symbol))
        if out.want_snapshot:
            actions.fetch += (symbol,)
        if out.resynced:
            self.stats.resyncs += 1
            actions.publish.append(self._status("resynced", self.clock(), symbol=symbol, channel="book"))

    def _trade(self, t: Trade, actions: Actions) -> None:
        trail = self.trades.get(t.symbol)
        if trail is not None:
            if t.trade_id in trail.ids:
                return  # a venue re-sent a trade already published
            trail.remember(t.trade_id)
            if t.ts_event > trail.last_ts:
                trail.last_ts = t.ts_event
        actions.publish.append(t)

    def _backfill(self, b: TradeBackfill, ts_recv: int, actions: Actions) -> None:
        """Trades a venue re-sends on subscribe: on a reconnect, publish those after the
        last one published and report only what they do not cover."""
        trail = self.trades.get(b.symbol)
        if trail is None or trail.missed_from is None:
            return  # first subscription: history, not news
        since = trail.last_ts or trail.missed_from  # no trade seen: none happened before the last frame
        fresh = [t for t in b.trades if t.ts_event >= since and t.trade_id not in trail.ids]
        for t in fresh:
            self._trade(t, actions)
        self.stats.trades_backfilled += len(fresh)
        oldest = min((t.ts_event for t in b.trades), default=None)
        if oldest is None or oldest > since:
            actions.publish.append(self._status(
                "trades_missed", ts_recv, symbol=b.symbol, channel="trade",
                reason="disconnected; venue re-sent only its latest trades",
                missed_from=trail.missed_from, missed_to=oldest if oldest is not None else ts_recv))
        trail.missed_from = None

    def _report_missed_trades(self, c: Connection, now: int, actions: Actions) -> None:
        can_backfill = c.adapter.trades_page_limit > 0
        for s in c.symbols:
            trail = self.trades.get(s)
            if trail is not None and trail.missed_from is not None:
                reason = "disconnected; backfilling over REST" if can_backfill else "disconnected"
                actions.publish.append(self._status(
                    "trades_missed", now, symbol=s, channel="trade", reason=reason,
                    missed_from=trail.missed_from, missed_to=now))
                if can_backfill:
                    actions.backfill += ((s, trail.missed_from, now),)
                trail.missed_from = None

    def on_trades_backfill(self, symbol: str, since_ns: int, until_ns: int, trades: list[Trade]) -> Actions:
        """Trades fetched over REST for a missed range: publish the ones not yet seen,
        then ``resynced`` on the trade channel, or ``trades_missed`` again when the
        venue's page limit may have cut the range short."""
        actions = Actions()
        trail = self.trades[symbol]
        fresh = sorted((t for t in trades if since_ns <= t.ts_event <= until_ns and t.trade_id not in trail.ids),
                       key=lambda t: t.ts_event)
        for t in fresh:
            self._trade(t, actions)
        self.stats.trades_backfilled += len(fresh)
        limit = self.connection_of[symbol].adapter.trades_page_limit
        now = self.clock()
        if limit and len(trades) >= limit:
            actions.publish.append(self._status(
                "trades_missed", now, symbol=symbol, channel="trade", missed_from=since_ns, missed_to=until_ns,
                reason=f"backfill incomplete: {len(fresh)} trades published, the venue's page limit was reached"))
        else:
            actions.publish.append(self._status(
                "resynced", now, symbol=symbol, channel="trade",
                reason=f"backfilled {len(fresh)} trades over REST"))
        return actions

    def _stream_sequence(self, c: Connection, sequence: int, ts_recv: int, actions: Actions) -> None:
        last = c.stream_sequence
        c.stream_sequence = sequence
        if last is None or sequence == last + 1:
            return
        self.stats.stream_gaps += 1
        reason = f"connection sequence gap: {last} then {sequence}"
        for s in c.symbols:
            if s in self.books:
                self._book_outcome(c, s, self.books[s].invalidate(reason), actions)
            trail = self.trades.get(s)
            if trail is not None:
                actions.publish.append(self._status(
                    "trades_missed", ts_recv, symbol=s, channel="trade", reason=reason,
                    missed_from=trail.last_ts or ts_recv, missed_to=ts_recv))

    def _status(self, state: str, ts: int, **fields: object) -> FeedStatus:
        return FeedStatus(venue=self.venue, state=state, ts=ts, **fields)  # type: ignore[arg-type]

    def _describe(self, c: Connection) -> str:
        return f"connection {c.index + 1}/{len(self.connections)} ({len(c.symbols)} symbols)"


__all__ = ["Actions", "CHANNEL_OF_MESSAGE", "Connection", "Feed", "FeedStats", "Published"]
