"""From what a venue reports to exbus's events, the same for every venue: each fill once.

Venues report fills in three shapes (services.venues.privatews.OrderUpdate):

- an order update that carries the fill that caused it (Binance, Kraken, OKX, Upbit,
  Bithumb): cumulative filled quantity plus the fill's trade id, quantity, price, fee;
- an order update with totals only (Coinbase ``user``, every REST status poll):
  cumulative quantity, average price, perhaps the cumulative fee; the fill is the
  difference from what was last published;
- a fill of its own, without the order's total (Coinone, Korbit ``myTrade``, Bitfinex
  ``tu``): the new total is what was published plus this fill.

:func:`advance` turns one update into the :class:`Step` the order's record takes. It is
pure: the record (``OrderRecord`` in KV ``orders``, written by compare-and-swap) holds all
it needs, so whichever replica or path (stream frame, poll, trade-history recovery) sees
a change, it is published once:

- a trade id seen before is never a fill again;
- quantity only moves forward: a late update (out of order, or overtaken by a poll)
  publishes nothing;
- quantity published without a trade id (a poll's or a totals-only update's difference)
  is remembered as ``unattributed``; a fill reported later that falls inside it is
  recorded by id and absorbed, not counted again;
- so the fill quantities of an order's events never add up to more than its filled
  quantity, which is exact; they add up to exactly that when every fill was seen by id
  before any total overtook it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from schemas.orders import TERMINAL_STATUSES
from services.executor.state import OrderRecord
from services.venues.privatews import OrderUpdate

ZERO = Decimal(0)
FILL_IDS_KEPT = 500
"""Trade ids remembered per order (the newest); an order with more fills than this could
take a very late duplicate of its oldest fills for news."""
STATUS_OF_STATE = {"open": "accepted", "partially_filled": "partially_filled", "filled": "filled",
                   "canceled": "canceled", "expired": "expired", "rejected": "rejected"}


@dataclass(frozen=True, slots=True)
class FillPart:
    """The fill an event reports (its ``last_fill_*``, ``fee``, ``trade_id``)."""

    quantity: Decimal
    price: Decimal | None
    fee: Decimal | None
    fee_asset: str | None
    trade_id: str | None


@dataclass(frozen=True, slots=True)
class Step:
    """What one update does to an order: the record's new totals, and whether that is an
    event (``publish``) or only bookkeeping (a fill absorbed into an earlier total)."""

    status: str
    filled: Decimal
    fill: FillPart | None
    publish: bool
    average_price: Decimal | None
    filled_quote: Decimal
    fees: Decimal
    unattributed: Decimal
    trade_id: str | None
    """A trade id to remember (published or absorbed)."""


def status_of(update: OrderUpdate, filled: Decimal) -> str:
    """The contract status of a venue state at ``filled``."""
    status = STATUS_OF_STATE[update.state]
    if status == "accepted" and filled > 0:
        return "partially_filled"  # open with fills (Binance PENDING_CANCEL, a fill-only message)
    return status


def advance(record: OrderRecord, update: OrderUpdate) -> Step | None:
    """The step ``update`` makes from ``record``, or None when it changes nothing."""
    if record.status in TERMINAL_STATUSES:
        return None
    q = update.last_fill_quantity if update.last_fill_quantity is not None and update.last_fill_quantity > 0 else None
    new_fill = q is not None and (update.trade_id is None or update.trade_id not in record.fill_ids)
    if q is not None and not new_fill:
        q = None  # a fill published (or absorbed) before: only its state may be news
    before = record.filled_quantity
    unattributed = record.unattributed
    if update.cumulative:
        filled = max(update.filled_quantity, before)
        counted = update.filled_quantity - before  # > 0: new quantity this update reports
    else:
        counted = q if q is not None else ZERO
        if q is not None and unattributed > 0:  # a fill inside a total published without ids
            counted = max(q - unattributed, ZERO)
        filled = before + counted
    status = status_of(update, filled)
    state_news = status != record.status and status in TERMINAL_STATUSES

    if q is not None and counted <= 0:
        # the fill is already in a published total: remember its id, count nothing again
        return Step(status=status if state_news else record.status or status, filled=before, fill=None,
                    publish=state_news, average_price=update.average_price, filled_quote=record.filled_quote,
                    fees=record.fees + (update.fee or ZERO), unattributed=max(unattributed - q, ZERO),
                    trade_id=update.trade_id)
    if counted <= 0:
        if not state_news:
            return None
        return Step(status=status, filled=before, fill=None, publish=True, average_price=update.average_price,
                    filled_quote=record.filled_quote, fees=record.fees, unattributed=unattributed, trade_id=None)

    if q is not None:  # this update names its fill
        fee = update.fee
        if fee is None and update.fees_total is not None:
            fee = max(update.fees_total - record.fees, ZERO)
        # Counted beyond its own fill: fills between that we did not see (yet) stay
        # unattributed. Counted short of it: part of it was in an unattributed total
        # already, so the event reports only the rest (quantity is never published twice).
        fill = FillPart(min(q, counted), update.last_fill_price, fee, update.fee_asset, update.trade_id)
        unattributed += counted if update.trade_id is None else counted - q
    else:  # totals only: the fill is the difference
        fill = FillPart(counted, _price_of_difference(record, update, filled, counted),
                        _fee_of_difference(record, update), update.fee_asset, None)
        unattributed += counted
    price = fill.price if fill.price is not None else update.average_price
    quote = record.filled_quote + (price * counted if price is not None else ZERO)
    average = update.average_price
    if average is None and quote > 0:
        average = quote / filled
    return Step(status=status, filled=filled, fill=fill, publish=True, average_price=average, filled_quote=quote,
                fees=record.fees + (fill.fee or ZERO), unattributed=max(unattributed, ZERO), trade_id=fill.trade_id)


def apply_step(record: OrderRecord, step: Step, venue_order_id: str | None) -> None:
    """Write ``step`` into ``record`` (the caller then compare-and-swaps it)."""
    record.status, record.filled_quantity = step.status, step.filled
    record.filled_quote, record.fees, record.unattributed = step.filled_quote, step.fees, step.unattributed
    record.venue_order_id = record.venue_order_id or venue_order_id
    if step.trade_id is not None and step.trade_id not in record.fill_ids:
        record.fill_ids = [*record.fill_ids[-(FILL_IDS_KEPT - 1):], step.trade_id]
    record.tracking = step.status not in TERMINAL_STATUSES


def _price_of_difference(record: OrderRecord, update: OrderUpdate, filled: Decimal, counted: Decimal) -> Decimal | None:
    """The average price of the quantity added since the record, from the totals."""
    if update.average_price is not None and update.average_price > 0:
        quote = update.average_price * filled - record.filled_quote
        if record.filled_quantity == 0 or record.filled_quote > 0:
            price = quote / counted
            if price > 0:
                return price
        return update.average_price
    return update.last_fill_price


def _fee_of_difference(record: OrderRecord, update: OrderUpdate) -> Decimal | None:
    if update.fees_total is not None:
        return max(update.fees_total - record.fees, ZERO)
    return update.fee


__all__ = ["FILL_IDS_KEPT", "FillPart", "STATUS_OF_STATE", "Step", "advance", "apply_step", "status_of"]
