"""The error taxonomy of DESIGN.md: every venue's error responses map onto these.

Each class carries the wire ``code`` (schemas.orders.ErrorCode) that order events and
query replies use. Messages never contain credentials.
"""

from __future__ import annotations

from typing import ClassVar


class VenueError(Exception):
    """A venue said no, or could not be reached. ``venue_code`` is the venue's own code."""

    code: ClassVar[str] = "internal"

    def __init__(self, message: str, *, venue: str = "", venue_code: str | int | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.venue = venue
        self.venue_code = venue_code
        self.status = status

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, venue={self.venue!r}, venue_code={self.venue_code!r}, status={self.status!r})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and repr(self) == repr(other)

    __hash__ = Exception.__hash__


class RateLimited(VenueError):
    """429/418 or the venue's own rate-limit error; wait ``retry_after`` seconds (None: unknown)."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, banned: bool = False, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after
        self.banned = banned


class InsufficientBalance(VenueError):
    code = "insufficient_balance"


class InvalidOrder(VenueError):
    """The venue refused the order's parameters (or exbus did, before sending: market rules)."""

    code = "invalid_order"


class MarketRulesViolation(InvalidOrder):
    """Tick size, lot size or minimum notional broken; caught before the order leaves."""

    code = "market_rules"


class OrderNotFound(VenueError):
    code = "order_not_found"


class DuplicateOrder(VenueError):
    code = "duplicate_order"


class AuthError(VenueError):
    code = "auth_error"


class VenueUnavailable(VenueError):
    """5xx, maintenance: the venue did not process the request (or says so)."""

    code = "venue_unavailable"


class NetworkError(VenueError):
    """Nothing reached the venue (connection refused, DNS, TLS before the request was sent)."""

    code = "network_error"


class OutcomeUnknown(VenueError):
    """The request may have reached the venue and been executed: resolve by querying,
    never by re-sending."""

    code = "outcome_unknown"


__all__ = [
    "AuthError", "DuplicateOrder", "InsufficientBalance", "InvalidOrder", "MarketRulesViolation",
    "NetworkError", "OrderNotFound", "OutcomeUnknown", "RateLimited", "VenueError", "VenueUnavailable",
]
