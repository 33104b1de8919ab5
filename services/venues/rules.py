"""Market rules: tick size, lot size and minimum notional of one instrument, and the
check that rejects an order breaking them before it leaves exbus."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from schemas.orders import PlaceOrder
from services.venues.errors import MarketRulesViolation


class MarketRules(msgspec.Struct, frozen=True, kw_only=True):
    """What the venue accepts for one symbol; None: no such rule."""

    symbol: str
    venue_symbol: str
    tick_size: Decimal | None = None
    lot_size: Decimal | None = None
    min_quantity: Decimal | None = None
    max_quantity: Decimal | None = None
    min_notional: Decimal | None = None
    trading: bool = True


def _on_grid(value: Decimal, step: Decimal, origin: Decimal = Decimal(0)) -> bool:
    return step <= 0 or (value - origin) % step == 0


def check_order(order: PlaceOrder, rules: MarketRules, reference_price: Decimal | None = None) -> None:
    """Raise MarketRulesViolation naming the rule an order breaks; return None if it passes.

    ``reference_price`` (e.g. the best ask) lets a market order's notional be checked.
    """
    problems: list[str] = []
    if not rules.trading:
        problems.append(f"{rules.symbol} is not trading")
    if order.price is not None and rules.tick_size and not _on_grid(order.price, rules.tick_size):
        problems.append(f"price {order.price} is not a multiple of tick size {rules.tick_size}")
    q = order.quantity
    if q is not None:
        if rules.lot_size and not _on_grid(q, rules.lot_size):
            problems.append(f"quantity {q} is not a multiple of lot size {rules.lot_size}")
        if rules.min_quantity is not None and q < rules.min_quantity:
            problems.append(f"quantity {q} is below the minimum {rules.min_quantity}")
        if rules.max_quantity is not None and rules.max_quantity > 0 and q > rules.max_quantity:
            problems.append(f"quantity {q} is above the maximum {rules.max_quantity}")
    price = order.price or reference_price
    notional = order.quote_quantity if order.quote_quantity is not None else (q * price if q is not None and price else None)
    if rules.min_notional and notional is not None and notional < rules.min_notional:
        problems.append(f"notional {notional} is below the minimum {rules.min_notional}")
    if problems:
        raise MarketRulesViolation(f"{order.venue} {order.symbol}: " + "; ".join(problems), venue=order.venue)
