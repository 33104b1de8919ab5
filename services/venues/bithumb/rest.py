"""Bithumb private API 2.x: Upbit-like (services.venues.upbit.rest) with what differs.

Sources: apidocs.bithumb.com (JWT HS256 with access_key, uuid nonce, ms ``timestamp``,
SHA512 query_hash; POST /v2/orders with ``client_order_id`` (changelog 2026-03-12,
``[A-Za-z0-9_-]{1,36}``), DELETE /v2/order and GET /v1/order by client_order_id,
``time_in_force`` ioc/fok/post_only since 2026-06-30; GET /v1/accounts, /v1/orders,
/v1/ticker, /v1/orderbook, /v1/market/all). Limits ("API 요청 수 제한 안내"): 140 private
requests/s per category (order, cancel, other) per IP, 150/s per public category; a 429
carries no Retry-After, so a rate-limited call waits one window (1 s). Errors ("API 주요
에러 코드"): ``{"error": {"name", "message"}}``; 401 ``expired_jwt`` besides Upbit's names.
The v2 order replies name the venue id ``order_id`` where v1 says ``uuid``; both are read.
ccxt 4.5.90 still speaks Bithumb's legacy 1.0 API, so it is no reference here; tests
verify tokens from the documented recipe.
"""

from __future__ import annotations

from typing import Any

from schemas.queries import OpenOrdersQuery, OrderInfo
from services.venues import symbols
from services.venues.base import Endpoint, Params, RateLimit
from services.venues.errors import AuthError, DuplicateOrder, RateLimited, VenueError
from services.venues.upbit.rest import UpbitRest

DUPLICATE_ERRORS = {"duplicate_client_order_id", "duplicated_client_order_id"}
RATE_WINDOW_S = 1.0
"""Bithumb's limits are per second and its 429 names no wait: retry after one window."""


class BithumbRest(UpbitRest):
    venue = "bithumb"
    base_url = "https://api.bithumb.com"
    client_id_field = "client_order_id"
    rate_limits = (
        RateLimit("order", 140, 1.0, "ip"),
        RateLimit("cancel", 140, 1.0, "ip"),
        RateLimit("default", 140, 1.0, "ip"),
        RateLimit("market", 150, 1.0, "ip"),
    )
    endpoints = {
        **UpbitRest.endpoints,
        "place_order": Endpoint("POST", "/v2/orders", True, {"order": 1}),
        "cancel_order": Endpoint("DELETE", "/v2/order", True, {"cancel": 1}),
        "open_orders": Endpoint("GET", "/v1/orders", True, {"default": 1}),
    }

    def extra_claims(self, time_ms: int) -> dict[str, object]:
        return {"timestamp": time_ms}

    def params_open_orders(self, q: OpenOrdersQuery) -> Params:
        return [*([("market", symbols.quote_first(q.symbol))] if q.symbol else []), ("state", "wait")]

    def _order(self, payload: Any) -> OrderInfo:
        if isinstance(payload, dict) and "uuid" not in payload and "order_id" in payload:
            payload = {"state": "wait", **payload, "uuid": payload["order_id"]}
        return super()._order(payload)

    def error(self, status: int, headers: dict[str, str], payload: Any, op: str) -> VenueError | None:
        err = super().error(status, headers, payload, op)
        if err is None:
            return None
        name = str(err.venue_code or "")
        if isinstance(err, RateLimited) and err.retry_after is None:
            err.retry_after = RATE_WINDOW_S
        elif name in DUPLICATE_ERRORS:
            return DuplicateOrder(err.message, venue_code=name)
        elif name == "expired_jwt":
            return AuthError(err.message, venue_code=name)
        return err

    def http_error(self, op: str, status: int, headers: dict[str, str], body: bytes) -> VenueError:
        err = super().http_error(op, status, headers, body)
        if isinstance(err, RateLimited) and err.retry_after is None:
            err.retry_after = RATE_WINDOW_S
        return err


ADAPTER = BithumbRest
"""Bithumb (KRW markets)."""
