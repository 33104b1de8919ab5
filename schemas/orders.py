"""Order commands (``orders.submit.<venue>.<account>``) and order events
(``orders.events.<venue>.<account>.<client_order_id>``)."""

from __future__ import annotations

from typing import Literal, Union

import msgspec

from schemas.common import (
    Account, ClientOrderId, CommandId, Nanos, Price, Quantity, Side, Symbol, Venue,
    require_non_negative, require_positive,
)

OrderType = Literal["limit", "market"]
TimeInForce = Literal["gtc", "ioc", "fok"]

ErrorCode = Literal[
    "invalid_command",       # the command itself is malformed or contradicts itself
    "market_rules",          # tick size, lot size or minimum notional broken
    "invalid_order",         # the venue refused the order's parameters
    "insufficient_balance",
    "order_not_found",
    "duplicate_order",
    "rate_limited",
    "auth_error",
    "venue_unavailable",     # 5xx, maintenance
    "network_error",         # nothing reached the venue
    "outcome_unknown",       # the request may have reached the venue; resolved by query
    "internal",
]
"""The error taxonomy of DESIGN.md, as wire codes."""


class PlaceOrder(msgspec.Struct, frozen=True, tag_field="type", tag="place", kw_only=True):
    """Place one order. ``client_order_id`` is the idempotency key end to end.

    Limit orders need ``quantity`` and ``price``. Market orders need exactly one of
    ``quantity`` (base amount) or ``quote_quantity`` (spend this much quote, e.g. KRW).
    ``post_only`` is for GTC limit orders only.
    """

    command_id: CommandId
    venue: Venue
    account: Account
    symbol: Symbol
    client_order_id: ClientOrderId
    side: Side
    order_type: OrderType
    quantity: Quantity | None = None
    quote_quantity: Quantity | None = None
    price: Price | None = None
    time_in_force: TimeInForce = "gtc"
    post_only: bool = False
    ts_created: Nanos = 0

    def __post_init__(self) -> None:
        require_positive("quantity", self.quantity)
        require_positive("quote_quantity", self.quote_quantity)
        require_positive("price", self.price)
        if self.order_type == "limit":
            if self.quantity is None or self.price is None:
                raise ValueError("a limit order needs `quantity` and `price`")
            if self.quote_quantity is not None:
                raise ValueError("`quote_quantity` is for market orders only")
        else:
            if (self.quantity is None) == (self.quote_quantity is None):
                raise ValueError("a market order needs exactly one of `quantity` or `quote_quantity`")
            if self.price is not None:
                raise ValueError("a market order takes no `price`")
        if self.post_only and (self.order_type != "limit" or self.time_in_force != "gtc"):
            raise ValueError("`post_only` is only valid on a GTC limit order")


class CancelOrder(msgspec.Struct, frozen=True, tag_field="type", tag="cancel", kw_only=True):
    """Cancel the order placed with ``client_order_id``. ``venue_order_id`` is optional:
    the executor fills it from its order state for venues that cancel by order id only."""

    command_id: CommandId
    venue: Venue
    account: Account
    symbol: Symbol
    client_order_id: ClientOrderId
    ts_created: Nanos = 0
    venue_order_id: str | None = None


OrderCommand = Union[PlaceOrder, CancelOrder]
"""What strategies publish on ``orders.submit.<venue>.<account>``."""

OrderStatus = Literal[
    "accepted", "rejected", "partially_filled", "filled", "canceled", "expired", "failed",
]

TERMINAL_STATUSES: frozenset[str] = frozenset({"rejected", "filled", "canceled", "expired", "failed"})
"""Statuses after which an order can change no more."""


class OrderEvent(msgspec.Struct, frozen=True, tag_field="type", tag="order_event", kw_only=True):
    """Something happened to an order. ``filled_quantity`` is cumulative; ``last_fill_*``
    describe the fill that caused this event. ``error`` is set on rejected/failed."""

    event_id: str
    venue: Venue
    account: Account
    symbol: Symbol
    client_order_id: ClientOrderId
    status: OrderStatus
    ts_event: Nanos
    """Venue time of the change (ns); local time when the venue gives none."""
    ts: Nanos
    """When exbus published the event (ns)."""
    command_id: CommandId | None = None
    venue_order_id: str | None = None
    side: Side | None = None
    order_type: OrderType | None = None
    price: Price | None = None
    quantity: Quantity | None = None
    filled_quantity: Quantity = msgspec.field(default_factory=lambda: Quantity(0))
    average_price: Price | None = None
    last_fill_price: Price | None = None
    last_fill_quantity: Quantity | None = None
    fee: Quantity | None = None
    fee_asset: str | None = None
    trade_id: str | None = None
    """The venue's id of the fill this event reports (None: the venue gave none, or the
    fill was learnt as a difference of totals)."""
    error: ErrorCode | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        require_non_negative("filled_quantity", self.filled_quantity)
        if self.status in ("rejected", "failed") and self.error is None:
            raise ValueError(f"a `{self.status}` event needs an `error` code")

    @property
    def is_terminal(self) -> bool:
        """True when the order can change no more."""
        return self.status in TERMINAL_STATUSES


class DeadLetter(msgspec.Struct, frozen=True, tag_field="type", tag="dead_letter", kw_only=True):
    """A command that could not even be decoded, kept with the reason (``orders.deadletter.*``)."""

    subject: str
    reason: str
    payload: bytes
    ts: Nanos
