"""A book's cached checksum (level texts reused while a level object stays in the book)
always equals the checksum computed from scratch over the same levels, whatever the
updates, including prices written with more or fewer trailing zeros (``1.5`` / ``1.50``:
equal numbers, different text, different checksum)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings, strategies as st

from services.venues import checksum
from services.venues.book import OrderBook
from services.venues.checksum import LevelTexts

# few distinct prices so levels are replaced, deleted and re-added often
price = st.sampled_from(["0.5", "0.50", "1", "1.0", "1.5", "1.50", "2", "2.25", "3", "3.000"]).map(Decimal)
size = st.sampled_from(["0", "0", "0.1", "0.10", "1", "2.5", "0.00000010"]).map(Decimal)
side = st.lists(st.tuples(price, size), max_size=4)
update = st.tuples(side, side, st.booleans())  # bids, asks, a snapshot (replace) instead of a delta


@settings(max_examples=300, deadline=None)
@given(st.lists(update, min_size=1, max_size=40), st.sampled_from(["kraken", "okx", "bitfinex"]),
       st.integers(min_value=1, max_value=3))
def test_cached_checksum_equals_fresh_checksum(updates, venue, depth):
    fn = getattr(checksum, venue)
    book = OrderBook()
    cache = LevelTexts()
    for bids, asks, snapshot in updates:
        if snapshot:
            book.replace(bids, asks)
        else:
            book.apply(bids, asks)
        book.truncate(depth + 1)
        assert fn.of_book(book, depth, cache) == fn(book.top_bids(depth), book.top_asks(depth))


def test_checksum_does_not_depend_on_the_book_module() -> None:
    """book.py uses checksum.py, never the other way round (checksum.py reads any VersionedBook)."""
    import ast
    from pathlib import Path

    import services.venues.checksum as checksum

    tree = ast.parse(Path(checksum.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "services.venues.book" not in imported and "services.venues" not in imported, imported
