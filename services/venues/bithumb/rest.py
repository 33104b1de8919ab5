"""Bithumb private API 2.x: Upbit-like (services.venues.upbit.rest) with what differs.

Sources: apidocs.bithumb.com (JWT HS256 with access_key, uuid nonce, ms ``timestamp``,
SHA512 query_hash; POST /v2/orders with ``client_order_id`` (changelog 2026-03-12,
``[A-Za-z0-9_-]{1,36}``), DELETE /v2/order and GET /v1/order by client_order_id,
``time_in_force`` ioc/fok/post_only since 2026-06-30; GET /v1/accounts, /v1/orders,
/v1/ticker, /v1/orderbook, /v1/market/all). Limits: 140 private requests/s per category
per IP, 150 public. ccxt 4.5.90 still speaks Bithumb's legacy 1.0 API, so it is no
reference here; tests verify tokens from the documented recipe.
"""

from __future__ import annotations

from schemas.queries import OpenOrdersQuery
from services.venues import symbols
from services.venues.base import Endpoint, Params, RateLimit
from services.venues.upbit.rest import UpbitRest


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


ADAPTER = BithumbRest
