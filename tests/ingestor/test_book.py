"""The shared L2 book engine: levels, sequence rules, checksum and crossed-book gaps.

Rule sources: Binance "How to manage a local order book correctly"
(https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams),
OKX order book channel seqId/prevSeqId
(https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-channel).
"""

from __future__ import annotations

from decimal import Decimal as D

from schemas.market import BBO, BookDelta, BookSnapshot
from services.venues.book import OrderBook, SymbolBook, check_sequence
from services.venues.checksum import kraken
from services.venues.wsbase import BookUpdate


def upd(seq=None, first=None, prev=None, bids=(), asks=(), snapshot=False, checksum=None) -> BookUpdate:
    return BookUpdate(
        symbol="BTC-USDT", snapshot=snapshot, ts_event=1, ts_recv=2,
        bids=[(D(p), D(q)) for p, q in bids], asks=[(D(p), D(q)) for p, q in asks],
        sequence=seq, first_sequence=first, prev_sequence=prev, checksum=checksum,
    )


def test_order_book_sorts_sides_deletes_and_truncates():
    book = OrderBook()
    book.apply([(D("10"), D("1")), (D("12"), D("2")), (D("11"), D("3"))], [(D("14"), D("1")), (D("13"), D("5"))])
    assert book.best_bid() == (D("12"), D("2"))
    assert book.best_ask() == (D("13"), D("5"))
    assert [p for p, _ in book.top_bids()] == [D("12"), D("11"), D("10")]
    book.apply([(D("12"), D("0"))], [(D("99"), D("0"))])  # deleting an absent level is harmless
    assert book.best_bid() == (D("11"), D("3"))
    evicted = book.truncate(1)
    assert evicted == ([(D("10"), D(0))], [(D("14"), D(0))])
    assert len(book) == 2 and not book.crossed()


def test_binance_update_id_rule():
    assert check_sequence("update_id", 100, upd(seq=100, first=95), fresh=True) == "skip"
    assert check_sequence("update_id", 100, upd(seq=105, first=99), fresh=True) == "apply"
    assert check_sequence("update_id", 100, upd(seq=105, first=102), fresh=True) == "gap"
    assert check_sequence("update_id", 100, upd(seq=105, first=101), fresh=False) == "apply"
    assert check_sequence("update_id", 100, upd(seq=105, first=99), fresh=False) == "gap"


def test_okx_prev_sequence_rule():
    assert check_sequence("prev_sequence", 10, upd(seq=11, prev=10), fresh=False) == "apply"
    assert check_sequence("prev_sequence", 10, upd(seq=10, prev=10), fresh=False) == "apply"  # no-change heartbeat
    assert check_sequence("prev_sequence", 10, upd(seq=3, prev=10), fresh=False) == "apply"  # reset after maintenance
    assert check_sequence("prev_sequence", 10, upd(seq=13, prev=12), fresh=False) == "gap"
    assert check_sequence("prev_sequence", 10, upd(seq=12, prev=8), fresh=True) == "apply"  # REST snapshot inside
    assert check_sequence("prev_sequence", 10, upd(seq=9, prev=8), fresh=True) == "skip"


def test_rest_resync_buffers_deltas_and_replays_those_after_the_snapshot():
    b = SymbolBook("binance", "BTC-USDT", rule="update_id", resync="rest", emit_bbo=True)
    assert b.on_update(upd(seq=10, first=9, bids=[("1", "1")])).want_snapshot
    assert not b.on_update(upd(seq=12, first=11, asks=[("3", "1")])).want_snapshot  # asked once
    out = b.on_snapshot(upd(seq=10, snapshot=True, bids=[("1", "5")], asks=[("2", "1")]))
    snap, bbo = out.messages
    assert isinstance(snap, BookSnapshot) and snap.sequence == 1 and snap.venue_sequence == 12
    assert [(l.price, l.size) for l in snap.asks] == [(D("2"), D("1")), (D("3"), D("1"))]
    assert [(l.price, l.size) for l in snap.bids] == [(D("1"), D("5"))]  # the u=10 delta was skipped
    assert isinstance(bbo, BBO) and bbo.bid == D("1") and bbo.ask == D("2")
    out = b.on_update(upd(seq=13, first=13, bids=[("1.5", "2")]))
    delta, bbo = out.messages
    assert isinstance(delta, BookDelta) and delta.sequence == 2 and bbo.bid == D("1.5")


def test_gap_then_resync_reports_both_and_publishes_nothing_in_between():
    b = SymbolBook("binance", "BTC-USDT", rule="update_id", resync="rest")
    b.on_update(upd(seq=1, first=1))
    b.on_snapshot(upd(seq=1, snapshot=True, bids=[("1", "1")], asks=[("2", "1")]))
    out = b.on_update(upd(seq=5, first=4, bids=[("1", "2")]))
    assert out.gap and out.gap.startswith("sequence gap") and out.want_snapshot and not out.messages
    assert b.on_update(upd(seq=6, first=6, bids=[("1", "3")])).messages == []
    out = b.on_snapshot(upd(seq=5, snapshot=True, bids=[("1", "2")], asks=[("2", "1")]))
    assert out.resynced and out.messages[0].bids[0].size == D("3")


def test_snapshot_older_than_the_buffer_asks_again_and_keeps_the_buffer():
    b = SymbolBook("binance", "BTC-USDT", rule="update_id", resync="rest")
    b.on_update(upd(seq=20, first=15, bids=[("1", "1")]))
    out = b.on_snapshot(upd(seq=10, snapshot=True, bids=[("1", "1")], asks=[("2", "1")]))
    assert out.want_snapshot and not out.messages and not b.synced
    out = b.on_snapshot(upd(seq=16, snapshot=True, bids=[("1", "9")], asks=[("2", "1")]))
    assert b.synced and out.messages[0].venue_sequence == 20


def test_crossed_book_is_a_gap():
    b = SymbolBook("kraken", "BTC-USD", resync="resubscribe")
    b.on_update(upd(snapshot=True, bids=[("10", "1")], asks=[("11", "1")]))
    out = b.on_update(upd(bids=[("11.5", "1")]))
    assert out.gap == "crossed book" and not out.messages and not b.synced
    assert b.on_update(upd(bids=[("9", "1")])).messages == []  # dropped until a fresh snapshot
    out = b.on_update(upd(snapshot=True, bids=[("10", "1")], asks=[("11", "1")]))
    assert out.resynced


def test_bad_checksum_is_a_gap_and_good_one_passes():
    b = SymbolBook("kraken", "BTC-USD", checksum=kraken, depth=10)
    b.on_update(upd(snapshot=True, bids=[("10.0", "1.0")], asks=[("11.0", "1.0")]))
    good = kraken([(D("10.5"), D("1.0")), (D("10.0"), D("1.0"))], [(D("11.0"), D("1.0"))])
    assert b.on_update(upd(bids=[("10.5", "1.0")], checksum=good)).messages
    out = b.on_update(upd(bids=[("10.6", "1.0")], checksum=good))
    assert out.gap == "checksum mismatch" and out.checksum_failed


def test_depth_truncation_publishes_evicted_levels_as_deletions():
    b = SymbolBook("kraken", "BTC-USD", depth=2)
    b.on_update(upd(snapshot=True, bids=[("10", "1"), ("9", "1")], asks=[("11", "1")]))
    (delta,) = b.on_update(upd(bids=[("9.5", "1")])).messages
    assert [(l.price, l.size) for l in delta.bids] == [(D("9.5"), D("1")), (D("9"), D("0"))]


def test_bitfinex_checksum_text_follows_javascript_number_formatting():
    # Bitfinex computes its checksum from JS numbers (https://docs.bitfinex.com/docs/ws-websocket-checksum)
    from services.venues.checksum import bitfinex, crc32_signed, js_number

    assert [js_number(D(x)) for x in ("1E-7", "0.000001", "278200", "0.50", "-1.7023900800000002")] == [
        "1e-7", "0.000001", "278200", "0.5", "-1.7023900800000002"]
    bids, asks = [(D("6000"), D("0.5"))], [(D("6001"), D("1.25")), (D("6002"), D("2"))]
    assert bitfinex(bids, asks) == crc32_signed("6000:0.5:6001:-1.25:6002:-2")


def test_snapshot_reuses_unchanged_level_objects_and_still_sorts_other_input():
    book = OrderBook()
    p1, p2, p3, q1, q2 = D("10.0"), D("9.0"), D("8.0"), D("1.5"), D("2")
    book.replace([(p1, q1), (p2, q2)], [(D("11"), q1)])  # best first, as venues send
    bid_levels = book.bid_levels()
    book.replace([(p1, q1), (p2, D("3")), (p3, q2)], [(D("11"), q1)])
    again = book.bid_levels()
    assert again[0] is bid_levels[0] and again[1] is not bid_levels[1]  # same price and size objects: same level
    assert [(lv.price, lv.size) for lv in again] == [(p1, q1), (p2, D("3")), (p3, q2)]
    # a side not best first, or with a price twice, is sorted (the last of a price counts)
    book.replace([(p3, q1), (p1, q1), (p1, q2), (p2, q1)], [(D("12"), q1), (D("11"), q2)])
    assert book.top_bids() == [(p1, q2), (p2, q1), (p3, q1)] and book.top_asks() == [(D("11"), q2), (D("12"), q1)]
    # a new level out of order next to a reused one is seen
    book.replace([(p1, q1), (p2, q1)], [])
    kept = book.bid_levels()[0]
    book.replace([(p1, q1), (D("11"), q1)], [])
    assert book.top_bids() == [(D("11"), q1), (p1, q1)] and book.bid_levels()[1] is kept


def test_a_book_as_it_stands_is_a_snapshot_with_the_next_sequence_and_its_bbo():
    """What a warm standby publishes when it takes a feed over (services.ingestor.ownership)."""
    b = SymbolBook("binance", "BTC-USDT", rule="update_id", resync="rest", emit_bbo=True)
    assert b.current(5) == []  # out of sync: nothing until its resync publishes it
    b.on_update(upd(seq=10, first=9, bids=[("1", "1")]))
    b.on_snapshot(upd(seq=10, snapshot=True, bids=[("1", "5")], asks=[("2", "1")]))
    b.on_update(upd(seq=11, first=11, bids=[("1.5", "2")]))
    snap, bbo = b.current(7)
    assert isinstance(snap, BookSnapshot) and snap.sequence == 3 and snap.venue_sequence == 11 and snap.ts_recv == 7
    assert [(l.price, l.size) for l in snap.bids] == [(D("1.5"), D("2")), (D("1"), D("5"))]
    assert [(l.price, l.size) for l in snap.asks] == [(D("2"), D("1"))]
    assert isinstance(bbo, BBO) and (bbo.bid, bbo.ask) == (D("1.5"), D("2"))  # again, though unchanged
    delta, *_ = b.on_update(upd(seq=12, first=12, asks=[("2", "0")])).messages
    assert isinstance(delta, BookDelta) and delta.sequence == 4  # deltas follow the snapshot's sequence
