"""Upbit REST v1: what differs from the shared adapter.

Sources: docs.upbit.com (authentication: JWT with access_key, uuid nonce, query_hash =
SHA512 of the unescaped query string; orders: POST /v1/orders with a JSON body,
identifier; GET/DELETE /v1/order by identifier (cancel by identifier since 2024-12-04);
error names), ccxt 4.5.90 upbit.sign() (HS256). Upbit has no endpoint for the account's
own fills; exbus reads fills from the order itself (GET /v1/order returns its trades),
so ``trade_history`` is not offered for Upbit.
Market codes are quote-first (KRW-BTC); prices in replies are JSON numbers, read as exact
decimals from their text.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from schemas.market import BookSnapshot, PriceLevel, Ticker
from schemas.orders import CancelOrder, PlaceOrder
from schemas.queries import Balance, BalanceQuery, OpenOrdersQuery, OrderBookQuery, OrderInfo, OrderStatusQuery, TickerQuery
from schemas.vault import Credentials
from services.venues import symbols
from services.venues.base import Endpoint, HttpRequest, Params, RateLimit, RestAdapter, decimal_text, percent_encode, retry_after
from services.venues.errors import (
    AuthError, DuplicateOrder, InsufficientBalance, InvalidOrder, OrderNotFound, RateLimited, VenueError,
    VenueUnavailable,
)
from services.venues.rules import MarketRules
from services.venues.signing import query_hash_jwt

MS = 1_000_000

ORDER_STATE = {"wait": "open", "watch": "open", "done": "filled", "cancel": "canceled"}

AUTH_ERRORS = {
    "jwt_verification", "expired_access_key", "invalid_access_key", "no_authorization_ip", "nonce_used",
    "invalid_query_payload", "out_of_scope", "no_authorization_token", "server_error_jwt",
}
BALANCE_ERRORS = {"insufficient_funds_bid", "insufficient_funds_ask", "insufficient_funds"}
NOT_FOUND_ERRORS = {"order_not_found", "not_found_market"}
DUPLICATE_ERRORS = {"duplicate_identifier", "duplicated_identifier"}


class _Order(msgspec.Struct):
    uuid: str
    side: str
    ord_type: str
    state: str
    market: str
    created_at: str
    price: Decimal | None = None
    volume: Decimal | None = None
    executed_volume: Decimal = Decimal(0)
    identifier: str | None = None
    client_order_id: str | None = None  # Bithumb's name for it
    trades: list[dict[str, Any]] = []


class _Unit(msgspec.Struct):
    ask_price: Decimal
    bid_price: Decimal
    ask_size: Decimal
    bid_size: Decimal


class _Orderbook(msgspec.Struct):
    market: str
    timestamp: int
    orderbook_units: list[_Unit]


class _Ticker(msgspec.Struct):
    market: str
    trade_price: Decimal
    opening_price: Decimal
    high_price: Decimal
    low_price: Decimal
    acc_trade_volume_24h: Decimal
    acc_trade_price_24h: Decimal
    timestamp: int


def _ns(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1e6) * 1000


class UpbitRest(RestAdapter):
    """Upbit v1; also the base of Bithumb's Upbit-like private API (services.venues.bithumb.rest)."""

    venue = "upbit"
    base_url = "https://api.upbit.com"
    jwt_algorithm = "HS256"
    client_id_field = "identifier"
    """The venue's name for the client order id parameter."""
    rate_limits = (
        RateLimit("order", 8, 1.0, "account", usage_header="remaining-req", usage_reports="remaining", group="order"),
        RateLimit("default", 30, 1.0, "account", usage_header="remaining-req", usage_reports="remaining", group="default"),
        RateLimit("market", 10, 1.0, "ip", usage_header="remaining-req", usage_reports="remaining", group="market"),
    )
    endpoints = {
        "ticker": Endpoint("GET", "/v1/ticker", False, {"market": 1}),
        "orderbook": Endpoint("GET", "/v1/orderbook", False, {"market": 1}),
        "instruments": Endpoint("GET", "/v1/market/all", False, {"market": 1}),
        "place_order": Endpoint("POST", "/v1/orders", True, {"order": 1}),
        "cancel_order": Endpoint("DELETE", "/v1/order", True, {"default": 1}),
        "order_status": Endpoint("GET", "/v1/order", True, {"default": 1}),
        "open_orders": Endpoint("GET", "/v1/orders/open", True, {"default": 1}),
        "balance": Endpoint("GET", "/v1/accounts", True, {"default": 1}),
    }

    def sign(self, method: str, path: str, params: Params, creds: Credentials, time_ms: int,
             nonce: str | int | None = None) -> HttpRequest:
        """JWT (access_key, uuid nonce, query_hash of the unescaped ``k=v&...``) as a Bearer
        token; parameters go to the query for GET/DELETE and to a JSON body otherwise."""
        raw = "&".join(f"{k}={v}" for k, v in params)
        token = query_hash_jwt(creds.api_key, creds.secret, str(nonce or uuid.uuid4()), raw,
                               algorithm=self.jwt_algorithm, extra=self.extra_claims(time_ms))
        headers = {"Authorization": f"Bearer {token}"}
        if method in ("GET", "DELETE"):
            query = percent_encode(params).replace("%5B%5D", "[]")
            return HttpRequest(method, f"{self.url}{path}{'?' + query if query else ''}", headers)
        headers["Content-Type"] = "application/json; charset=utf-8"
        return HttpRequest(method, f"{self.url}{path}", headers, json.dumps(dict(params), separators=(",", ":")).encode())

    def extra_claims(self, time_ms: int) -> dict[str, object] | None:
        """JWT claims beyond access_key, nonce and the query hash (Bithumb adds a timestamp)."""
        return None

    # --- parameters ---------------------------------------------------------------------------
    def params_ticker(self, q: TickerQuery) -> Params:
        return [("markets", symbols.quote_first(q.symbol))]

    def params_orderbook(self, q: OrderBookQuery) -> Params:
        return [("markets", symbols.quote_first(q.symbol))]

    def params_instruments(self, _: Any) -> Params:
        return [("isDetails", "true")]

    def params_place_order(self, o: PlaceOrder) -> Params:
        p: Params = [("market", symbols.quote_first(o.symbol)), ("side", "bid" if o.side == "buy" else "ask")]
        if o.order_type == "limit":
            p += [("volume", decimal_text(o.quantity)), ("price", decimal_text(o.price)), ("ord_type", "limit")]
            if o.post_only:
                p.append(("time_in_force", "post_only"))
            elif o.time_in_force != "gtc":
                p.append(("time_in_force", o.time_in_force))
        elif o.quote_quantity is not None:  # market buy: spend this much quote
            if o.side != "buy":
                raise ValueError("Upbit takes a quote amount for market buys only")
            p += [("price", decimal_text(o.quote_quantity)), ("ord_type", "price")]
        else:
            if o.side != "sell":
                raise ValueError("Upbit market buys take quote_quantity (the amount to spend)")
            p += [("volume", decimal_text(o.quantity)), ("ord_type", "market")]
        p.append((self.client_id_field, o.client_order_id))
        return p

    def params_cancel_order(self, c: CancelOrder) -> Params:
        return [(self.client_id_field, c.client_order_id)]

    def params_order_status(self, q: OrderStatusQuery) -> Params:
        return [(self.client_id_field, q.client_order_id)]

    def params_open_orders(self, q: OpenOrdersQuery) -> Params:
        p: Params = [("market", symbols.quote_first(q.symbol))] if q.symbol else []
        return [*p, ("states[]", "wait"), ("states[]", "watch")]

    def params_balance(self, _: BalanceQuery) -> Params:
        return []

    # --- parsing ----------------------------------------------------------------------------------
    def parse_ticker(self, payload: Any, q: TickerQuery) -> Ticker:
        (t,) = msgspec.convert(payload, list[_Ticker])
        ts = t.timestamp * MS
        return Ticker(venue=self.venue, symbol=q.symbol, ts_event=ts, ts_recv=ts, last=t.trade_price,
                      open_24h=t.opening_price, high_24h=t.high_price, low_24h=t.low_price,
                      volume_24h=t.acc_trade_volume_24h, quote_volume_24h=t.acc_trade_price_24h)

    def parse_orderbook(self, payload: Any, q: OrderBookQuery) -> BookSnapshot:
        (b,) = msgspec.convert(payload, list[_Orderbook])
        units = b.orderbook_units[: q.depth]
        ts = b.timestamp * MS
        return BookSnapshot(venue=self.venue, symbol=q.symbol, ts_event=ts, ts_recv=ts, sequence=0,
                            bids=[PriceLevel(u.bid_price, u.bid_size) for u in units if u.bid_size > 0],
                            asks=[PriceLevel(u.ask_price, u.ask_size) for u in units if u.ask_size > 0])

    def parse_instruments(self, payload: Any, _: Any) -> dict[str, MarketRules]:
        """Upbit lists markets without tick or lot sizes (KRW ticks follow a published price
        table); exbus knows which markets trade and leaves the rest to the venue."""
        rules = {}
        for m in payload:
            symbol = symbols.from_quote_first(m["market"])
            rules[symbol] = MarketRules(symbol=symbol, venue_symbol=m["market"])
        return rules

    def _order(self, payload: Any) -> OrderInfo:
        o = msgspec.convert(payload, _Order)
        quantity = o.volume
        filled = o.executed_volume
        avg = None
        if o.trades:
            funds = sum((Decimal(str(t["funds"])) for t in o.trades), Decimal(0))
            vol = sum((Decimal(str(t["volume"])) for t in o.trades), Decimal(0))
            avg = funds / vol if vol else None
        state = ORDER_STATE.get(o.state, "open")
        if state == "open" and filled > 0:
            state = "partially_filled"
        return OrderInfo(
            symbol=symbols.from_quote_first(o.market), client_order_id=o.identifier or o.client_order_id,
            venue_order_id=o.uuid,
            side="buy" if o.side == "bid" else "sell", order_type="limit" if o.ord_type == "limit" else "market",
            state=state, quantity=quantity, filled_quantity=filled,
            price=o.price if o.ord_type == "limit" else None, average_price=avg, ts_created=_ns(o.created_at),
        )

    def parse_place_order(self, payload: Any, _: Any) -> OrderInfo:
        return self._order(payload)

    parse_cancel_order = parse_place_order
    parse_order_status = parse_place_order

    def parse_open_orders(self, payload: Any, _: Any) -> list[OrderInfo]:
        return [self._order(o) for o in payload]

    def parse_balance(self, payload: Any, _: Any) -> list[Balance]:
        return [Balance(asset=a["currency"].upper(), free=Decimal(str(a["balance"])), locked=Decimal(str(a["locked"])))
                for a in payload]

    # --- errors -------------------------------------------------------------------------------------
    def error(self, status: int, headers: dict[str, str], payload: Any, op: str) -> VenueError | None:
        if status < 400:
            return None
        err = payload.get("error") if isinstance(payload, dict) else None
        if not isinstance(err, dict):
            return None  # the shared status mapping applies
        name, message = str(err.get("name", "")), str(err.get("message", ""))
        text, kw = f"{self.venue} {name}: {message}", {"venue_code": name}
        if status in (429, 418) or name == "too_many_requests":
            return RateLimited(text, retry_after=retry_after(headers), banned=status == 418, **kw)
        if status >= 500:
            return None
        if name in AUTH_ERRORS or status == 401:
            return AuthError(text, **kw)
        if name in BALANCE_ERRORS:
            return InsufficientBalance(text, **kw)
        if name in NOT_FOUND_ERRORS or status == 404:
            return OrderNotFound(text, **kw)
        if name in DUPLICATE_ERRORS:
            return DuplicateOrder(text, **kw)
        if name == "market_offline":
            return VenueUnavailable(text, **kw)
        return InvalidOrder(text, **kw)


ADAPTER = UpbitRest
