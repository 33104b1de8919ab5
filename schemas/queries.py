"""Queries over request/reply: ``venue.<venue>.<account>.<query>`` (private) and
``venue.<venue>.public.<query>`` (ticker, orderbook). Venue and account come from the
subject; the body holds the parameters. Every reply is one of the ``*Reply`` Structs or
a ``QueryError``."""

from __future__ import annotations

from typing import Annotated, Literal, Union

import msgspec
from msgspec import Meta

from schemas.common import Asset, ClientOrderId, Nanos, Price, Quantity, Side, Symbol, require_non_negative
from schemas.market import BookSnapshot, Ticker
from schemas.orders import ErrorCode, OrderType

QueryName = Literal["balance", "order_status", "open_orders", "trade_history", "ticker", "orderbook"]
PRIVATE_QUERIES: tuple[str, ...] = ("balance", "order_status", "open_orders", "trade_history")
PUBLIC_QUERIES: tuple[str, ...] = ("ticker", "orderbook")


class _Query(msgspec.Struct, frozen=True, tag_field="type", kw_only=True):
    pass


class BalanceQuery(_Query, tag="balance"):
    """All balances of the account."""


class OrderStatusQuery(_Query, tag="order_status"):
    """One order, by the client order id exbus placed it with (``venue_order_id`` too,
    when known: some venues find orders by their own id only)."""

    symbol: Symbol
    client_order_id: ClientOrderId
    venue_order_id: str | None = None


class OpenOrdersQuery(_Query, tag="open_orders"):
    """Open orders, of one symbol or of all."""

    symbol: Symbol | None = None


class TradeHistoryQuery(_Query, tag="trade_history"):
    """The account's own fills on a symbol, newest last."""

    symbol: Symbol
    since: Nanos | None = None
    limit: Annotated[int, Meta(ge=1, le=1000)] = 100


class TickerQuery(_Query, tag="ticker"):
    symbol: Symbol


class OrderBookQuery(_Query, tag="orderbook"):
    symbol: Symbol
    depth: Annotated[int, Meta(ge=1, le=5000)] = 20


Query = Union[BalanceQuery, OrderStatusQuery, OpenOrdersQuery, TradeHistoryQuery, TickerQuery, OrderBookQuery]


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    asset: Asset
    free: Quantity
    locked: Quantity

    def __post_init__(self) -> None:
        require_non_negative("free", self.free)
        require_non_negative("locked", self.locked)


OrderState = Literal["open", "partially_filled", "filled", "canceled", "expired", "rejected"]


class OrderInfo(msgspec.Struct, frozen=True, kw_only=True):
    """An order as the venue reports it now."""

    symbol: Symbol
    client_order_id: str | None
    """None for orders not placed through exbus or whose venue keeps no client id."""
    venue_order_id: str
    side: Side
    order_type: OrderType
    state: OrderState
    quantity: Quantity | None
    filled_quantity: Quantity
    price: Price | None = None
    average_price: Price | None = None
    ts_created: Nanos | None = None
    ts_updated: Nanos | None = None


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    """One execution of one of the account's orders."""

    trade_id: str
    venue_order_id: str
    symbol: Symbol
    side: Side
    price: Price
    quantity: Quantity
    ts_event: Nanos
    client_order_id: str | None = None
    fee: Quantity | None = None
    fee_asset: str | None = None
    liquidity: Literal["maker", "taker"] | None = None


class _Reply(msgspec.Struct, frozen=True, tag_field="type", kw_only=True):
    pass


class BalanceReply(_Reply, tag="balance"):
    balances: list[Balance]


class OrderStatusReply(_Reply, tag="order_status"):
    order: OrderInfo


class OpenOrdersReply(_Reply, tag="open_orders"):
    orders: list[OrderInfo]


class TradeHistoryReply(_Reply, tag="trade_history"):
    fills: list[Fill]


class TickerReply(_Reply, tag="ticker"):
    ticker: Ticker


class OrderBookReply(_Reply, tag="orderbook"):
    book: BookSnapshot


class QueryError(_Reply, tag="error"):
    """The query failed; ``error`` is the taxonomy code, ``retry_after_s`` set when rate limited."""

    error: ErrorCode
    message: str
    retry_after_s: float | None = None


QueryReply = Union[BalanceReply, OrderStatusReply, OpenOrdersReply, TradeHistoryReply, TickerReply, OrderBookReply, QueryError]
