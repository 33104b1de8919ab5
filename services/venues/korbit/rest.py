"""Korbit Open API v2 (REST): what differs from the shared adapter.

Sources: docs.korbit.co.kr (Korean reference; "서명된 요청 보내기": every parameter plus
``timestamp`` (ms) url-encoded in the sent order, ``signature`` = hex HMAC-SHA256 of that
string appended last, key in ``X-KAPI-KEY``; GET/DELETE in the query, POST form-encoded;
주문하기 POST /v2/orders with ``clientOrderId`` ([0-9a-zA-Z.:_-]{1,36}; "the same
clientOrderId sent several times is processed only once"); 개별 주문 조회 and 주문 취소하기
by clientOrderId; /v2/openOrders, /v2/balance, /v2/myTrades, /v2/tickers, /v2/orderbook,
/v2/currencyPairs; error codes NO_BALANCE, DUPLICATE_CLIENT_ORDER_ID, ORDER_NOT_FOUND,
ORDER_ALREADY_*, EXCEED_TIME_WINDOW, TRY_AGAIN; rate limits per account, usage in the
``Ratelimit`` header. The official korbit-cli (Go) signs the same way.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from schemas.market import BookSnapshot, PriceLevel, Ticker
from schemas.orders import CancelOrder, PlaceOrder
from schemas.queries import (
    Balance, BalanceQuery, Fill, OpenOrdersQuery, OrderBookQuery, OrderInfo, OrderStatusQuery, TickerQuery,
    TradeHistoryQuery,
)
from schemas.vault import Credentials
from services.venues import symbols
from services.venues.base import (
    CancelAccepted, Endpoint, HttpRequest, Params, RateLimit, RestAdapter, decimal_text, retry_after,
)
from services.venues.errors import (
    AuthError, DuplicateOrder, InsufficientBalance, InvalidOrder, OrderNotFound, RateLimited, VenueError,
    VenueUnavailable,
)
from services.venues.rules import MarketRules

MS = 1_000_000
STATE = {"pending": "open", "open": "open", "partiallyFilled": "partially_filled", "filled": "filled",
         "canceled": "canceled", "partiallyFilledCanceled": "canceled", "expired": "expired"}
ERRORS: dict[str, type[VenueError]] = {
    "NO_BALANCE": InsufficientBalance, "DUPLICATE_CLIENT_ORDER_ID": DuplicateOrder,
    "ORDER_NOT_FOUND": OrderNotFound, "ORDER_ALREADY_CANCELED": OrderNotFound,
    "ORDER_ALREADY_FILLED": OrderNotFound, "ORDER_ALREADY_EXPIRED": OrderNotFound,
    "EXCEED_TIME_WINDOW": AuthError, "INVALID_SIGNATURE": AuthError, "INVALID_API_KEY": AuthError,
    "UNAUTHORIZED": AuthError, "KEY_NOT_FOUND": AuthError, "INVALID_USER_STATUS": AuthError,
    "TOO_MANY_REQUESTS": RateLimited, "TRY_AGAIN": VenueUnavailable,
}


def pair(symbol: str) -> str:
    """``BTC-KRW`` -> ``btc_krw``."""
    base, quote = symbols.split(symbol)
    return f"{base}_{quote}".lower()


def from_pair(name: str) -> str:
    """``btc_krw`` -> ``BTC-KRW``."""
    base, _, quote = name.upper().partition("_")
    return f"{base}-{quote}"


class KorbitRest(RestAdapter):
    venue = "korbit"
    base_url = "https://api.korbit.co.kr"
    rate_limits = (
        RateLimit("order", 30, 1.0, "account", usage_header="ratelimit", usage_reports="remaining"),
        RateLimit("cancel", 30, 1.0, "account", usage_header="ratelimit", usage_reports="remaining"),
        RateLimit("private", 50, 1.0, "account", usage_header="ratelimit", usage_reports="remaining"),
        RateLimit("public", 50, 1.0, "ip", usage_header="ratelimit", usage_reports="remaining"),
    )
    endpoints = {
        "ticker": Endpoint("GET", "/v2/tickers", False, {"public": 1}),
        "orderbook": Endpoint("GET", "/v2/orderbook", False, {"public": 1}),
        "instruments": Endpoint("GET", "/v2/currencyPairs", False, {"public": 1}),
        "place_order": Endpoint("POST", "/v2/orders", True, {"order": 1}),
        "cancel_order": Endpoint("DELETE", "/v2/orders", True, {"cancel": 1}),
        "order_status": Endpoint("GET", "/v2/orders", True, {"private": 1}),
        "open_orders": Endpoint("GET", "/v2/openOrders", True, {"private": 1}),
        "balance": Endpoint("GET", "/v2/balance", True, {"private": 1}),
        "trade_history": Endpoint("GET", "/v2/myTrades", True, {"private": 1}),
    }

    def sign(self, method: str, path: str, params: Params, creds: Credentials, time_ms: int,
             nonce: str | int | None = None) -> HttpRequest:
        if not any(k == "timestamp" for k, _ in params):
            params = [*params, ("timestamp", str(time_ms))]
        return self.hmac_query_request(method, path, params, creds.secret, {"X-KAPI-KEY": creds.api_key})

    # --- parameters -----------------------------------------------------------------------------
    def params_ticker(self, q: TickerQuery) -> Params:
        return [("symbol", pair(q.symbol))]

    def params_orderbook(self, q: OrderBookQuery) -> Params:
        return [("symbol", pair(q.symbol))]

    def params_instruments(self, _: Any) -> Params:
        return []

    def params_place_order(self, o: PlaceOrder) -> Params:
        p: Params = [("symbol", pair(o.symbol)), ("side", o.side)]
        if o.price is not None:
            p.append(("price", decimal_text(o.price)))
        if o.quote_quantity is not None:
            if o.side != "buy":
                raise ValueError("Korbit takes a quote amount (amt) for market buys only")
            p.append(("amt", decimal_text(o.quote_quantity)))
        else:
            p.append(("qty", decimal_text(o.quantity)))
        p.append(("orderType", o.order_type))
        if o.order_type == "limit":
            p.append(("timeInForce", "po" if o.post_only else o.time_in_force))
        p.append(("clientOrderId", o.client_order_id))
        return p

    def params_cancel_order(self, c: CancelOrder) -> Params:
        return [("symbol", pair(c.symbol)), ("clientOrderId", c.client_order_id)]

    def params_order_status(self, q: OrderStatusQuery) -> Params:
        return [("symbol", pair(q.symbol)), ("clientOrderId", q.client_order_id)]

    def params_open_orders(self, q: OpenOrdersQuery) -> Params:
        if q.symbol is None:
            raise ValueError("Korbit lists open orders of one symbol at a time")
        return [("symbol", pair(q.symbol))]

    def params_balance(self, _: BalanceQuery) -> Params:
        return []

    def params_trade_history(self, q: TradeHistoryQuery) -> Params:
        p: Params = [("symbol", pair(q.symbol)), ("limit", str(q.limit))]
        return [*p, ("startTime", str(q.since // MS))] if q.since is not None else p

    # --- parsing ----------------------------------------------------------------------------------------
    def parse_ticker(self, payload: Any, q: TickerQuery) -> Ticker:
        (t,) = payload["data"]
        ts = int(t["lastTradedAt"]) * MS
        return Ticker(venue="korbit", symbol=q.symbol, ts_event=ts, ts_recv=ts, last=Decimal(t["close"]),
                      open_24h=Decimal(t["open"]), high_24h=Decimal(t["high"]), low_24h=Decimal(t["low"]),
                      volume_24h=Decimal(t["volume"]), quote_volume_24h=Decimal(t["quoteVolume"]),
                      bid=Decimal(t["bestBidPrice"]), ask=Decimal(t["bestAskPrice"]))

    def parse_orderbook(self, payload: Any, q: OrderBookQuery) -> BookSnapshot:
        d = payload["data"]
        side = lambda rows: [PriceLevel(Decimal(r["price"]), Decimal(r["qty"])) for r in rows][: q.depth]  # noqa: E731
        ts = int(d["timestamp"]) * MS
        return BookSnapshot(venue="korbit", symbol=q.symbol, ts_event=ts, ts_recv=ts, sequence=0,
                            bids=side(d["bids"]), asks=side(d["asks"]))

    def parse_instruments(self, payload: Any, _: Any) -> dict[str, MarketRules]:
        """Pairs and whether they trade; tick sizes follow a price table (GET /v2/tickSizePolicy)."""
        return {from_pair(p["symbol"]): MarketRules(symbol=from_pair(p["symbol"]), venue_symbol=p["symbol"],
                                                    trading=p["status"] == "launched")
                for p in payload["data"]}

    def _order(self, o: dict[str, Any], symbol: str | None) -> OrderInfo:
        filled = Decimal(o.get("filledQty") or "0")
        return OrderInfo(
            symbol=symbol or from_pair(o["symbol"]), client_order_id=o.get("clientOrderId"), venue_order_id=str(o["orderId"]),
            side="buy" if o["side"] == "buy" else "sell", order_type="market" if o["orderType"] == "market" else "limit",
            state=STATE.get(o["status"], "open"), quantity=Decimal(o["qty"]) if o.get("qty") else None,
            filled_quantity=filled, price=Decimal(o["price"]) if o.get("price") else None,
            average_price=Decimal(o["avgPrice"]) if o.get("avgPrice") and filled else None,
            ts_created=int(o["createdAt"]) * MS, ts_updated=int(o["lastFilledAt"]) * MS if o.get("lastFilledAt") else None,
        )

    def parse_place_order(self, payload: Any, o: PlaceOrder) -> OrderInfo:
        return OrderInfo(symbol=o.symbol, client_order_id=o.client_order_id, venue_order_id=str(payload["data"]["orderId"]),
                         side=o.side, order_type=o.order_type, state="open", quantity=o.quantity,
                         filled_quantity=Decimal(0), price=o.price)

    def parse_cancel_order(self, payload: Any, c: CancelOrder) -> CancelAccepted:
        return CancelAccepted(client_order_id=c.client_order_id)

    def parse_order_status(self, payload: Any, q: OrderStatusQuery) -> OrderInfo:
        return self._order(payload["data"], q.symbol)

    def parse_open_orders(self, payload: Any, q: OpenOrdersQuery) -> list[OrderInfo]:
        return [self._order(o, q.symbol) for o in payload["data"]]

    def parse_balance(self, payload: Any, _: Any) -> list[Balance]:
        return [Balance(asset=b["currency"].upper(), free=Decimal(b["available"]),
                        locked=Decimal(b["tradeInUse"]) + Decimal(b.get("withdrawalInUse") or "0"))
                for b in payload["data"]]

    def parse_trade_history(self, payload: Any, q: TradeHistoryQuery) -> list[Fill]:
        fills = [Fill(trade_id=str(t["tradeId"]), venue_order_id=str(t["orderId"]), symbol=q.symbol,
                      side="buy" if t["side"] == "buy" else "sell", price=Decimal(t["price"]), quantity=Decimal(t["qty"]),
                      ts_event=int(t["tradedAt"]) * MS, fee=Decimal(t["feeQty"]) if t.get("feeQty") else None,
                      fee_asset=t["feeCurrency"].upper() if t.get("feeCurrency") else None,
                      liquidity="taker" if t.get("isTaker") else "maker")
                 for t in payload["data"]]
        return sorted(fills, key=lambda f: f.ts_event)

    # --- errors --------------------------------------------------------------------------------------------
    def error(self, status: int, headers: dict[str, str], payload: Any, op: str) -> VenueError | None:
        if not isinstance(payload, dict) or payload.get("success", True) is True:
            return None
        err = payload.get("error")
        err = err if isinstance(err, dict) else {"message": err}
        # the symbolic code is ``error.message`` (``error.code`` holds the HTTP status): the
        # official korbit-cli reads it so (internal/apiclient/client.go), as does the docs'
        # WebSocket example (``errorJson.error?.message``: EXCEED_TIME_WINDOW, KEY_NOT_FOUND)
        code = str(err.get("message") or "")
        if not code and isinstance(err.get("code"), str):
            code = err["code"]
        text = f"korbit {code or status}: {err.get('description') or ''}".strip(": ")
        kw = {"venue_code": code}
        if status == 429 or code == "TOO_MANY_REQUESTS":
            return RateLimited(text, retry_after=retry_after(headers), **kw)
        if code in ERRORS:
            return ERRORS[code](text, **kw)
        if status >= 500:
            return None
        return (AuthError if status in (401, 403) else InvalidOrder)(text, **kw)


ADAPTER = KorbitRest
