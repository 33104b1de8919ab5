"""The exbus wire contract: msgspec Structs, subject names, and their exported schemas.

Encode with :func:`encode`, decode with :func:`decode` and the type you expect; a
message that breaks the contract raises ``msgspec.ValidationError`` naming the field.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from schemas import subjects
from schemas.alerts import Alert
from schemas.common import VENUES, now_ns
from schemas.market import BBO, BookDelta, BookSnapshot, FeedStatus, MarketData, PriceLevel, Ticker, Trade
from schemas.orders import (
    TERMINAL_STATUSES, CancelOrder, DeadLetter, ErrorCode, OrderCommand, OrderEvent, PlaceOrder,
)
from schemas.queries import (
    Balance, BalanceQuery, BalanceReply, Fill, OpenOrdersQuery, OpenOrdersReply, OrderBookQuery,
    OrderBookReply, OrderInfo, OrderStatusQuery, OrderStatusReply, Query, QueryError, QueryReply,
    TickerQuery, TickerReply, TradeHistoryQuery, TradeHistoryReply,
)
from schemas.vault import (
    AuditEvent, CredentialDenial, CredentialGrant, CredentialRequest, Credentials, Revocation,
    SealedBox, VaultReply,
)

T = TypeVar("T")

_encoder = msgspec.json.Encoder(decimal_format="string")
_decoders: dict[Any, msgspec.json.Decoder] = {}


def encode(message: Any) -> bytes:
    """JSON bytes of a message (decimals as strings)."""
    return _encoder.encode(message)


def decode(data: bytes | str, type: type[T]) -> T:  # noqa: A002 - mirrors msgspec's API
    """Decode and validate ``data`` as ``type`` (a Struct or a Union of Structs)."""
    dec = _decoders.get(type)
    if dec is None:
        dec = _decoders[type] = msgspec.json.Decoder(type)
    return dec.decode(data)


__all__ = [
    "Alert", "BBO", "Balance", "BalanceQuery", "BalanceReply", "BookDelta", "BookSnapshot", "CancelOrder",
    "CredentialDenial", "CredentialGrant", "CredentialRequest", "Credentials", "AuditEvent",
    "DeadLetter", "ErrorCode", "FeedStatus", "Fill", "MarketData", "OpenOrdersQuery",
    "OpenOrdersReply", "OrderBookQuery", "OrderBookReply", "OrderCommand", "OrderEvent",
    "OrderInfo", "OrderStatusQuery", "OrderStatusReply", "PlaceOrder", "PriceLevel", "Query",
    "QueryError", "QueryReply", "Revocation", "SealedBox", "TERMINAL_STATUSES", "Ticker",
    "TickerQuery", "TickerReply", "Trade", "TradeHistoryQuery", "TradeHistoryReply", "VENUES",
    "VaultReply", "decode", "encode", "now_ns", "subjects",
]
