"""Coinbase Advanced Trade REST v3: what differs from the shared adapter.

Sources: docs.cdp.coinbase.com Advanced Trade API (authentication: a JWT per request,
ES256 with the CDP key's EC P-256 private key; header kid = key name and a random nonce;
claims sub = key name, iss "coinbase-cloud", nbf/exp 120 s, aud ["retail_rest_api_proxy"],
uri "METHOD host/path" without the query), official SDK coinbase-advanced-py
jwt_generator.build_jwt, ccxt 4.5.90 coinbase.create_auth_token; Create Order
(``client_order_id`` required; "if the ID provided is not unique, the order will not be
created and the order corresponding with that ID will be returned instead"), Batch
Cancel (by order ids), Get Order (by order id), List Accounts, List Fills, public
market/product_book and market/products.

Coinbase de-duplicates creates by client_order_id itself, so re-sending the identical
create is safe there. Get Order and Cancel work by Coinbase's order id (Get Order's
``client_order_id`` query parameter is documented as deprecated): the executor passes the
venue_order_id it recorded. Without one (a create whose reply was lost) order status lists
the product's orders (List Orders, every status, newest first) and picks the one with the
client_order_id; none there is OrderNotFound. A cancel without the order id looks the client
order id up the same way: not there is OrderNotFound, there is InvalidOrder naming the
order id to cancel with (Batch Cancel takes order ids only).
"""

from __future__ import annotations

import json
import secrets
from decimal import Decimal
from typing import Any

import jwt

from schemas.market import BookSnapshot, PriceLevel, Ticker
from schemas.orders import CancelOrder, PlaceOrder
from schemas.queries import (
    Balance, BalanceQuery, Fill, OpenOrdersQuery, OrderBookQuery, OrderInfo, OrderStatusQuery, TickerQuery,
    TradeHistoryQuery,
)
from schemas.vault import Credentials
from services.venues.base import (
    CancelAccepted, Endpoint, HttpRequest, Params, RateLimit, RestAdapter, decimal_text, percent_encode, retry_after,
)
from services.venues.coinbase.ws import rfc3339_ns
from services.venues.errors import (
    AuthError, DuplicateOrder, InsufficientBalance, InvalidOrder, OrderNotFound, RateLimited, VenueError,
)
from services.venues.rules import MarketRules

HOST = "api.coinbase.com"
LOOKUP_LIMIT = 1000
"""Orders List Orders returns when status is asked by client order id (a lost create reply)."""
STATE = {"OPEN": "open", "PENDING": "open", "QUEUED": "open", "FILLED": "filled", "CANCELLED": "canceled",
         "CANCEL_QUEUED": "open", "EXPIRED": "expired", "FAILED": "rejected"}
FAILURES: dict[str, type[VenueError]] = {
    "INSUFFICIENT_FUND": InsufficientBalance, "INSUFFICIENT_FUNDS": InsufficientBalance,
    "DUPLICATE_CLIENT_ORDER_ID": DuplicateOrder, "UNKNOWN_CANCEL_ORDER": OrderNotFound,
    "NOT_FOUND": OrderNotFound, "UNAUTHENTICATED": AuthError, "PERMISSION_DENIED": AuthError,
    "rate_limit_exceeded": RateLimited,
}


def order_configuration(o: PlaceOrder) -> dict[str, Any]:
    """The order_configuration object of Create Order for an exbus order."""
    if o.order_type == "market":
        size = {"quote_size": decimal_text(o.quote_quantity)} if o.quote_quantity is not None else {"base_size": decimal_text(o.quantity)}
        return {"market_market_ioc": size}
    body = {"base_size": decimal_text(o.quantity), "limit_price": decimal_text(o.price)}
    if o.time_in_force == "gtc":
        return {"limit_limit_gtc": {**body, "post_only": o.post_only}}
    return {"sor_limit_ioc" if o.time_in_force == "ioc" else "limit_limit_fok": body}


def cdp_jwt(creds: Credentials, time_ms: int, uri: str | None, nonce: str | int | None = None) -> str:
    """A CDP API key JWT, ES256, valid 120 s: ``uri`` "METHOD host/path" for a REST request;
    None for a WebSocket message ("WebSocket JWTs are not built with a request method or
    request path"; the SDK's build_ws_jwt)."""
    now = time_ms // 1000
    claims: dict[str, Any] = {"sub": creds.api_key, "iss": "coinbase-cloud", "nbf": now, "exp": now + 120, "iat": now,
                              "aud": ["retail_rest_api_proxy"]}
    if uri is not None:
        claims["uri"] = uri
    return jwt.encode(claims, creds.secret, algorithm="ES256",
                      headers={"kid": creds.api_key, "nonce": str(nonce) if nonce is not None else secrets.token_hex()})


class CoinbaseRest(RestAdapter):
    venue = "coinbase"
    base_url = f"https://{HOST}"
    rate_limits = (
        RateLimit("private", 30, 1.0, "account"),
        RateLimit("public", 10, 1.0, "ip"),
    )
    endpoints = {
        "ticker": Endpoint("GET", "/api/v3/brokerage/market/products/{product_id}/ticker", False, {"public": 1}),
        "orderbook": Endpoint("GET", "/api/v3/brokerage/market/product_book", False, {"public": 1}),
        "instruments": Endpoint("GET", "/api/v3/brokerage/market/products", False, {"public": 1}),
        "place_order": Endpoint("POST", "/api/v3/brokerage/orders", True, {"private": 1}),
        "cancel_order": Endpoint("POST", "/api/v3/brokerage/orders/batch_cancel", True, {"private": 1}),
        "order_status": Endpoint("GET", "/api/v3/brokerage/orders/historical/{order_id}", True, {"private": 1}),
        "open_orders": Endpoint("GET", "/api/v3/brokerage/orders/historical/batch", True, {"private": 1}),
        "balance": Endpoint("GET", "/api/v3/brokerage/accounts", True, {"private": 1}),
        "trade_history": Endpoint("GET", "/api/v3/brokerage/orders/historical/fills", True, {"private": 1}),
    }

    def path_for(self, op: str, args: Any) -> str:
        path = self.endpoints[op].path
        if op == "ticker":
            return path.replace("{product_id}", args.symbol)
        if op == "order_status":
            if not args.venue_order_id:  # a lost create reply: List Orders, matched by client_order_id
                return self.endpoints["open_orders"].path
            return path.replace("{order_id}", args.venue_order_id)
        return path

    def sign(self, method: str, path: str, params: Params, creds: Credentials, time_ms: int,
             nonce: str | int | None = None) -> HttpRequest:
        """A fresh ES256 JWT for this request as the Bearer token (uri without query)."""
        token = cdp_jwt(creds, time_ms, f"{method} {HOST}{path}", nonce)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if method in ("GET", "DELETE"):
            query = percent_encode(params)
            return HttpRequest(method, f"{self.url}{path}{'?' + query if query else ''}", headers)
        body = {k: v for k, v in params}
        return HttpRequest(method, f"{self.url}{path}", headers, json.dumps(body, separators=(",", ":")).encode())

    # --- parameters (values may be JSON objects: Create Order nests its configuration) ------------
    def params_ticker(self, _: TickerQuery) -> Params:
        return [("limit", "1")]

    def params_orderbook(self, q: OrderBookQuery) -> Params:
        return [("product_id", q.symbol), ("limit", str(q.depth))]

    def params_instruments(self, _: Any) -> Params:
        return [("product_type", "SPOT")]

    def params_place_order(self, o: PlaceOrder) -> Params:
        return [("client_order_id", o.client_order_id), ("product_id", o.symbol), ("side", o.side.upper()),
                ("order_configuration", order_configuration(o))]  # type: ignore[list-item]

    def build_request(self, op: str, args: Any, creds: Credentials | None, now_ms: int,
                      nonce: str | int | None = None) -> HttpRequest:
        if op == "cancel_order" and not args.venue_order_id and creds is not None:
            # Batch Cancel takes Coinbase order ids only: without one, look the client order id up
            # (List Orders) so that an order Coinbase never had is a definite OrderNotFound
            path = self.endpoints["open_orders"].path
            return self.sign("GET", path, [("product_ids", args.symbol), ("limit", str(LOOKUP_LIMIT))], creds, now_ms, nonce)
        return super().build_request(op, args, creds, now_ms, nonce)

    def params_cancel_order(self, c: CancelOrder) -> Params:
        return [("order_ids", [c.venue_order_id])]  # type: ignore[list-item]

    def params_order_status(self, q: OrderStatusQuery) -> Params:
        if not q.venue_order_id:  # every status, newest first; the order is picked by client_order_id
            return [("product_ids", q.symbol), ("limit", str(LOOKUP_LIMIT))]
        return []

    def params_open_orders(self, q: OpenOrdersQuery) -> Params:
        return [("order_status", "OPEN"), *([("product_ids", q.symbol)] if q.symbol else [])]

    def params_balance(self, _: BalanceQuery) -> Params:
        return [("limit", "250")]

    def params_trade_history(self, q: TradeHistoryQuery) -> Params:
        return [("product_ids", q.symbol), ("limit", str(q.limit))]

    # --- parsing -------------------------------------------------------------------------------------
    def parse_ticker(self, payload: Any, q: TickerQuery) -> Ticker:
        trades = payload.get("trades") or []
        last = Decimal(trades[0]["price"]) if trades else None
        ts = rfc3339_ns(trades[0]["time"]) if trades else 0
        bid, ask = payload.get("best_bid") or None, payload.get("best_ask") or None
        return Ticker(venue="coinbase", symbol=q.symbol, ts_event=ts, ts_recv=ts, last=last,
                      bid=Decimal(bid) if bid else None, ask=Decimal(ask) if ask else None)

    def parse_orderbook(self, payload: Any, q: OrderBookQuery) -> BookSnapshot:
        book = payload["pricebook"]
        side = lambda rows: [PriceLevel(Decimal(r["price"]), Decimal(r["size"])) for r in rows][: q.depth]  # noqa: E731
        ts = rfc3339_ns(book["time"]) if book.get("time") else 0
        return BookSnapshot(venue="coinbase", symbol=q.symbol, ts_event=ts, ts_recv=ts, sequence=0,
                            bids=side(book["bids"]), asks=side(book["asks"]))

    def parse_instruments(self, payload: Any, _: Any) -> dict[str, MarketRules]:
        def dec(v: str | None) -> Decimal | None:
            return Decimal(v) if v else None

        return {p["product_id"]: MarketRules(
            symbol=p["product_id"], venue_symbol=p["product_id"], tick_size=dec(p.get("price_increment") or p.get("quote_increment")),
            lot_size=dec(p.get("base_increment")), min_quantity=dec(p.get("base_min_size")),
            max_quantity=dec(p.get("base_max_size")), min_notional=dec(p.get("quote_min_size")),
            trading=not p.get("trading_disabled", False) and p.get("status", "online") == "online",
        ) for p in payload["products"]}

    def _order(self, o: dict[str, Any]) -> OrderInfo:
        config = next(iter((o.get("order_configuration") or {}).values()), {})
        filled = Decimal(o.get("filled_size") or "0")
        state = STATE.get(o.get("status", "OPEN"), "open")
        if state == "open" and filled > 0:
            state = "partially_filled"
        size = config.get("base_size")
        avg = o.get("average_filled_price")
        return OrderInfo(
            symbol=o["product_id"], client_order_id=o.get("client_order_id") or None, venue_order_id=o["order_id"],
            side="buy" if o["side"] == "BUY" else "sell", order_type="market" if o.get("order_type") == "MARKET" else "limit",
            state=state, quantity=Decimal(size) if size else None, filled_quantity=filled,
            price=Decimal(config["limit_price"]) if config.get("limit_price") else None,
            average_price=Decimal(avg) if avg and filled else None,
            ts_created=rfc3339_ns(o["created_time"]) if o.get("created_time") else None,
        )

    def parse_place_order(self, payload: Any, o: PlaceOrder) -> OrderInfo:
        r = payload["success_response"]
        return OrderInfo(symbol=o.symbol, client_order_id=o.client_order_id, venue_order_id=r["order_id"], side=o.side,
                         order_type=o.order_type, state="open", quantity=o.quantity, filled_quantity=Decimal(0),
                         price=o.price)

    def parse_cancel_order(self, payload: Any, c: CancelOrder) -> CancelAccepted | VenueError:
        if "orders" in payload:  # the List Orders look-up of a cancel without the venue order id
            found = [o for o in payload["orders"] if o.get("client_order_id") == c.client_order_id]
            if not found:
                return OrderNotFound(f"coinbase: no order with client_order_id {c.client_order_id}", venue_code="NOT_FOUND")
            return InvalidOrder(f"coinbase cancels by order id: send the cancel with venue_order_id "
                                f"{found[0]['order_id']} (client_order_id {c.client_order_id})", venue_code="NO_ORDER_ID")
        (r,) = payload["results"]
        if not r.get("success"):
            reason = r.get("failure_reason", "UNKNOWN_CANCEL_FAILURE_REASON")
            return FAILURES.get(reason, InvalidOrder)(f"coinbase: {reason}", venue_code=reason)
        return CancelAccepted(client_order_id=c.client_order_id, venue_order_id=r.get("order_id"))

    def parse_order_status(self, payload: Any, q: OrderStatusQuery) -> OrderInfo | VenueError:
        if "order" in payload:
            return self._order(payload["order"])
        found = [o for o in payload["orders"] if o.get("client_order_id") == q.client_order_id]
        if not found:
            return OrderNotFound(f"coinbase: no order with client_order_id {q.client_order_id} among the "
                                 f"{len(payload['orders'])} newest of {q.symbol}", venue_code="NOT_FOUND")
        return self._order(found[0])  # Create Order never makes two orders of one client_order_id

    def parse_open_orders(self, payload: Any, _: Any) -> list[OrderInfo]:
        return [self._order(o) for o in payload.get("orders", [])]

    def parse_balance(self, payload: Any, _: Any) -> list[Balance]:
        return [Balance(asset=a["currency"].upper(), free=Decimal(a["available_balance"]["value"]),
                        locked=Decimal((a.get("hold") or {}).get("value", "0")))
                for a in payload["accounts"]]

    def parse_trade_history(self, payload: Any, q: TradeHistoryQuery) -> list[Fill]:
        fills = [Fill(trade_id=f["trade_id"], venue_order_id=f["order_id"], symbol=q.symbol,
                      side="buy" if f["side"] == "BUY" else "sell", price=Decimal(f["price"]), quantity=Decimal(f["size"]),
                      ts_event=rfc3339_ns(f["trade_time"]), fee=Decimal(f.get("commission") or "0"),
                      liquidity={"MAKER": "maker", "TAKER": "taker"}.get(f.get("liquidity_indicator", "")))
                 for f in payload.get("fills", [])]
        return sorted(fills, key=lambda f: f.ts_event)

    # --- errors ----------------------------------------------------------------------------------------
    def error(self, status: int, headers: dict[str, str], payload: Any, op: str) -> VenueError | None:
        if status == 401:  # Coinbase answers a refused JWT with the bare text "Unauthorized"
            return AuthError(f"coinbase 401: {payload if isinstance(payload, str) else 'Unauthorized'}", venue_code="401")
        if not isinstance(payload, dict):
            return None
        if payload.get("success") is False:  # Create Order failure (HTTP 200)
            e = payload.get("error_response") or {}
            reasons = [r for r in (e.get("error"), e.get("new_order_failure_reason"), e.get("preview_failure_reason"),
                                   payload.get("failure_reason")) if r]
            reason = next((r for r in reasons if r in FAILURES), reasons[0] if reasons else "UNKNOWN")
            return FAILURES.get(reason, InvalidOrder)(f"coinbase {reason}: {e.get('message', '')}".strip(), venue_code=reason)
        if status < 400:
            return None
        code = str(payload.get("error") or payload.get("error_details") or "")
        text = f"coinbase {status} {code}: {payload.get('message', '')}"
        if status == 429 or code == "rate_limit_exceeded":
            return RateLimited(text, retry_after=retry_after(headers), venue_code=code)
        if status in (401, 403):
            return AuthError(text, venue_code=code)
        if status == 404 and op in ("order_status", "cancel_order"):
            return OrderNotFound(text, venue_code=code)
        if status >= 500:
            return None
        return InvalidOrder(text, venue_code=code)


ADAPTER = CoinbaseRest
