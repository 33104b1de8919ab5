"""Books rebuilt from recorded traffic pass every sequence and checksum check, and
books fed damaged traffic (dropped or reordered frames) never drift silently.

Source: ../shared/data/recorded (cryptofeed sample_data): BINANCE.ws.1.0 with the
/api/v3/depth snapshots of BINANCE.http.0.0, KRAKEN.ws.50.0 (book-1000 with CRC32),
OKX.ws.1.0 (books with CRC32), BITFINEX.ws.11.0 (conf SEQ_ALL sequence numbers).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgspec
from hypothesis import HealthCheck, given, settings, strategies as st

from services.ingestor.recording import HttpResponse, read_records, to_ns
from services.venues.binance.ws import split_symbol
from services.venues.book import SymbolBook
from services.venues.wsbase import BookUpdate, StreamSequence


class DepthSnapshot(msgspec.Struct):
    lastUpdateId: int
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]


def binance_snapshots(shared_data: Path) -> dict[str, BookUpdate]:
    out = {}
    for r in read_records(shared_data / "recorded" / "BINANCE.http.0.0"):
        assert isinstance(r, HttpResponse)
        symbol = split_symbol(r.url.split("symbol=")[1].split("&")[0])
        s = msgspec.json.decode(r.body, type=DepthSnapshot)
        out[symbol] = BookUpdate(symbol=symbol, snapshot=True, bids=s.bids, asks=s.asks, ts_event=to_ns(r.ts),
                                 ts_recv=to_ns(r.ts), sequence=s.lastUpdateId)
    return out


def book_for(adapter, symbol: str) -> SymbolBook:
    return SymbolBook(adapter.venue, symbol, rule=adapter.book_rule, resync=adapter.resync,
                      depth=adapter.book_depth, checksum=adapter.checksum, emit_bbo=True)


def test_binance_books_sync_to_the_recorded_snapshots_without_a_gap(recorded, shared_data):
    session = recorded("binance", "BINANCE.ws.1.0")
    updates = [e for e in session.events() if isinstance(e, BookUpdate)]
    assert len(updates) == 177
    books = {}
    for u in updates:
        out = (books.get(u.symbol) or books.setdefault(u.symbol, book_for(session.adapter, u.symbol))).on_update(u)
        assert out.gap is None
    for symbol, snapshot in binance_snapshots(shared_data).items():
        out = books[symbol].on_snapshot(snapshot)
        assert out.gap is None and not out.want_snapshot and books[symbol].synced, symbol
        assert out.messages[0].venue_sequence == max(u.sequence for u in updates if u.symbol == symbol)


def test_kraken_every_recorded_checksum_matches(recorded):
    session = recorded("kraken", "KRAKEN.ws.50.0")
    assert session.adapter.book_depth == 1000  # the depth subscribed in the recording
    books, checked, published = {}, 0, 0
    for e in session.events():
        if isinstance(e, BookUpdate):
            book = books.get(e.symbol) or books.setdefault(e.symbol, book_for(session.adapter, e.symbol))
            out = book.on_update(e)
            assert out.gap is None, (e.symbol, out.gap)
            checked += e.checksum is not None
            published += len([m for m in out.messages if m.__class__.__name__.startswith("Book")])
    assert checked == 4269 and published == 4279


def test_okx_every_recorded_checksum_matches_spot_and_derivatives(recorded):
    # derivatives (BTC-USD-220527, UNI-USD-SWAP) are not exbus symbols; their books
    # still check the engine and the OKX checksum on more traffic.
    session = recorded("okx", "OKX.ws.1.0", symbols=["BTC-USDT"])
    session.adapter._symbols.update({"BTC-USD-220527": "BTC-USD-220527", "UNI-USD-SWAP": "UNI-USD-SWAP"})
    books, checked = {}, 0
    for e in session.events():
        if isinstance(e, BookUpdate):
            book = books.get(e.symbol) or books.setdefault(e.symbol, book_for(session.adapter, e.symbol))
            assert book.on_update(e).gap is None, e.symbol
            checked += e.checksum is not None
    assert checked == 290


def test_bitfinex_stream_sequence_is_gap_free_and_books_never_cross(recorded):
    session = recorded("bitfinex", "BITFINEX.ws.11.0")
    events = session.events()
    seqs = [e.sequence for e in events if isinstance(e, StreamSequence)]
    assert seqs == list(range(1, 1671))
    books = {}
    for e in events:
        if isinstance(e, BookUpdate):
            book = books.get(e.symbol) or books.setdefault(e.symbol, book_for(session.adapter, e.symbol))
            assert book.on_update(e).gap is None
    assert len(books) == 7 and all(b.synced for b in books.values())


# -- damaged traffic ----------------------------------------------------------------------

def _reference_states(updates: list[BookUpdate], snapshot: BookUpdate, adapter) -> dict[int, tuple]:
    """Book state after each venue sequence, on the undamaged stream."""
    book = book_for(adapter, snapshot.symbol)
    book.on_snapshot(snapshot)
    states = {book.last: (book.book.top_bids(), book.book.top_asks())}
    for u in updates:
        if u.sequence > snapshot.sequence:
            book.on_update(u)
            states[book.last] = (book.book.top_bids(), book.book.top_asks())
    return states


def _damage(items: list, drops: list[int], swaps: list[int]) -> list:
    damaged = list(items)
    for i in swaps:
        if i + 1 < len(damaged):
            damaged[i], damaged[i + 1] = damaged[i + 1], damaged[i]
    return [u for i, u in enumerate(damaged) if i not in set(drops)]


_property = settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_property
@given(drops=st.lists(st.integers(0, 149), max_size=6), swaps=st.lists(st.integers(0, 149), max_size=4))
def test_binance_book_with_dropped_or_reordered_diffs_is_right_or_reports_a_gap(recorded, shared_data, drops, swaps):
    """Whenever the book publishes, it equals the undamaged book at the same update id;
    any damage that matters surfaces as a gap, and a REST snapshot then resyncs it."""
    session = _cached(recorded, "binance", "BINANCE.ws.1.0")
    updates = [e for e in session.events() if isinstance(e, BookUpdate) and e.symbol == "NKN-USDT"]
    snapshot = binance_snapshots(shared_data)["NKN-USDT"]
    states = _sessions.get("binance-states") or _sessions.setdefault(
        "binance-states", _reference_states(updates, snapshot, session.adapter))
    live = [u for u in updates if u.sequence > snapshot.sequence]
    book = book_for(session.adapter, "NKN-USDT")
    book.on_snapshot(snapshot)
    gaps = 0
    for u in _damage(live, drops, swaps):
        out = book.on_update(u)
        gaps += out.gap is not None
        if out.want_snapshot:  # the venue's current book, as a REST snapshot would return it
            bids, asks = states[u.sequence]
            out = book.on_snapshot(BookUpdate(symbol="NKN-USDT", snapshot=True, bids=bids, asks=asks,
                                              ts_event=0, ts_recv=0, sequence=u.sequence))
            assert out.resynced and book.synced
        if book.synced and out.messages:
            assert (book.book.top_bids(), book.book.top_asks()) == states[book.last]
    # undetected damage could only be a dropped last diff: the book is then right as of the one before
    assert gaps > 0 or (book.book.top_bids(), book.book.top_asks()) == states[book.last]


@_property
@given(drops=st.lists(st.integers(0, 399), min_size=1, max_size=5), swaps=st.lists(st.integers(0, 399), max_size=3))
def test_kraken_book_with_dropped_or_reordered_updates_is_right_on_top_or_reports_a_gap(recorded, drops, swaps):
    """Kraken's checksum covers the top 10 levels: a synced book's top 10 always equals
    the undamaged book's, and a damage that reaches the top is a checksum gap."""
    session = _cached(recorded, "kraken", "KRAKEN.ws.50.0")
    updates = [e for e in session.events() if isinstance(e, BookUpdate) and e.symbol == "XMR-USD"][:400]
    tops = _sessions.get("kraken-tops") or _sessions.setdefault("kraken-tops", _tops(updates, session.adapter))
    indexed = list(enumerate(updates))
    head, rest = indexed[0], indexed[1:]  # the first message is the snapshot
    book = book_for(session.adapter, "XMR-USD")
    book.on_update(head[1])
    for i, u in _damage(rest, drops, swaps):
        out = book.on_update(u)
        if out.gap:
            assert out.checksum_failed or out.gap == "crossed book"
            # resubscribing yields the venue's current book as a fresh snapshot
            bids, asks = reference_state_at(updates, i, session.adapter)
            assert book.on_update(BookUpdate(symbol="XMR-USD", snapshot=True, bids=bids, asks=asks,
                                             ts_event=0, ts_recv=0)).resynced
        if book.synced and u.checksum is not None:
            assert (book.book.top_bids(10), book.book.top_asks(10)) == tops[i]


def _tops(updates: list[BookUpdate], adapter) -> list[tuple]:
    reference = book_for(adapter, "XMR-USD")
    tops = []
    for u in updates:
        reference.on_update(u)
        tops.append((reference.book.top_bids(10), reference.book.top_asks(10)))
    return tops


def reference_state_at(updates: list[BookUpdate], index: int, adapter) -> tuple[list, list]:
    book = book_for(adapter, "XMR-USD")
    for u in updates[: index + 1]:
        book.on_update(u)
    return book.book.top_bids(), book.book.top_asks()


_sessions: dict = {}


def _cached(recorded, venue: str, name: str):
    key = (venue, name)
    if key not in _sessions:
        _sessions[key] = recorded(venue, name)
    return _sessions[key]
