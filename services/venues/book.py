"""The one L2 order-book engine of every venue.

:class:`OrderBook` holds the price levels. :class:`SymbolBook` keeps one symbol's book
in sync with a venue's book messages (:class:`~services.venues.wsbase.BookUpdate`):
it checks each message against the venue's sequence rule, applies it, truncates to
the venue's depth, verifies the venue's checksum and that the book is not crossed,
and turns what it applied into the published BookSnapshot / BookDelta / BBO with
exbus sequence numbers (one per published book message of the symbol).

A book never drifts silently: any broken rule takes it out of sync and says why
(``BookOutcome.gap``); nothing more is published for it until a snapshot has
re-established sync (``BookOutcome.resynced``). While waiting for a REST snapshot
the deltas are buffered, and the ones that follow the snapshot are replayed.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from decimal import Decimal
from typing import Iterable, Literal, Sequence

import msgspec

from schemas.market import BBO, BookDelta, BookSnapshot, PriceLevel
from services.venues.wsbase import BookRule, BookUpdate, ChecksumFn, Level, ResyncMethod

Verdict = Literal["apply", "skip", "gap"]

_ZERO = Decimal(0)


class OrderBook:
    """Price levels of both sides; each side a dict price -> size plus its sorted prices."""

    __slots__ = ("bids", "asks", "_bid_px", "_ask_px")

    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self._bid_px: list[Decimal] = []  # ascending; best bid last
        self._ask_px: list[Decimal] = []  # ascending; best ask first

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()
        self._bid_px.clear()
        self._ask_px.clear()

    @staticmethod
    def _set(levels: dict[Decimal, Decimal], prices: list[Decimal], price: Decimal, size: Decimal) -> None:
        if size == _ZERO:
            if levels.pop(price, None) is not None:
                del prices[bisect_left(prices, price)]
        else:
            if price not in levels:
                insort(prices, price)
            levels[price] = size

    def apply(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Set each level's absolute size; size 0 deletes it."""
        for price, size in bids:
            self._set(self.bids, self._bid_px, price, size)
        for price, size in asks:
            self._set(self.asks, self._ask_px, price, size)

    def best_bid(self) -> Level | None:
        return (self._bid_px[-1], self.bids[self._bid_px[-1]]) if self._bid_px else None

    def best_ask(self) -> Level | None:
        return (self._ask_px[0], self.asks[self._ask_px[0]]) if self._ask_px else None

    def top_bids(self, n: int | None = None) -> list[Level]:
        """Up to ``n`` bids, best (highest) first."""
        px = self._bid_px if n is None else self._bid_px[-n:] if n else []
        return [(p, self.bids[p]) for p in reversed(px)]

    def top_asks(self, n: int | None = None) -> list[Level]:
        """Up to ``n`` asks, best (lowest) first."""
        px = self._ask_px if n is None else self._ask_px[:n]
        return [(p, self.asks[p]) for p in px]

    def truncate(self, depth: int) -> tuple[list[Level], list[Level]]:
        """Drop levels beyond ``depth`` per side; returns them as deletions (size 0)."""
        evicted_bids: list[Level] = []
        evicted_asks: list[Level] = []
        if len(self._bid_px) > depth:
            cut = len(self._bid_px) - depth
            for p in self._bid_px[:cut]:
                del self.bids[p]
                evicted_bids.append((p, _ZERO))
            del self._bid_px[:cut]
        if len(self._ask_px) > depth:
            for p in self._ask_px[depth:]:
                del self.asks[p]
                evicted_asks.append((p, _ZERO))
            del self._ask_px[depth:]
        return evicted_bids, evicted_asks

    def crossed(self) -> bool:
        """True when the best bid is at or above the best ask."""
        return bool(self._bid_px and self._ask_px and self._bid_px[-1] >= self._ask_px[0])

    def __len__(self) -> int:
        return len(self._bid_px) + len(self._ask_px)


def check_sequence(rule: BookRule, last: int | None, update: BookUpdate, fresh: bool) -> Verdict:
    """Whether a delta follows the book's last venue sequence ``last``.

    ``fresh``: no delta applied since the snapshot (a REST snapshot sits somewhere
    inside a delta's range, not at its start).
    """
    if rule == "update_id":
        # Binance: drop u <= lastUpdateId; the first delta must cover lastUpdateId+1
        # (U <= last+1 <= u) and each next one must start at the previous u+1.
        # https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams#how-to-manage-a-local-order-book-correctly
        u, first = update.sequence, update.first_sequence
        if u is None or first is None or last is None:
            return "gap"
        if u <= last:
            return "skip"
        if first > last + 1:
            return "gap"
        if not fresh and first != last + 1:
            return "gap"
        return "apply"
    if rule == "prev_sequence":
        # OKX: prevSeqId of an update equals the seqId of the one before; seqId may
        # reset lower after maintenance, so prevSeqId is what chains. After a REST
        # snapshot, the first update is the one with prevSeqId <= snapshot seqId < seqId.
        # https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-channel
        seq, prev = update.sequence, update.prev_sequence
        if seq is None and prev is None:
            return "apply"  # frames from before seqId existed (2022): the checksum guards them
        if last is None and fresh:
            return "apply"  # after a REST snapshot without seqId, aligned by time (SymbolBook)
        if seq is None or prev is None or last is None:
            return "gap"
        if prev == last:
            return "apply"
        if fresh and prev <= last < seq:
            return "apply"
        if seq <= last and prev < last:
            return "skip"
        return "gap"
    return "apply"


class BookOutcome(msgspec.Struct):
    """What one book message (or snapshot) did to a symbol's book."""

    messages: list[BookSnapshot | BookDelta | BBO] = msgspec.field(default_factory=list)
    gap: str | None = None
    """The book lost sync, and why; it stays out of sync until a snapshot."""
    resynced: bool = False
    """A snapshot re-established sync after a gap."""
    checksum_failed: bool = False
    want_snapshot: bool = False
    """A REST snapshot is needed (resync ``rest``) and none was asked for yet."""


class SymbolBook:
    """One symbol's book at one venue, kept in sync under the venue's rules."""

    def __init__(
        self,
        venue: str,
        symbol: str,
        *,
        rule: BookRule = "none",
        resync: ResyncMethod = "resubscribe",
        depth: int | None = None,
        checksum: ChecksumFn | None = None,
        checksum_depth: int = 25,
        emit_book: bool = True,
        emit_bbo: bool = False,
        buffer_limit: int = 10_000,
    ) -> None:
        self.venue = venue
        self.symbol = symbol
        self.rule = rule
        self.resync = resync
        self.depth = depth
        self.checksum = checksum
        self.checksum_depth = checksum_depth
        self.emit_book = emit_book
        self.emit_bbo = emit_bbo
        self.book = OrderBook()
        self.synced = False
        self.last: int | None = None
        """The venue sequence of the last applied message."""
        self.sequence = 0
        """exbus sequence of the last published book message."""
        self._fresh = False
        self._lost_sync = False
        self._buffer: deque[BookUpdate] = deque(maxlen=buffer_limit)
        self.snapshot_requested = False
        self._bbo: tuple[Level | None, Level | None] = (None, None)

    # -- inputs ---------------------------------------------------------------------
    def on_update(self, update: BookUpdate) -> BookOutcome:
        """Check and apply one venue book message (snapshot or delta) from the feed."""
        if update.snapshot:
            return self.on_snapshot(update)
        out = BookOutcome()
        if self.synced:
            self._apply_delta(update, out)
        else:
            self._hold(update, out)
        return out

    def on_snapshot(self, snapshot: BookUpdate) -> BookOutcome:
        """Replace the book with a snapshot (from the feed or REST), replay the buffered
        deltas that follow it, and publish the result as one BookSnapshot."""
        out = BookOutcome()
        self.snapshot_requested = False
        book = self.book
        book.clear()
        book.apply(snapshot.bids, snapshot.asks)
        if self.depth is not None:
            book.truncate(self.depth)
        self.last = snapshot.sequence
        self._fresh = True
        unsequenced = snapshot.sequence is None
        ts_event, ts_recv = snapshot.ts_event, snapshot.ts_recv
        if snapshot.checksum is not None and not self._checksum_ok(snapshot.checksum):
            return self._lose_sync("checksum mismatch on snapshot", out, checksum=True)
        if book.crossed():
            return self._lose_sync("crossed book in snapshot", out)
        while self._buffer:
            update = self._buffer.popleft()
            if unsequenced and update.ts_event <= snapshot.ts_event:
                continue  # a snapshot without an id covers what happened up to its time
            verdict = check_sequence(self.rule, self.last, update, self._fresh)
            if verdict == "skip":
                continue
            if verdict == "gap":
                # the snapshot is older than the buffered deltas: keep them, ask again
                self._buffer.appendleft(update)
                self.synced = False
                self.snapshot_requested = True
                out.want_snapshot = True
                return out
            if not self._apply_levels(update, out, publish=False):
                return out
            ts_event, ts_recv = update.ts_event, update.ts_recv
        self.synced = True
        if self._lost_sync:
            self._lost_sync = False
            out.resynced = True
        self.sequence += 1
        if self.emit_book:
            out.messages.append(BookSnapshot(
                venue=self.venue, symbol=self.symbol, ts_event=ts_event, ts_recv=ts_recv,
                sequence=self.sequence, venue_sequence=self.last,
                bids=[PriceLevel(p, q) for p, q in book.top_bids()],
                asks=[PriceLevel(p, q) for p, q in book.top_asks()],
            ))
        self._maybe_bbo(ts_event, ts_recv, out)
        return out

    def invalidate(self, reason: str) -> BookOutcome:
        """Take the book out of sync from outside (a connection-wide sequence gap,
        a disconnect); the next snapshot resyncs it. A gap only when it was in sync."""
        if not self.synced:
            self._buffer.clear()
            return BookOutcome()
        return self._lose_sync(reason, BookOutcome())

    def reset(self) -> None:
        """Forget everything, as on a new subscription (no gap reported)."""
        self.book.clear()
        self.synced = False
        self.last = None
        self._buffer.clear()
        self.snapshot_requested = False
        self._bbo = (None, None)

    # -- internals --------------------------------------------------------------------
    def _apply_delta(self, update: BookUpdate, out: BookOutcome) -> None:
        verdict = check_sequence(self.rule, self.last, update, self._fresh)
        if verdict == "skip":
            return
        if verdict == "gap":
            first = update.first_sequence if update.first_sequence is not None else update.prev_sequence
            self._lose_sync(f"sequence gap: last {self.last}, got {first}..{update.sequence}", out)
            self._hold(update, out)  # the message after the gap is good data for the resync
            return
        self._apply_levels(update, out, publish=True)

    def _hold(self, update: BookUpdate, out: BookOutcome) -> None:
        """Out of sync: buffer a delta for the REST snapshot to come (resync ``rest``)."""
        if self.resync != "rest":
            return
        self._buffer.append(update)
        if not self.snapshot_requested:
            self.snapshot_requested = True
            out.want_snapshot = True

    def _apply_levels(self, update: BookUpdate, out: BookOutcome, *, publish: bool) -> bool:
        book = self.book
        book.apply(update.bids, update.asks)
        bids, asks = update.bids, update.asks
        if self.depth is not None:
            evicted_bids, evicted_asks = book.truncate(self.depth)
            if evicted_bids:
                bids = [*bids, *evicted_bids]
            if evicted_asks:
                asks = [*asks, *evicted_asks]
        if update.sequence is not None:
            self.last = update.sequence
        self._fresh = False
        if update.checksum is not None and not self._checksum_ok(update.checksum):
            self._lose_sync("checksum mismatch", out, checksum=True)
            return False
        if book.crossed():
            self._lose_sync("crossed book", out)
            return False
        if publish and (bids or asks):
            self.sequence += 1
            if self.emit_book:
                out.messages.append(BookDelta(
                    venue=self.venue, symbol=self.symbol, ts_event=update.ts_event, ts_recv=update.ts_recv,
                    sequence=self.sequence, venue_sequence=update.sequence,
                    bids=[PriceLevel(p, q) for p, q in bids], asks=[PriceLevel(p, q) for p, q in asks],
                ))
            self._maybe_bbo(update.ts_event, update.ts_recv, out)
        return True

    def _checksum_ok(self, expected: int) -> bool:
        assert self.checksum is not None, f"{self.venue} sends checksums but its adapter declares no checksum"
        n = self.checksum_depth
        return self.checksum(self.book.top_bids(n), self.book.top_asks(n)) == expected

    def _lose_sync(self, reason: str, out: BookOutcome, *, checksum: bool = False) -> BookOutcome:
        self.synced = False
        self._lost_sync = True
        self.book.clear()
        self._buffer.clear()
        self._bbo = (None, None)
        out.gap = reason
        out.checksum_failed = checksum
        return out

    def _maybe_bbo(self, ts_event: int, ts_recv: int, out: BookOutcome) -> None:
        if not self.emit_bbo:
            return
        top = (self.book.best_bid(), self.book.best_ask())
        if top == self._bbo:
            return
        self._bbo = top
        bid, ask = top
        out.messages.append(BBO(
            venue=self.venue, symbol=self.symbol, ts_event=ts_event, ts_recv=ts_recv,
            bid=bid[0] if bid else None, bid_size=bid[1] if bid else None,
            ask=ask[0] if ask else None, ask_size=ask[1] if ask else None,
        ))


def levels(pairs: Sequence[Sequence[str]]) -> list[Level]:
    """``[[price, size, ...], ...]`` wire strings to Decimal levels (extra fields ignored)."""
    return [(Decimal(p[0]), Decimal(p[1])) for p in pairs]


__all__ = ["BookOutcome", "OrderBook", "SymbolBook", "Verdict", "check_sequence", "levels"]
