"""Binance spot REST v3: what differs from the shared adapter.

Sources: binance-spot-api-docs rest-api.md (SIGNED endpoints, order, account, myTrades,
depth), errors.md (codes), enums.md (order status). The client order id goes to
``newClientOrderId``; status and cancel take ``origClientOrderId``. Binance only refuses
a client id reused by an *open* order, so exbus persists ids before sending and queries
by id after any timeout (DESIGN.md).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from schemas.market import BookSnapshot, PriceLevel, Ticker
from schemas.orders import CancelOrder, PlaceOrder
from schemas.queries import (
    Balance, BalanceQuery, Fill, OpenOrdersQuery, OrderBookQuery, OrderInfo, OrderStatusQuery, TickerQuery,
    TradeHistoryQuery,
)
from schemas.vault import Credentials
from services.venues import symbols
from services.venues.base import (
    NON_IDEMPOTENT, Endpoint, HttpRequest, Params, RateLimit, RestAdapter, decimal_text,
    retry_after,
)
from services.venues.errors import (
    AuthError, DuplicateOrder, InsufficientBalance, InvalidOrder, OrderNotFound, OutcomeUnknown, RateLimited,
    VenueError, VenueUnavailable,
)
from services.venues.rules import MarketRules

MS = 1_000_000
RECV_WINDOW_MS = 5000
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000, 5000)

ORDER_STATE = {
    "NEW": "open", "PENDING_NEW": "open", "PARTIALLY_FILLED": "partially_filled", "FILLED": "filled",
    "CANCELED": "canceled", "PENDING_CANCEL": "open", "REJECTED": "rejected", "EXPIRED": "expired",
    "EXPIRED_IN_MATCH": "expired",
}


class _Order(msgspec.Struct):
    symbol: str
    orderId: int
    clientOrderId: str
    price: Decimal
    origQty: Decimal
    executedQty: Decimal
    cummulativeQuoteQty: Decimal
    status: str
    type: str
    side: str
    transactTime: int | None = None
    time: int | None = None
    updateTime: int | None = None
    origClientOrderId: str | None = None  # cancel replies name the canceled order's id here


class _Trade(msgspec.Struct):
    symbol: str
    id: int
    orderId: int
    price: Decimal
    qty: Decimal
    commission: Decimal
    commissionAsset: str
    time: int
    isBuyer: bool
    isMaker: bool


class _Depth(msgspec.Struct):
    lastUpdateId: int
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]


class _Ticker24h(msgspec.Struct):
    symbol: str
    lastPrice: Decimal
    bidPrice: Decimal
    bidQty: Decimal
    askPrice: Decimal
    askQty: Decimal
    openPrice: Decimal
    highPrice: Decimal
    lowPrice: Decimal
    volume: Decimal
    quoteVolume: Decimal
    closeTime: int


class _Error(msgspec.Struct):
    code: int
    msg: str


def _positive(value: Decimal) -> Decimal | None:
    return value if value > 0 else None


class BinanceRest(RestAdapter):
    venue = "binance"
    base_url = "https://api.binance.com"
    rate_limits = (
        RateLimit("weight", 6000, 60.0, "ip", usage_header="x-mbx-used-weight-1m"),
        RateLimit("raw_requests", 61000, 300.0, "ip"),
        RateLimit("orders_10s", 100, 10.0, "account", usage_header="x-mbx-order-count-10s"),
        RateLimit("orders_1d", 200000, 86400.0, "account", usage_header="x-mbx-order-count-1d"),
    )
    endpoints = {
        "ticker": Endpoint("GET", "/api/v3/ticker/24hr", False, {"weight": 2}),
        "orderbook": Endpoint("GET", "/api/v3/depth", False, {"weight": 5}),
        "instruments": Endpoint("GET", "/api/v3/exchangeInfo", False, {"weight": 20}),
        "place_order": Endpoint("POST", "/api/v3/order", True, {"weight": 1, "orders_10s": 1, "orders_1d": 1}),
        "cancel_order": Endpoint("DELETE", "/api/v3/order", True, {"weight": 1}),
        "order_status": Endpoint("GET", "/api/v3/order", True, {"weight": 4}),
        "open_orders": Endpoint("GET", "/api/v3/openOrders", True, {"weight": 6}),
        "balance": Endpoint("GET", "/api/v3/account", True, {"weight": 20}),
        "trade_history": Endpoint("GET", "/api/v3/myTrades", True, {"weight": 20}),
    }

    # --- signing ------------------------------------------------------------------
    def sign(self, method: str, path: str, params: Params, creds: Credentials, time_ms: int,
             nonce: str | int | None = None) -> HttpRequest:
        """HMAC-SHA256 hex of the percent-encoded parameters (query for GET/DELETE, form
        body otherwise), appended as ``signature``; key in ``X-MBX-APIKEY``."""
        if not any(k == "timestamp" for k, _ in params):
            params = [*params, ("timestamp", str(time_ms))]
        return self.hmac_query_request(method, path, params, creds.secret, {"X-MBX-APIKEY": creds.api_key})

    def cost(self, op: str, args: Any) -> dict[str, int]:
        """Request weight of one call; depth and openOrders weigh by their arguments."""
        if op == "orderbook":
            limit = _depth_limit(args.depth)
            return {"weight": 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250}
        if op == "open_orders" and args.symbol is None:
            return {"weight": 80}
        return dict(self.endpoints[op].cost)

    # --- parameters ---------------------------------------------------------------------
    def params_ticker(self, q: TickerQuery) -> Params:
        return [("symbol", symbols.concatenated(q.symbol))]

    def params_orderbook(self, q: OrderBookQuery) -> Params:
        return [("symbol", symbols.concatenated(q.symbol)), ("limit", str(_depth_limit(q.depth)))]

    def params_instruments(self, _: Any) -> Params:
        return []

    def params_place_order(self, o: PlaceOrder) -> Params:
        if o.order_type == "limit":
            kind = "LIMIT_MAKER" if o.post_only else "LIMIT"
        else:
            kind = "MARKET"
        p: Params = [("symbol", symbols.concatenated(o.symbol)), ("side", o.side.upper()), ("type", kind)]
        if kind == "LIMIT":
            p.append(("timeInForce", o.time_in_force.upper()))
        if o.quantity is not None:
            p.append(("quantity", decimal_text(o.quantity)))
        if o.quote_quantity is not None:
            p.append(("quoteOrderQty", decimal_text(o.quote_quantity)))
        if o.price is not None:
            p.append(("price", decimal_text(o.price)))
        p += [("newClientOrderId", o.client_order_id), ("newOrderRespType", "FULL"), ("recvWindow", str(RECV_WINDOW_MS))]
        return p

    def params_cancel_order(self, c: CancelOrder) -> Params:
        return [("symbol", symbols.concatenated(c.symbol)), ("origClientOrderId", c.client_order_id),
                ("recvWindow", str(RECV_WINDOW_MS))]

    def params_order_status(self, q: OrderStatusQuery) -> Params:
        return [("symbol", symbols.concatenated(q.symbol)), ("origClientOrderId", q.client_order_id),
                ("recvWindow", str(RECV_WINDOW_MS))]

    def params_open_orders(self, q: OpenOrdersQuery) -> Params:
        p: Params = [("symbol", symbols.concatenated(q.symbol))] if q.symbol else []
        return [*p, ("recvWindow", str(RECV_WINDOW_MS))]

    def params_balance(self, _: BalanceQuery) -> Params:
        return [("omitZeroBalances", "true"), ("recvWindow", str(RECV_WINDOW_MS))]

    def params_trade_history(self, q: TradeHistoryQuery) -> Params:
        p: Params = [("symbol", symbols.concatenated(q.symbol))]
        if q.since is not None:
            p.append(("startTime", str(q.since // MS)))
        return [*p, ("limit", str(q.limit)), ("recvWindow", str(RECV_WINDOW_MS))]

    # --- parsing ----------------------------------------------------------------------------
    def parse_ticker(self, payload: Any, q: TickerQuery) -> Ticker:
        t = msgspec.convert(payload, _Ticker24h)
        ts = t.closeTime * MS
        return Ticker(venue="binance", symbol=q.symbol, ts_event=ts, ts_recv=ts, bid=_positive(t.bidPrice),
                      bid_size=t.bidQty, ask=_positive(t.askPrice), ask_size=t.askQty, last=_positive(t.lastPrice),
                      open_24h=_positive(t.openPrice), high_24h=_positive(t.highPrice), low_24h=_positive(t.lowPrice),
                      volume_24h=t.volume, quote_volume_24h=t.quoteVolume)

    def parse_orderbook(self, payload: Any, q: OrderBookQuery) -> BookSnapshot:
        d = msgspec.convert(payload, _Depth)
        return BookSnapshot(
            venue="binance", symbol=q.symbol, ts_event=0, ts_recv=0, sequence=0, venue_sequence=d.lastUpdateId,
            bids=[PriceLevel(p, s) for p, s in d.bids[: q.depth]], asks=[PriceLevel(p, s) for p, s in d.asks[: q.depth]],
        )

    def parse_instruments(self, payload: Any, _: Any) -> dict[str, MarketRules]:
        rules = {}
        for s in payload["symbols"]:
            filters = {f["filterType"]: f for f in s.get("filters", [])}
            price, lot = filters.get("PRICE_FILTER", {}), filters.get("LOT_SIZE", {})
            notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
            symbol = f"{s['baseAsset']}-{s['quoteAsset']}".upper()
            rules[symbol] = MarketRules(
                symbol=symbol, venue_symbol=s["symbol"], trading=s.get("status") == "TRADING",
                tick_size=_positive(Decimal(price.get("tickSize", "0"))),
                lot_size=_positive(Decimal(lot.get("stepSize", "0"))),
                min_quantity=_positive(Decimal(lot.get("minQty", "0"))),
                max_quantity=_positive(Decimal(lot.get("maxQty", "0"))),
                min_notional=_positive(Decimal(notional.get("minNotional", "0"))),
            )
        return rules

    def _order(self, payload: Any, symbol: str | None) -> OrderInfo:
        o = msgspec.convert(payload, _Order)
        avg = o.cummulativeQuoteQty / o.executedQty if o.executedQty > 0 and o.cummulativeQuoteQty > 0 else None
        created = o.transactTime if o.transactTime is not None else o.time
        return OrderInfo(
            symbol=symbol or symbols.from_concatenated(o.symbol),
            client_order_id=o.origClientOrderId or o.clientOrderId, venue_order_id=str(o.orderId),
            side="buy" if o.side == "BUY" else "sell", order_type="market" if o.type == "MARKET" else "limit",
            state=ORDER_STATE.get(o.status, "open"), quantity=_positive(o.origQty), filled_quantity=o.executedQty,
            price=_positive(o.price), average_price=avg,
            ts_created=created * MS if created else None,
            ts_updated=(o.updateTime or created or 0) * MS or None,
        )

    def parse_place_order(self, payload: Any, o: PlaceOrder) -> OrderInfo:
        return self._order(payload, o.symbol)

    def parse_cancel_order(self, payload: Any, c: CancelOrder) -> OrderInfo:
        return self._order(payload, c.symbol)

    def parse_order_status(self, payload: Any, q: OrderStatusQuery) -> OrderInfo:
        return self._order(payload, q.symbol)

    def parse_open_orders(self, payload: Any, q: OpenOrdersQuery) -> list[OrderInfo]:
        return [self._order(o, q.symbol if q else None) for o in payload]

    def parse_balance(self, payload: Any, _: Any) -> list[Balance]:
        return [Balance(asset=b["asset"].upper(), free=Decimal(b["free"]), locked=Decimal(b["locked"]))
                for b in payload["balances"] if Decimal(b["free"]) or Decimal(b["locked"])]

    def parse_trade_history(self, payload: Any, q: TradeHistoryQuery) -> list[Fill]:
        fills = []
        for t in msgspec.convert(payload, list[_Trade]):
            fills.append(Fill(
                trade_id=str(t.id), venue_order_id=str(t.orderId), symbol=q.symbol, side="buy" if t.isBuyer else "sell",
                price=t.price, quantity=t.qty, ts_event=t.time * MS, fee=t.commission, fee_asset=t.commissionAsset,
                liquidity="maker" if t.isMaker else "taker",
            ))
        return fills

    # --- errors (errors.md) --------------------------------------------------------------------
    def error(self, status: int, headers: dict[str, str], payload: Any, op: str) -> VenueError | None:
        if status < 400:
            return None
        try:
            e = msgspec.convert(payload, _Error)
        except msgspec.ValidationError:
            return None  # no Binance error body: the shared status mapping applies
        kw = {"venue_code": e.code}
        text = f"binance {e.code}: {e.msg}"
        if status in (429, 418) or e.code in (-1003, -1015):
            return RateLimited(text, retry_after=retry_after(headers), banned=status == 418, **kw)
        if e.code in (-1007, -1006):  # "Send status unknown; execution status unknown"
            return OutcomeUnknown(text, **kw) if op in NON_IDEMPOTENT else VenueUnavailable(text, **kw)
        if e.code in (-1000, -1001, -1008) or status >= 500:
            return (OutcomeUnknown if op in NON_IDEMPOTENT and status >= 500 else VenueUnavailable)(text, **kw)
        if e.code in (-1002, -1021, -1022, -2014, -2015, -2008):
            return AuthError(text, **kw)
        if e.code == -2010:
            if "insufficient balance" in e.msg.lower():
                return InsufficientBalance(text, **kw)
            if "duplicate order" in e.msg.lower():
                return DuplicateOrder(text, **kw)
            return InvalidOrder(text, **kw)
        if e.code in (-2011, -2013):
            if "unknown order" in e.msg.lower() or "does not exist" in e.msg.lower() or e.code == -2013:
                return OrderNotFound(text, **kw)
            return InvalidOrder(text, **kw)
        return InvalidOrder(text, **kw)


def _depth_limit(depth: int) -> int:
    return next((lim for lim in DEPTH_LIMITS if lim >= depth), DEPTH_LIMITS[-1])


ADAPTER = BinanceRest
