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

from bisect import bisect_left
from collections import deque
from decimal import Decimal
from itertools import count, islice
from operator import attrgetter, eq
from typing import Iterable, Literal, Sequence

import msgspec

from schemas.market import BBO, BookDelta, BookSnapshot, PriceLevel
from services.venues.checksum import BookChecksum, LevelTexts
from services.venues.wsbase import BookRule, BookUpdate, ChecksumFn, Level, ResyncMethod

Verdict = Literal["apply", "skip", "gap"]

_ZERO = Decimal(0)
_versions = count()
"""Side versions, unique across books."""
_price = attrgetter("price")


class OrderBook:
    """Price levels of both sides, each side two parallel lists in ascending price order:
    the prices and their :class:`~schemas.market.PriceLevel` objects (best bid last, best
    ask first). Levels are found by bisection: hashing a Decimal costs more than the
    comparisons of a binary search in a venue-sized book, and sorted lists give the best
    levels and snapshots without sorting.

    A level enters the book as a PriceLevel, built once from the venue's numbers (which
    validates them: positive finite price, finite size >= 0); published snapshots and
    deltas reuse those objects rather than building new ones. The tuple methods
    (``best_bid``, ``top_bids``, ...) give ``(price, size)`` pairs. ``bid_version`` /
    ``ask_version`` take a new value whenever that side may have changed.
    """

    __slots__ = ("_bid_px", "_bid_lv", "_ask_px", "_ask_lv", "bid_version", "ask_version")

    def __init__(self) -> None:
        self._bid_px: list[Decimal] = []
        self._bid_lv: list[PriceLevel] = []
        self._ask_px: list[Decimal] = []
        self._ask_lv: list[PriceLevel] = []
        self.bid_version = next(_versions)
        self.ask_version = next(_versions)

    def clear(self) -> None:
        self.bid_version = next(_versions)
        self.ask_version = next(_versions)
        self._bid_px, self._bid_lv, self._ask_px, self._ask_lv = [], [], [], []

    @staticmethod
    def _apply_side(prices: list[Decimal], levels: list[PriceLevel], updates: Iterable[Level]) -> list[PriceLevel]:
        applied = []
        for price, size in updates:
            level = PriceLevel(price, size)
            i = bisect_left(prices, price)
            if i < len(prices) and prices[i] == price:
                if size:
                    levels[i] = level
                else:
                    del prices[i], levels[i]
            elif size:
                prices.insert(i, price)
                levels.insert(i, level)
            applied.append(level)
        return applied

    def apply(self, bids: Sequence[Level], asks: Sequence[Level]) -> tuple[list[PriceLevel], list[PriceLevel]]:
        """Set each level's absolute size; size 0 deletes it. Returns the levels applied,
        as PriceLevels, in the order given (a delta's content). ValueError on an invalid
        level (the levels before it are applied)."""
        if bids:
            self.bid_version = next(_versions)
            applied_bids = self._apply_side(self._bid_px, self._bid_lv, bids)
        else:
            applied_bids = []
        if asks:
            self.ask_version = next(_versions)
            applied_asks = self._apply_side(self._ask_px, self._ask_lv, asks)
        else:
            applied_asks = []
        return applied_bids, applied_asks

    @staticmethod
    def _sorted_side(updates: Iterable[Level], previous: Iterable[PriceLevel] = (),
                     descending: bool = False) -> tuple[list[Decimal], list[PriceLevel]]:
        """A snapshot side (size 0 levels left out) as ascending price and level lists.

        Venues send a side best first, so the levels are built in the order given and
        only checked to be strictly ascending (``descending``: bids) in one pass; other
        input is sorted (of a price given twice, the last counts). ``previous``: the
        side's levels before, best first. One at the same rank holding the very same
        price and size objects (adapters that share the Decimal of a number text, as
        upbitlike does, resend them) is reused: it was validated when it entered the
        book, and two neighbours reused from consecutive ranks are known to be in order.
        """
        levels: list[PriceLevel] = []
        append = levels.append
        known_levels = iter(previous)
        before: Decimal | None = None  # the price of the level before
        ordered, reused = True, False
        for price, size in updates:
            if not size:
                continue
            known = next(known_levels, None)
            reused_before = reused
            reused = known is not None and known.price is price and known.size is size
            append(known if reused else PriceLevel(price, size))  # type: ignore[arg-type]
            if ordered and before is not None and not (reused and reused_before):
                ordered = price < before if descending else before < price
            before = price
        if ordered:
            if descending:
                levels.reverse()
            return list(map(_price, levels)), levels
        levels.sort(key=_price)  # stable: equal prices keep their order
        prices = list(map(_price, levels))
        if any(map(eq, prices, islice(prices, 1, None))):  # a price given twice: the last one counts
            last = {p: lv for p, lv in zip(prices, levels)}
            levels = [last[p] for p in dict.fromkeys(prices)]
            prices = list(map(_price, levels))
        return prices, levels

    def replace(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Make the book exactly these levels (a snapshot; size 0 levels are left out).
        ValueError on an invalid level (the book is then empty)."""
        old_bids, old_asks = self._bid_lv, self._ask_lv  # clear() leaves these lists as they are
        self.clear()
        bid_px, bid_lv = self._sorted_side(bids, reversed(old_bids), descending=True)
        ask_px, ask_lv = self._sorted_side(asks, old_asks)
        self._bid_px, self._bid_lv, self._ask_px, self._ask_lv = bid_px, bid_lv, ask_px, ask_lv

    def best_bid(self) -> Level | None:
        if not self._bid_lv:
            return None
        level = self._bid_lv[-1]
        return level.price, level.size

    def best_ask(self) -> Level | None:
        if not self._ask_lv:
            return None
        level = self._ask_lv[0]
        return level.price, level.size

    def bid_levels(self, n: int | None = None) -> list[PriceLevel]:
        """Up to ``n`` bids as the book's PriceLevels, best (highest) first."""
        if n is None:
            return self._bid_lv[::-1]
        return self._bid_lv[:-n - 1:-1] if n > 0 else []

    def ask_levels(self, n: int | None = None) -> list[PriceLevel]:
        """Up to ``n`` asks as the book's PriceLevels, best (lowest) first."""
        return self._ask_lv[:] if n is None else self._ask_lv[:max(n, 0)]

    def top_bids(self, n: int | None = None) -> list[Level]:
        """Up to ``n`` bids, best (highest) first."""
        return [(level.price, level.size) for level in self.bid_levels(n)]

    def top_asks(self, n: int | None = None) -> list[Level]:
        """Up to ``n`` asks, best (lowest) first."""
        return [(level.price, level.size) for level in self.ask_levels(n)]

    def truncate(self, depth: int) -> tuple[list[Level], list[Level]]:
        """Drop levels beyond ``depth`` per side; returns them as deletions (size 0)."""
        evicted_bids: list[Level] = []
        evicted_asks: list[Level] = []
        if len(self._bid_px) > depth:
            self.bid_version = next(_versions)
            cut = len(self._bid_px) - depth
            evicted_bids = [(p, _ZERO) for p in self._bid_px[:cut]]
            del self._bid_px[:cut], self._bid_lv[:cut]
        if len(self._ask_px) > depth:
            self.ask_version = next(_versions)
            evicted_asks = [(p, _ZERO) for p in self._ask_px[depth:]]
            del self._ask_px[depth:], self._ask_lv[depth:]
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


class BookOutcome(msgspec.Struct, gc=False):
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
        self._bbo: tuple[PriceLevel | None, PriceLevel | None] = (None, None)
        """The best bid and ask of the last BBO published."""
        self._texts = LevelTexts()
        """The checksum's cached level texts (when the checksum is a BookChecksum)."""

    # -- inputs ---------------------------------------------------------------------
    def on_update(self, update: BookUpdate) -> BookOutcome:
        """Check and apply one venue book message (snapshot or delta) from the feed."""
        if update.snapshot:
            return self.on_snapshot(update)
        out = BookOutcome()
        other = self.on_delta(update, out.messages)
        return out if other is None else other

    def on_delta(self, update: BookUpdate, publish: list) -> BookOutcome | None:
        """Check and apply one delta, appending the messages it publishes to ``publish``.
        Returns a BookOutcome only when there is more to do than publish (a gap, a
        snapshot to fetch): the common case builds none."""
        if not self.synced:
            out = BookOutcome()
            self._hold(update, out)
            return out
        if self.rule != "none":
            verdict = check_sequence(self.rule, self.last, update, self._fresh)
            if verdict != "apply":
                return None if verdict == "skip" else self._sequence_gap(update)
        return self._apply_delta(update, publish)

    def on_snapshot(self, snapshot: BookUpdate) -> BookOutcome:
        """Replace the book with a snapshot (from the feed or REST), replay the buffered
        deltas that follow it, and publish the result as one BookSnapshot."""
        out = BookOutcome()
        self.snapshot_requested = False
        book = self.book
        try:
            book.replace(snapshot.bids, snapshot.asks)
        except ValueError as e:
            return self._lose_sync(f"invalid level in snapshot: {e}", out)
        if self.depth is not None:
            book.truncate(self.depth)
        self.last = snapshot.sequence
        self._fresh = True
        unsequenced = snapshot.sequence is None
        ts_event, ts_recv = snapshot.ts_event, snapshot.ts_recv
        if snapshot.checksum is not None and not self._checksum_ok(snapshot.checksum):
            return self._lose_sync("checksum mismatch on snapshot", out, checksum=True)
        bid_px, ask_px = book._bid_px, book._ask_px  # the book's own lists, read here as in _apply_delta
        if bid_px and ask_px and bid_px[-1] >= ask_px[0]:  # OrderBook.crossed()
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
                bids=book._bid_lv[::-1], asks=book._ask_lv[:],  # bid_levels(), ask_levels()
            ))
        if self.emit_bbo:
            self._publish_bbo(ts_event, ts_recv, out.messages)
        return out

    def current(self, ts_recv: int) -> list:
        """The book as it stands, as a BookSnapshot (and its BBO) with the next sequence:
        what a process that kept the book warm without publishing sends when it starts
        publishing. Nothing while the book is out of sync (its resync will publish it)."""
        if not self.synced:
            return []
        out: list = []
        self.sequence += 1
        if self.emit_book:
            out.append(BookSnapshot(
                venue=self.venue, symbol=self.symbol, ts_event=ts_recv, ts_recv=ts_recv,
                sequence=self.sequence, venue_sequence=self.last,
                bids=self.book._bid_lv[::-1], asks=self.book._ask_lv[:],
            ))
        if self.emit_bbo:
            self._bbo = (None, None)  # published again whatever it was
            self._publish_bbo(ts_recv, ts_recv, out)
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
    def _sequence_gap(self, update: BookUpdate) -> BookOutcome:
        """A delta that does not follow the last one takes the book out of sync."""
        first = update.first_sequence if update.first_sequence is not None else update.prev_sequence
        out = self._lose_sync(f"sequence gap: last {self.last}, got {first}..{update.sequence}", None)
        self._hold(update, out)  # the message after the gap is good data for the resync
        return out

    def _hold(self, update: BookUpdate, out: BookOutcome) -> None:
        """Out of sync: buffer a delta for the REST snapshot to come (resync ``rest``)."""
        if self.resync != "rest":
            return
        self._buffer.append(update)
        if not self.snapshot_requested:
            self.snapshot_requested = True
            out.want_snapshot = True

    def _apply_levels(self, update: BookUpdate, out: BookOutcome, *, publish: bool) -> bool:
        """:meth:`_apply_delta` into ``out``: False when the book lost sync (``out`` says why)."""
        return self._apply_delta(update, out.messages if publish else None, out) is None

    def _apply_delta(
        self, update: BookUpdate, publish: list | None, out: BookOutcome | None = None,
    ) -> BookOutcome | None:
        """Apply a delta, check the book, append its BookDelta (and BBO) to ``publish``
        (None: publish nothing). Returns the outcome (``out`` when given) if the book
        lost sync, else None."""
        book = self.book
        try:
            bids, asks = book.apply(update.bids, update.asks)
        except ValueError as e:
            return self._lose_sync(f"invalid level: {e}", out)
        # the book's own lists (changed in place by apply and truncate) are read here, same
        # module, to spare calls per update
        bid_px, ask_px = book._bid_px, book._ask_px
        depth = self.depth
        if depth is not None and (len(bid_px) > depth or len(ask_px) > depth):
            evicted_bids, evicted_asks = book.truncate(depth)
            if evicted_bids:
                bids += [PriceLevel(p, q) for p, q in evicted_bids]
            if evicted_asks:
                asks += [PriceLevel(p, q) for p, q in evicted_asks]
        sequence = update.sequence
        if sequence is not None:
            self.last = sequence
        self._fresh = False
        if update.checksum is not None and not self._checksum_ok(update.checksum):
            return self._lose_sync("checksum mismatch", out, checksum=True)
        if bid_px and ask_px and bid_px[-1] >= ask_px[0]:  # OrderBook.crossed()
            return self._lose_sync("crossed book", out)
        if publish is not None and (bids or asks):
            self.sequence += 1
            if self.emit_book:
                publish.append(BookDelta(
                    venue=self.venue, symbol=self.symbol, ts_event=update.ts_event, ts_recv=update.ts_recv,
                    sequence=self.sequence, venue_sequence=sequence,
                    bids=bids, asks=asks,
                ))
            if self.emit_bbo:
                self._publish_bbo(update.ts_event, update.ts_recv, publish)
        return None

    def _checksum_ok(self, expected: int) -> bool:
        assert self.checksum is not None, f"{self.venue} sends checksums but its adapter declares no checksum"
        n = self.checksum_depth
        checksum = self.checksum
        if isinstance(checksum, BookChecksum):
            return checksum.of_book(self.book, n, self._texts) == expected
        return checksum(self.book.top_bids(n), self.book.top_asks(n)) == expected

    def _lose_sync(self, reason: str, out: BookOutcome | None, *, checksum: bool = False) -> BookOutcome:
        """Take the book out of sync; says why in ``out`` (a new outcome when None)."""
        if out is None:
            out = BookOutcome()
        self.synced = False
        self._lost_sync = True
        self.book.clear()
        self._buffer.clear()
        self._bbo = (None, None)
        out.gap = reason
        out.checksum_failed = checksum
        return out

    def _publish_bbo(self, ts_event: int, ts_recv: int, publish: list) -> None:
        """A BBO when the best bid or ask differs from the last one published."""
        bid_lv, ask_lv = self.book._bid_lv, self.book._ask_lv
        bid = bid_lv[-1] if bid_lv else None
        ask = ask_lv[0] if ask_lv else None
        last_bid, last_ask = self._bbo
        if bid is last_bid and ask is last_ask:
            return  # the very level objects published last: the top was not touched
        self._bbo = (bid, ask)
        if bid == last_bid and ask == last_ask:
            return  # new levels, same prices and sizes
        publish.append(BBO(
            venue=self.venue, symbol=self.symbol, ts_event=ts_event, ts_recv=ts_recv,
            bid=bid.price if bid else None, bid_size=bid.size if bid else None,
            ask=ask.price if ask else None, ask_size=ask.size if ask else None,
        ))


def levels(pairs: Sequence[Sequence[str]]) -> list[Level]:
    """``[[price, size, ...], ...]`` wire strings to Decimal levels (extra fields ignored)."""
    return [(Decimal(p[0]), Decimal(p[1])) for p in pairs]


__all__ = ["BookOutcome", "OrderBook", "SymbolBook", "Verdict", "check_sequence", "levels"]
