"""Coinbase Advanced Trade (REST v3, ``/api/v3/brokerage``) as the simulator speaks it, on
the simulator core.

Followed: docs.cdp.coinbase.com Advanced Trade API reference (Create Order, Cancel Orders
``POST /orders/batch_cancel``, Get Order ``GET /orders/historical/{order_id}``, List Orders
``GET /orders/historical/batch``, List Fills, List Accounts, public ``/market/products``,
``/market/product_book``, ``/market/products/{product_id}/ticker``); "API key
authentication" (a JWT per request as ``Authorization: Bearer``: ES256, header kid = key
name + random nonce, claims sub = key name, iss, nbf, exp = nbf + 120 s, uri = "METHOD
api.coinbase.com/path" without the query); "REST API rate limits" (private 30 requests/s per
user, public 10/s per IP, 429 over them); the official SDK coinbase-advanced-py
``jwt_generator`` and ccxt 4.5.90 ``coinbase`` (create_auth_token, error maps, the
``success: false`` / ``error_response`` create failure shape).

Where the simulator differs from the venue: 401s carry the JSON string ``"Unauthorized"``
(the venue sends the text ``Unauthorized``: the framework answers JSON only); no portfolios,
no GTD/stop/bracket/TWAP configurations (UNSUPPORTED_ORDER_CONFIGURATION); no paging
(``cursor`` is always empty); ticker trades are the simulator's own fills; the JWT nonce is
not checked for reuse (the docs do not say Coinbase does); a ban (clients ignoring 429s) is
answered like a 429 since Coinbase documents none; fees are the lowest public tier.

The User Order Data WebSocket (``user`` and ``heartbeats`` channels, JWT per subscribe) is
served on ``/`` of the same port: services.simulator.dialects.coinbase_private.
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from services.simulator.config import Account
from services.simulator.core import MarketSpec, Refusal
from services.simulator.dialect import Dialect, Limit, Reply, Req, Route
from services.simulator.dialects.coinbase_private import CoinbasePrivate
from services.simulator.matching import Order

_BALANCES = {a: Decimal(n) for a, n in {"USD": "10000000", "USDC": "10000000", "BTC": "100", "ETH": "1000"}.items()}
HOST = "api.coinbase.com"
API = "/api/v3/brokerage"
_NS = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")
STATUS = {"new": "OPEN", "partially_filled": "OPEN", "filled": "FILLED", "canceled": "CANCELLED", "expired": "EXPIRED"}
TIF = {"gtc": "GOOD_UNTIL_CANCELLED", "ioc": "IMMEDIATE_OR_CANCEL", "fok": "FILL_OR_KILL"}
# Create Order failures: (error / new_order_failure_reason, preview_failure_reason, message) per
# the FailureReason and PreviewFailureReason enums of the Create Order reference
CREATE_FAILURES = {
    "insufficient_balance": ("INSUFFICIENT_FUND", "PREVIEW_INSUFFICIENT_FUND", "Insufficient balance in source account"),
    "tick_size": ("INVALID_PRICE_PRECISION", "PREVIEW_INVALID_PRICE_PRECISION", "Too many decimals in order price"),
    "lot_size": ("INVALID_SIZE_PRECISION", "PREVIEW_INVALID_SIZE_PRECISION", "Too many decimals in order amount"),
    "min_quantity": ("UNKNOWN_FAILURE_REASON", "PREVIEW_INVALID_BASE_SIZE_TOO_SMALL", "Order size is too small"),
    "min_notional": ("UNKNOWN_FAILURE_REASON", "PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL", "Order size is too small"),
    "would_take": ("INVALID_LIMIT_PRICE_POST_ONLY", "PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY", "Post-only order would cross"),
    "unknown_symbol": ("INVALID_PRODUCT_ID", "PREVIEW_INVALID_PRODUCT_ID", "Invalid product_id"),
    "duplicate_order": ("DUPLICATE_CLIENT_ORDER_ID", "", "Duplicate client order id"),
}
_UNAUTHORIZED = {"bad_key", "bad_signature", "expired", "nonce"}


def rfc3339(ns: int) -> str:
    """``2024-01-15T10:00:00.123456Z``, as Coinbase writes times."""
    return datetime.fromtimestamp(ns // 10**9, timezone.utc).replace(microsecond=ns // 1000 % 10**6).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


def _err(error: str, message: str) -> dict[str, str]:
    """The venue's error body outside Create Order (gRPC-gateway style, as ccxt quotes it)."""
    return {"error": error, "error_details": message, "message": message}


def _dec(value: Any, name: str) -> Decimal:
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise Refusal("bad_request", f"{name} is not a decimal: {value!r}") from None
    if not d.is_finite() or d <= 0:
        raise Refusal("bad_request", f"{name} must be positive")
    return d


def _strict(handler: Callable[[Any, Req], Awaitable[Any]]) -> Callable[[Any, Req], Awaitable[Any]]:
    """A request body of the wrong shape is the venue's INVALID_ARGUMENT, never a traceback."""
    @functools.wraps(handler)
    async def run(self: Any, req: Req) -> Any:
        try:
            return await handler(self, req)
        except (KeyError, TypeError, AttributeError, ValueError, InvalidOperation) as e:
            raise Refusal("bad_request", f"invalid request: {type(e).__name__}") from None
    return run


class CoinbaseDialect(CoinbasePrivate, Dialect):
    name = "coinbase"
    WEBSOCKET = True
    LIMITS = {"private": Limit(30, 1, "account"), "public": Limit(10, 1, "ip")}
    ROUTES = [
        Route("GET", f"{API}/market/products", "products", limits=("public",)),
        Route("GET", f"{API}/market/product_book", "product_book", limits=("public",)),
        Route("GET", f"{API}/market/products/{{product_id}}/ticker", "ticker", limits=("public",)),
        Route("POST", f"{API}/orders", "create_order", True, ("private",), "place"),
        Route("POST", f"{API}/orders/batch_cancel", "batch_cancel", True, ("private",), "cancel"),
        # before {order_id}: aiohttp matches in the order routes are added
        Route("GET", f"{API}/orders/historical/batch", "list_orders", True, ("private",)),
        Route("GET", f"{API}/orders/historical/fills", "list_fills", True, ("private",)),
        Route("GET", f"{API}/orders/historical/{{order_id}}", "get_order", True, ("private",)),
        Route("GET", f"{API}/accounts", "accounts", True, ("private",)),
    ]
    # BTC-USD as GET /api/v3/brokerage/market/products/BTC-USD lists it: quote_increment
    # 0.01, base_increment 0.00000001, base_min_size 0.00000001, quote_min_size 1
    MARKETS = [MarketSpec("BTC-USD", "BTC-USD", Decimal("0.01"), Decimal("0.00000001"), Decimal("0.00000001"), Decimal("1"))]
    # Advanced Trade fee tier "Intro 1" (coinbase.com/advanced-fees): maker 0.60 %, taker 1.20 %, in quote
    MAKER_FEE, TAKER_FEE, FEE_IN_QUOTE = Decimal("0.006"), Decimal("0.012"), True
    # Create Order: "If the ID provided is not unique, the order will not be created and the
    # order corresponding with that ID will be returned instead."
    CLIENT_IDS = "return_original"
    DEFAULT_ACCOUNTS = [
        Account(name="demo", api_key="organizations/sim-org/apiKeys/sim-coinbase-demo", secret='-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIM/ekPZFWOO/GhvOy6f8TdMGQXqmP+OGn3KbLEmZ9QbFoAoGCCqGSM49\nAwEHoUQDQgAE3a3L+7sQr1o36uKJGHTQH8nu2XAVmfBErmH6VlQaR9bPULWjTnrd\nWJECNRJA+idguyYLk/Q5RRCrzrX5omufkg==\n-----END EC PRIVATE KEY-----\n', balances=_BALANCES),
        Account(name="taker", api_key="organizations/sim-org/apiKeys/sim-coinbase-taker", secret='-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIPVPsqLIkVrkk99RAccaBocyJzBkZiCplkxEKRtPzfnCoAoGCCqGSM49\nAwEHoUQDQgAEiVKz0+TSdvbs/4DLy6SIO14uNVkJXlsIY4FKHtWqeB5I6f/9rP4W\nTBpGz5oX/yrYiLd7RJMKxPIcapa708pttQ==\n-----END EC PRIVATE KEY-----\n', balances=_BALANCES),
    ]
    """Paper accounts of the simulator (not anyone's secrets): ``demo`` for strategies and
    the demo, ``taker`` for the other side of the market in tests."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.init_private()

    def add_ws_routes(self, app: web.Application) -> None:
        self.add_private_route(app)

    # -- authentication ------------------------------------------------------------------------

    async def authenticate(self, req: Req) -> Account:
        """The Bearer JWT, whose uri is this method, host and path (:meth:`verify_jwt`)."""
        token = req.request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return self.verify_jwt(token, req.now, f"{req.method} {HOST}{req.path}")

    def verify_jwt(self, token: str, now_ns: int, uri: str | None) -> Account:
        """A CDP key's JWT: kid names a known key, ES256 signature by that key, sub = kid,
        nbf <= now < exp (at most 120 s apart); ``uri`` the request's (REST), or None for a
        WebSocket message, whose JWT is "not built with a request method or request path"."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Refusal("bad_signature", "no bearer JWT") from None
        if header.get("alg") != "ES256" or not header.get("nonce"):
            raise Refusal("bad_signature", "JWT header must be ES256 with a nonce")
        account = self.core.account(str(header.get("kid", "")))
        try:
            claims = jwt.decode(token, self._public_key(account), algorithms=["ES256"],
                                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False,
                                         "require": ["sub", "iss", "nbf", "exp", *(["uri"] if uri is not None else [])]})
        except jwt.PyJWTError as e:
            raise Refusal("bad_signature", f"JWT rejected: {type(e).__name__}") from None
        now = now_ns // 1_000_000_000
        nbf, exp = claims["nbf"], claims["exp"]
        if not (isinstance(nbf, int) and isinstance(exp, int) and nbf <= now < exp and exp - nbf <= 120):
            raise Refusal("expired", "JWT not valid now (nbf/exp)")
        aud = claims.get("aud", ["retail_rest_api_proxy"])
        if claims["sub"] != account.api_key or claims["iss"] not in ("cdp", "coinbase-cloud") or \
                "retail_rest_api_proxy" not in (aud if isinstance(aud, list) else [aud]):
            raise Refusal("bad_signature", "JWT sub, iss or aud do not match")
        if uri is not None and claims["uri"] != uri:
            raise Refusal("bad_signature", "JWT uri does not match the request")
        return account

    def _public_key(self, account: Account) -> Any:
        keys = self.__dict__.setdefault("_keys", {})
        if account.name not in keys:  # the public half of the account's EC P-256 PEM key
            try:
                keys[account.name] = serialization.load_pem_private_key(account.secret.encode(), password=None).public_key()
            except (ValueError, TypeError):  # a configured secret that is no PEM key: nothing verifies
                raise Refusal("bad_signature", "the account's key is not an EC PEM key") from None
        return keys[account.name]

    # -- failures --------------------------------------------------------------------------------

    def refuse(self, refusal: Refusal, req: Req) -> tuple[int, Any, dict[str, str]]:
        kind = refusal.kind
        if kind in _UNAUTHORIZED:
            return 401, "Unauthorized", {}
        if kind in ("rate_limited", "banned"):  # no Retry-After: Coinbase documents none
            return 429, _err("rate_limit_exceeded", "Too many requests"), {}
        if kind == "maintenance":
            return 503, self.server_error(503), {}
        if req.path == f"{API}/orders" and kind in CREATE_FAILURES:  # Create Order answers 200
            error, preview, message = CREATE_FAILURES[kind]
            body = req.json() if req.body else {}
            return 200, {"success": False, "failure_reason": "UNKNOWN_FAILURE_REASON", "order_id": "",
                         "error_response": {"error": error, "message": message, "error_details": refusal.detail,
                                            "preview_failure_reason": preview, "new_order_failure_reason": error},
                         "order_configuration": body.get("order_configuration") if isinstance(body, dict) else None}, {}
        if kind == "unknown_order":
            return 404, _err("NOT_FOUND", "order with this orderID was not found"), {}
        if kind == "unknown_symbol":
            return 404, _err("NOT_FOUND", "ProductID is invalid"), {}
        return 400, _err("INVALID_ARGUMENT", refusal.detail or str(refusal)), {}

    def server_error(self, status: int) -> Any:
        if status == 429:
            return _err("rate_limit_exceeded", "Too many requests")
        return {500: _err("INTERNAL", "internal error"), 502: _err("UNAVAILABLE", "bad gateway"),
                504: _err("DEADLINE_EXCEEDED", "upstream request timeout")}.get(
            status, _err("UNAVAILABLE", "Coinbase is currently undergoing maintenance"))

    # -- market data -----------------------------------------------------------------------------

    async def products(self, req: Req) -> Any:
        products = [self._product(m) for m in self.MARKETS]
        return {"products": products, "num_products": len(products)}

    def _product(self, m: MarketSpec) -> dict[str, Any]:
        bid, ask = self.core.best(m.symbol, "buy"), self.core.best(m.symbol, "sell")
        return {"product_id": m.venue_symbol, "price": str((bid or ask or (Decimal(0),))[0]), "base_increment": m.lot,
                "quote_increment": m.tick, "price_increment": m.tick, "base_min_size": m.min_quantity,
                "base_max_size": "10000", "quote_min_size": m.min_notional, "quote_max_size": "150000000",
                "status": "online", "trading_disabled": False, "is_disabled": False, "cancel_only": False,
                "limit_only": False, "post_only": False, "auction_mode": False, "product_type": "SPOT",
                "base_currency_id": m.base, "quote_currency_id": m.quote, "base_display_symbol": m.base,
                "quote_display_symbol": m.quote, "display_name": m.venue_symbol.replace("-", "/")}

    @_strict
    async def product_book(self, req: Req) -> Any:
        q = req.query()
        if not q.get("product_id"):
            raise Refusal("bad_request", "product_id is required")
        spec = self.core.spec(q["product_id"])
        depth = int(q["limit"]) if q.get("limit") else None
        side = lambda s: [{"price": p, "size": n} for p, n in self.core.levels(spec.symbol, s, depth)]  # noqa: E731
        return {"pricebook": {"product_id": spec.venue_symbol, "bids": side("buy"), "asks": side("sell"),
                              "time": rfc3339(req.now)}}

    @_strict
    async def ticker(self, req: Req) -> Any:
        spec = self.core.spec(req.match["product_id"])
        limit = int(req.query().get("limit") or 100)
        trades = sorted((f for fills in self.core.trades.values() for o, f in fills if o.symbol == spec.symbol and not f.is_maker),
                        key=lambda f: f.ts, reverse=True)[:limit]
        bid, ask = self.core.best(spec.symbol, "buy"), self.core.best(spec.symbol, "sell")
        return {"trades": [{"trade_id": str(f.trade_id), "product_id": spec.venue_symbol, "price": f.price,
                            "size": f.quantity, "time": rfc3339(f.ts), "side": "UNKNOWN_ORDER_SIDE", "exchange": "coinbase"}
                           for f in trades],
                "best_bid": str(bid[0]) if bid else "", "best_ask": str(ask[0]) if ask else ""}

    # -- orders ----------------------------------------------------------------------------------

    @_strict
    async def create_order(self, req: Req) -> Any:
        body = req.json()
        client_order_id, product_id, side = body.get("client_order_id"), body.get("product_id"), body.get("side")
        config = body.get("order_configuration")
        if not client_order_id or not isinstance(client_order_id, str) or not product_id or not isinstance(config, dict):
            raise Refusal("bad_request", "client_order_id, product_id and order_configuration are required")
        if side not in ("BUY", "SELL"):
            raise Refusal("bad_request", f"invalid side {side!r}")
        spec = self.core.spec(str(product_id))
        if len(config) != 1:
            raise Refusal("bad_request", "exactly one order configuration")
        ((kind, c),) = config.items()
        fields: dict[str, Any] = {}
        if kind == "market_market_ioc":
            if "quote_size" in c:
                if side == "SELL":
                    raise Refusal("bad_request", "market sells take base_size")
                fields["quote_quantity"] = _dec(c["quote_size"], "quote_size")
            else:
                fields["quantity"] = _dec(c["base_size"], "base_size")
            fields.update(order_type="market", time_in_force="ioc")
        elif kind in ("limit_limit_gtc", "limit_limit_fok", "sor_limit_ioc"):
            fields.update(order_type="limit", quantity=_dec(c["base_size"], "base_size"),
                          price=_dec(c["limit_price"], "limit_price"),
                          time_in_force={"limit_limit_gtc": "gtc", "limit_limit_fok": "fok"}.get(kind, "ioc"),
                          post_only=kind == "limit_limit_gtc" and c.get("post_only") is True)
        else:
            return Reply({"success": False, "failure_reason": "UNKNOWN_FAILURE_REASON", "order_id": "",
                          "error_response": {"error": "UNSUPPORTED_ORDER_CONFIGURATION", "message": f"{kind} is not supported",
                                             "error_details": "", "new_order_failure_reason": "UNSUPPORTED_ORDER_CONFIGURATION"},
                          "order_configuration": config})
        order = Order(order_id=str(uuid.uuid5(_NS, f"{self.core.next_id()}")), client_order_id=client_order_id,
                      account=req.account.name, symbol=spec.symbol, side="buy" if side == "BUY" else "sell",  # type: ignore[union-attr]
                      ts_created=req.now, venue_fields={"order_configuration": config}, **fields)
        placed = self.core.place(order)  # a repeated client_order_id returns the first order
        return {"success": True, "failure_reason": "UNKNOWN_FAILURE_REASON", "order_id": placed.order_id,
                "success_response": {"order_id": placed.order_id, "product_id": self._venue_symbol(placed),
                                     "side": placed.side.upper(), "client_order_id": placed.client_order_id},
                "order_configuration": placed.venue_fields.get("order_configuration")}

    @_strict
    async def batch_cancel(self, req: Req) -> Any:
        order_ids = req.json().get("order_ids")
        if not isinstance(order_ids, list) or not order_ids or len(order_ids) > 100:
            raise Refusal("bad_request", "order_ids: one to 100 order ids")
        results = []
        for order_id in order_ids:
            try:
                self.core.cancel(self.core.find(req.account, order_id=str(order_id)))  # type: ignore[arg-type]
                results.append({"success": True, "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON", "order_id": order_id})
            except Refusal as r:
                order = self.core.orders.get(str(order_id))
                reason = ("UNKNOWN_CANCEL_ORDER" if r.kind == "unknown_order" else
                          "ORDER_IS_FILLED" if order is not None and order.status == "filled" else "DUPLICATE_CANCEL_REQUEST")
                results.append({"success": False, "failure_reason": reason, "order_id": order_id})
        return {"results": results}

    async def get_order(self, req: Req) -> Any:
        return {"order": self._order(self.core.find(req.account, order_id=req.match["order_id"]))}  # type: ignore[arg-type]

    @_strict
    async def list_orders(self, req: Req) -> Any:
        q = parse_qsl(req.raw_query, keep_blank_values=True)
        wanted = lambda name: {v for k, v in q if k in (name, f"{name}[]") and v}  # noqa: E731
        ids, statuses = wanted("order_ids"), wanted("order_status")
        products = wanted("product_ids") | wanted("product_id")  # product_id: the deprecated form ccxt sends
        limit = int(dict(q).get("limit") or 1000)
        orders = [o for o in reversed(self.core.account_orders(req.account))  # type: ignore[arg-type]
                  if (not ids or str(o.order_id) in ids) and (not products or self._venue_symbol(o) in products)
                  and (not statuses or STATUS[o.status] in statuses)][:limit]
        return {"orders": [self._order(o) for o in orders], "sequence": "0", "has_next": False, "cursor": ""}

    def _venue_symbol(self, o: Order) -> str:
        return self.core.markets[o.symbol].venue_symbol

    def _order(self, o: Order) -> dict[str, Any]:
        size = o.quantity if o.quantity is not None else o.filled
        fill_time = max((f.ts for f in o.fills), default=0)
        value = o.filled_quote
        buy = o.side == "buy"
        return {
            "order_id": o.order_id, "product_id": self._venue_symbol(o), "user_id": o.account,
            "order_configuration": o.venue_fields.get("order_configuration", {}), "side": o.side.upper(),
            "client_order_id": o.client_order_id, "status": STATUS[o.status], "time_in_force": TIF[o.time_in_force],
            "created_time": rfc3339(o.ts_created), "completion_percentage": str((o.filled / size * 100).quantize(Decimal("0.01")))
            if size else "0", "filled_size": o.filled, "average_filled_price": o.average_price, "fee": "",
            "number_of_fills": str(len(o.fills)), "filled_value": value, "pending_cancel": False,
            "size_in_quote": o.quote_quantity is not None, "total_fees": o.fees, "size_inclusive_of_fees": False,
            "total_value_after_fees": value + o.fees if buy else value - o.fees, "trigger_status": "INVALID_ORDER_TYPE",
            "order_type": o.order_type.upper(), "reject_reason": "REJECT_REASON_UNSPECIFIED", "settled": not o.is_open,
            "product_type": "SPOT", "reject_message": "", "cancel_message": "User requested cancel" if o.status == "canceled" else "",
            "order_placement_source": "RETAIL_ADVANCED", "outstanding_hold_amount": o.locked + o.reserved_fee,
            "is_liquidation": False, "last_fill_time": rfc3339(fill_time) if fill_time else None, "edit_history": [],
            "leverage": "", "margin_type": "UNKNOWN_MARGIN_TYPE", "retail_portfolio_id": "", "originating_order_id": "",
            "attached_order_id": "",
        }

    # -- account ---------------------------------------------------------------------------------

    async def accounts(self, req: Req) -> Any:
        wallet = self.core.wallet(req.account)  # type: ignore[arg-type]
        rows = [{"uuid": str(uuid.uuid5(_NS, f"{req.account.name}/{a}")), "name": f"{a} Wallet", "currency": a,  # type: ignore[union-attr]
                 "available_balance": {"value": wallet.available(a), "currency": a}, "default": True, "active": True,
                 "created_at": rfc3339(0), "updated_at": rfc3339(req.now), "deleted_at": None,
                 "type": "ACCOUNT_TYPE_FIAT" if a in ("USD", "EUR", "GBP") else "ACCOUNT_TYPE_CRYPTO", "ready": True,
                 "hold": {"value": wallet.locked.get(a, Decimal(0)), "currency": a}, "retail_portfolio_id": ""}
                for a in wallet.assets()]
        return {"accounts": rows, "has_next": False, "cursor": "", "size": len(rows)}

    @_strict
    async def list_fills(self, req: Req) -> Any:
        q = parse_qsl(req.raw_query, keep_blank_values=True)
        products = {v for k, v in q if k in ("product_ids", "product_id") and v}
        orders = {v for k, v in q if k == "order_ids" and v}
        limit = int(dict(q).get("limit") or 1000)
        fills = [(o, f) for o, f in reversed(self.core.fills(req.account))  # type: ignore[arg-type]
                 if (not products or self._venue_symbol(o) in products) and (not orders or str(o.order_id) in orders)][:limit]
        return {"fills": [{"entry_id": f"{f.trade_id}-{o.order_id}", "trade_id": str(f.trade_id), "order_id": o.order_id,
                           "trade_time": rfc3339(f.ts), "trade_type": "FILL", "price": f.price, "size": f.quantity,
                           "commission": f.fee, "product_id": self._venue_symbol(o), "sequence_timestamp": rfc3339(f.ts),
                           "liquidity_indicator": "MAKER" if f.is_maker else "TAKER", "size_in_quote": False,
                           "user_id": o.account, "side": o.side.upper(), "retail_portfolio_id": ""} for o, f in fills],
                "cursor": ""}


DIALECT = CoinbaseDialect
