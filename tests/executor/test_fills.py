"""services.executor.fills: every shape of venue report becomes each fill once.

The three shapes (fill inside an order update, totals only, a fill of its own) and their
mixes: duplicates by trade id, late and out-of-order updates, fills that arrive after a poll
already counted them, totals ahead of fills. Each case replays updates through ``advance``
and ``apply_step`` as the executor does, and checks the events against the fills that
happened.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.executor.fills import FILL_IDS_KEPT, Step, advance, apply_step
from services.executor.state import OrderRecord
from services.venues.privatews import OrderUpdate


def record(**kw: Any) -> OrderRecord:
    return OrderRecord(command_id="c", phase="done", symbol="BTC-USD", status="accepted", tracking=True, **kw)


def update(state: str = "partially_filled", filled: str | None = None, **kw: Any) -> OrderUpdate:
    return OrderUpdate(venue="x", client_order_id="o1", venue_order_id="v1", state=state,  # type: ignore[arg-type]
                       filled_quantity=D(filled) if filled is not None else D(0), ts_event=1,
                       cumulative=filled is not None, **kw)


def fill(trade_id: str, qty: str, price: str, filled: str | None = None, state: str = "partially_filled",
         fee: str | None = "0.1", **kw: Any) -> OrderUpdate:
    return update(state, filled, trade_id=trade_id, last_fill_quantity=D(qty), last_fill_price=D(price),
                  fee=D(fee) if fee is not None else None, fee_asset="USD", **kw)


def run(rec: OrderRecord, *updates: OrderUpdate) -> list[Step]:
    """Apply ``updates`` in order; the published steps."""
    published = []
    for u in updates:
        step = advance(rec, u)
        if step is None:
            continue
        apply_step(rec, step, u.venue_order_id)
        if step.publish:
            published.append(step)
    return published


def test_a_fill_inside_an_order_update_is_published_with_its_trade_id_fee_and_average() -> None:
    rec = record()
    steps = run(rec, fill("t1", "2", "100", "2"), fill("t2", "3", "110", "5", state="filled"))
    assert [(s.status, s.filled, s.fill.trade_id, s.fill.quantity, s.fill.price, s.fill.fee) for s in steps] == [
        ("partially_filled", D(2), "t1", D(2), D(100), D("0.1")), ("filled", D(5), "t2", D(3), D(110), D("0.1"))]
    assert steps[-1].average_price == D(106)  # the venue gave none: from the fills (530 / 5)
    assert rec.filled_quote == D(530) and rec.fees == D("0.2") and rec.fill_ids == ["t1", "t2"]
    assert not rec.tracking and rec.unattributed == 0


def test_the_average_price_is_computed_from_the_fills_when_the_venue_gives_none() -> None:
    rec = record()
    steps = run(rec, fill("t1", "2", "100", filled=None), fill("t2", "2", "110", filled=None))
    assert [s.average_price for s in steps] == [D(100), D(105)]


def test_a_trade_id_seen_before_is_never_a_fill_again_but_its_final_state_still_counts() -> None:
    rec = record()
    steps = run(rec, fill("t1", "5", "100", "5"), fill("t1", "5", "100", "5"),
                fill("t1", "5", "100", "5", state="filled"))
    assert [(s.status, s.filled, s.fill is not None) for s in steps] == [
        ("partially_filled", D(5), True), ("filled", D(5), False)]


def test_late_and_out_of_order_updates_never_walk_an_order_backwards() -> None:
    rec = record()
    run(rec, fill("t1", "2", "100", "2"), fill("t2", "3", "100", "5"))
    assert run(rec, update("partially_filled", "2")) == []  # a totals update older than t2
    assert run(rec, update("open", "0")) == []
    assert rec.filled_quantity == D(5) and rec.status == "partially_filled"


def test_totals_only_updates_give_the_fill_as_the_difference() -> None:
    """Coinbase ``user``: cumulative quantity, average price and total fees, no trade id."""
    rec = record()
    steps = run(rec, update("partially_filled", "2", average_price=D(100), fees_total=D("0.2")),
                update("filled", "5", average_price=D(106), fees_total=D("0.5")))
    assert [(s.fill.quantity, s.fill.price, s.fill.fee, s.fill.trade_id) for s in steps] == [
        (D(2), D(100), D("0.2"), None), (D(3), D(110), D("0.3"), None)]  # 5 x 106 - 200 = 330 over 3
    assert rec.unattributed == D(5) and rec.fees == D("0.5")


def test_fills_of_their_own_add_up_and_a_duplicate_adds_nothing() -> None:
    """Coinone, Korbit myTrade, Bitfinex tu: the message has the fill, not the order's total."""
    rec = record()
    steps = run(rec, fill("t1", "1", "100"), fill("t2", "1.5", "101"), fill("t1", "1", "100"))
    assert [(s.filled, s.fill.trade_id) for s in steps] == [(D(1), "t1"), (D("2.5"), "t2")]


def test_a_fill_reported_after_a_poll_counted_it_is_absorbed_not_counted_again() -> None:
    rec = record()
    assert [s.fill.quantity for s in run(rec, update("partially_filled", "3"))] == [D(3)]  # the poll's difference
    assert rec.unattributed == D(3)
    # the stream's frames for the two fills the poll saw, then a new one
    steps = run(rec, fill("t1", "1", "100", "1"), fill("t2", "2", "100", "3"), fill("t3", "1", "100", "4"))
    assert [(s.filled, s.fill.trade_id) for s in steps] == [(D(4), "t3")]
    assert rec.fill_ids == ["t1", "t2", "t3"] and rec.unattributed == 0
    # the same with fills of their own (no totals in the message)
    rec = record()
    run(rec, update("partially_filled", "3"))
    steps = run(rec, fill("t1", "1", "100"), fill("t2", "2", "100"), fill("t3", "1", "100"))
    assert [(s.filled, s.fill.trade_id) for s in steps] == [(D(4), "t3")] and rec.unattributed == 0


def test_a_total_ahead_of_the_fills_seen_leaves_the_gap_unattributed() -> None:
    rec = record()
    steps = run(rec, fill("t2", "1", "100", "3"))  # t1 (2) not seen yet
    assert steps[0].filled == D(3) and steps[0].fill.quantity == D(1) and rec.unattributed == D(2)
    assert run(rec, fill("t1", "2", "100", "2")) == [] and rec.unattributed == 0  # t1 arrives late


def test_a_final_state_without_new_quantity_is_published_once() -> None:
    rec = record()
    run(rec, fill("t1", "1", "100", "1"))
    steps = run(rec, update("canceled", "1"), update("canceled", "1"))
    assert [(s.status, s.filled, s.fill) for s in steps] == [("canceled", D(1), None)]
    assert run(rec, fill("t9", "1", "100", "2", state="filled")) == []  # nothing after the end


def test_fill_ids_kept_per_order_are_bounded() -> None:
    rec = record()
    run(rec, *(fill(f"t{i}", "1", "1", filled=None) for i in range(FILL_IDS_KEPT + 10)))
    assert len(rec.fill_ids) == FILL_IDS_KEPT and rec.fill_ids[-1] == f"t{FILL_IDS_KEPT + 9}"


@pytest.mark.parametrize("shape", ["inside", "own", "totals"])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_interleaving_of_stream_and_poll_reports_every_fill_quantity_once(shape: str, data: st.DataObject) -> None:
    """Fills happen; the stream reports each (some twice, some late, in any order) and polls
    report totals at random moments: the published quantity always equals what filled, and
    no trade id is published twice."""
    qtys = data.draw(st.lists(st.integers(1, 5), min_size=1, max_size=6))
    cum = [sum(qtys[: i + 1]) for i in range(len(qtys))]
    reports: list[OrderUpdate] = []
    for i, q in enumerate(qtys):
        if shape == "inside":
            reports.append(fill(f"t{i}", str(q), "100", str(cum[i])))
        elif shape == "own":
            reports.append(fill(f"t{i}", str(q), "100"))
        else:
            reports.append(update("partially_filled", str(cum[i]), average_price=D(100)))
    polls = [update("partially_filled", str(c), average_price=D(100)) for c in cum]
    chosen = data.draw(st.lists(st.sampled_from(reports + polls), min_size=0, max_size=12))
    everything = data.draw(st.permutations(chosen)) + reports  # the stream delivers all at least once
    rec = record()
    steps = run(rec, *everything)
    total = sum(qtys)
    assert rec.filled_quantity == total
    published = sum(s.fill.quantity for s in steps if s.fill)
    assert published <= total
    if not chosen:  # each fill seen in order, once: every event is exactly one fill
        assert published == total and len(steps) == len(qtys)
    ids = [s.fill.trade_id for s in steps if s.fill and s.fill.trade_id]
    assert len(ids) == len(set(ids))
