"""Types shared by every message: venue ids, symbols, identifiers, decimals, time.

Grammar rules live here as msgspec constraints so that a bad message fails at decode
time with an error naming the offending field (``- at `$.symbol```).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Annotated, Literal, get_args

from msgspec import Meta

Venue = Literal[
    "binance", "coinbase", "kraken", "bitfinex", "okx",
    "upbit", "bithumb", "korbit", "coinone",
]
"""Venue ids fixed by DESIGN.md."""

VENUES: tuple[str, ...] = get_args(Venue)

Symbol = Annotated[
    str,
    Meta(
        pattern=r"^[A-Z0-9]{1,16}-[A-Z0-9]{1,16}$",
        description="BASE-QUOTE in upper case, e.g. BTC-USDT or BTC-KRW",
        examples=["BTC-USDT", "ETH-KRW"],
    ),
]

ClientOrderId = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9_-]{1,36}$",
        description=(
            "Idempotency key of an order, end to end: 1-36 of A-Z a-z 0-9 _ -. "
            "Each venue adapter maps it onto the venue's own client order id field."
        ),
        examples=["strat1-000042", "5f1b2c3d-aaaa-4bbb-8ccc-0123456789ab"],
    ),
]

CommandId = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Unique id of a command; used as Nats-Msg-Id for server-side de-duplication.",
    ),
]

Account = Annotated[
    str,
    Meta(
        pattern=r"^[a-z0-9_-]{1,32}$",
        description="Account name at a venue (lower case; one NATS subject token).",
        examples=["main", "mm-1"],
    ),
]

Asset = Annotated[str, Meta(pattern=r"^[A-Z0-9]{1,16}$", description="Asset code, e.g. BTC")]

ServiceId = Annotated[
    str,
    Meta(pattern=r"^[a-z0-9_-]{1,64}$", description="Name of a registered exbus service identity"),
]

Nanos = Annotated[int, Meta(ge=0, description="Integer nanoseconds since the Unix epoch")]

Side = Literal["buy", "sell"]

Price = Decimal
"""Exact decimal, encoded as a JSON string."""

Quantity = Decimal
"""Exact decimal, encoded as a JSON string."""


def now_ns() -> int:
    """Wall-clock time in integer nanoseconds since the epoch."""
    return time.time_ns()


def require_positive(field: str, value: Decimal | None) -> None:
    """Raise ValueError naming ``field`` unless ``value`` is None or a finite number > 0.

    msgspec cannot put numeric constraints on Decimal, so Structs call this from
    ``__post_init__``; msgspec turns the ValueError into a ValidationError.
    """
    if value is not None and (not value.is_finite() or value <= 0):
        raise ValueError(f"`{field}` must be a finite number > 0, got {value}")


def require_non_negative(field: str, value: Decimal | None) -> None:
    """Raise ValueError naming ``field`` unless ``value`` is None or a finite number >= 0."""
    if value is not None and (not value.is_finite() or value < 0):
        raise ValueError(f"`{field}` must be a finite number >= 0, got {value}")
