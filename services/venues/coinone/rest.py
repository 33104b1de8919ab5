"""Coinone API v2.1 (private) and public v2: what differs from the shared adapter.

Sources: docs.coinone.co.kr (Private API v2.1: every call is a POST whose JSON carries
``access_token``, a UUID v4 ``nonce`` and the parameters; X-COINONE-PAYLOAD =
base64(JSON), X-COINONE-SIGNATURE = hex HMAC-SHA512(secret, payload); 매수/매도 주문
/v2.1/order with ``user_order_id``; 주문 취소 /v2.1/order/cancel, 주문 정보 조회
/v2.1/order/detail by order_id or user_order_id; active_orders, completed_orders,
balance/all; public /public/v2/orderbook, ticker_new, markets), ccxt 4.5.90
coinone.sign() (sends the base64 payload as the body). ccxt upper-cases the secret
before signing; the docs' example signs with the secret as issued, which exbus does
(for the upper-case secrets Coinone issues the two agree). order/detail and order/cancel
take exactly one of order_id and user_order_id (the venue's id when exbus has it);
completed_orders requires size, from_ts and to_ts. Error codes (docs error-code page): 4
blocked (rate limit; no Retry-After, so the wait is the limit's window), 11/12 access token
missing/invalid, 40 permission, 120-123 payload/signature, 130/131 nonce, 103 lack of
balance, 104 order id does not exist, 105 price unit, 107 bad parameter, 108 unknown
currency, 312 user_order_id used before, 405 server error / maintenance.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
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
    NON_IDEMPOTENT, Endpoint, HttpRequest, Params, RateLimit, RestAdapter, decimal_text, percent_encode, retry_after,
)
from services.venues.errors import (
    AuthError, DuplicateOrder, InsufficientBalance, InvalidOrder, OrderNotFound, OutcomeUnknown, RateLimited,
    VenueError, VenueUnavailable,
)
from services.venues.rules import MarketRules
from services.venues.signing import hmac_hex

MS = 1_000_000
STATE = {"LIVE": "open", "PARTIALLY_FILLED": "partially_filled", "FILLED": "filled", "CANCELED": "canceled",
         "PARTIALLY_CANCELED": "canceled", "NOT_TRIGGERED": "open", "TRIGGERED": "open"}
ERRORS: dict[str, type[VenueError]] = {
    "4": RateLimited, "103": InsufficientBalance, "104": OrderNotFound, "11": AuthError, "12": AuthError,
    "40": AuthError, "120": AuthError, "121": AuthError, "122": AuthError, "123": AuthError, "130": AuthError,
    "131": AuthError, "405": VenueUnavailable, "312": DuplicateOrder,
}
USER_ORDER_ID = re.compile(r"[a-z0-9_.\-]{1,150}")
PUBLIC_BLOCK_S = 60.0
"""Docs intro: a client over the public limit is blocked for a minute (error 4); the private
limits are per second. Coinone sends no Retry-After."""


def _pair(symbol: str) -> tuple[str, str]:
    base, quote = symbols.split(symbol)
    return quote, base


class CoinoneRest(RestAdapter):
    venue = "coinone"
    base_url = "https://api.coinone.co.kr"
    rate_limits = (
        RateLimit("order", 40, 1.0, "account"),
        RateLimit("private", 80, 1.0, "account"),
        RateLimit("public", 300, 60.0, "ip"),
    )
    endpoints = {
        "ticker": Endpoint("GET", "/public/v2/ticker_new/{quote}/{base}", False, {"public": 1}),
        "orderbook": Endpoint("GET", "/public/v2/orderbook/{quote}/{base}", False, {"public": 1}),
        "instruments": Endpoint("GET", "/public/v2/markets/KRW", False, {"public": 1}),
        "place_order": Endpoint("POST", "/v2.1/order", True, {"order": 1}),
        "cancel_order": Endpoint("POST", "/v2.1/order/cancel", True, {"order": 1}),
        "order_status": Endpoint("POST", "/v2.1/order/detail", True, {"private": 1}),
        "open_orders": Endpoint("POST", "/v2.1/order/active_orders", True, {"private": 1}),
        "balance": Endpoint("POST", "/v2.1/account/balance/all", True, {"private": 1}),
        "trade_history": Endpoint("POST", "/v2.1/order/completed_orders", True, {"private": 1}),
    }

    def path_for(self, op: str, args: Any) -> str:
        path = self.endpoints[op].path
        if "{quote}" in path:
            quote, base = _pair(args.symbol)
            path = path.replace("{quote}", quote).replace("{base}", base)
        return path

    def sign(self, method: str, path: str, params: Params, creds: Credentials, time_ms: int,
             nonce: str | int | None = None) -> HttpRequest:
        body = {"access_token": creds.api_key, "nonce": str(nonce or uuid.uuid4()), **dict(params)}
        payload = base64.b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()
        headers = {"Content-Type": "application/json", "X-COINONE-PAYLOAD": payload,
                   "X-COINONE-SIGNATURE": hmac_hex(creds.secret, payload, "sha512")}
        return HttpRequest(method, f"{self.url}{path}", headers, payload.encode())

    def public_request(self, method: str, path: str, params: Params) -> HttpRequest:
        query = percent_encode(params)
        return HttpRequest(method, f"{self.url}{path}{'?' + query if query else ''}", {})

    # --- parameters ---------------------------------------------------------------------------------
    def params_ticker(self, _: TickerQuery) -> Params:
        return []

    def params_orderbook(self, q: OrderBookQuery) -> Params:
        return [("size", "5" if q.depth <= 5 else "10" if q.depth <= 10 else "15" if q.depth <= 15 else "16")]

    def params_instruments(self, _: Any) -> Params:
        return []

    def params_place_order(self, o: PlaceOrder) -> Params:
        quote, base = _pair(o.symbol)
        if not USER_ORDER_ID.fullmatch(o.client_order_id):
            # docs (order-detail): "알파벳 소문자 / 숫자 / 특수문자 - _ . 지원", up to 150 characters
            raise ValueError("Coinone user_order_id takes lower-case letters, digits, '-', '_' and '.' only")
        p: Params = [("side", o.side.upper()), ("quote_currency", quote), ("target_currency", base),
                     ("type", o.order_type.upper())]
        if o.order_type == "limit":
            if o.time_in_force != "gtc":
                raise ValueError("Coinone limit orders are good-till-canceled only")
            p += [("price", decimal_text(o.price)), ("qty", decimal_text(o.quantity)), ("post_only", o.post_only)]
        elif o.quote_quantity is not None:
            p.append(("amount", decimal_text(o.quote_quantity)))
        else:
            p.append(("qty", decimal_text(o.quantity)))
        p.append(("user_order_id", o.client_order_id))
        return p

    def params_cancel_order(self, c: CancelOrder) -> Params:
        # the docs: exactly one of order_id and user_order_id; the venue's id when exbus has it
        quote, base = _pair(c.symbol)
        key = ("order_id", c.venue_order_id) if c.venue_order_id else ("user_order_id", c.client_order_id)
        return [key, ("quote_currency", quote), ("target_currency", base)]

    def params_order_status(self, q: OrderStatusQuery) -> Params:
        quote, base = _pair(q.symbol)
        key = ("order_id", q.venue_order_id) if q.venue_order_id else ("user_order_id", q.client_order_id)
        return [key, ("quote_currency", quote), ("target_currency", base)]

    def params_open_orders(self, q: OpenOrdersQuery) -> Params:
        if q.symbol is None:
            raise ValueError("Coinone lists open orders of one market at a time")
        quote, base = _pair(q.symbol)
        return [("quote_currency", quote), ("target_currency", base)]

    def params_balance(self, _: BalanceQuery) -> Params:
        return []

    def params_for(self, op: str, args: Any, now_ms: int) -> Params:
        if op == "trade_history":  # find-completed-orders: size, from_ts and to_ts are required
            quote, base = _pair(args.symbol)
            since = args.since // MS if args.since is not None else 0
            return [("quote_currency", quote), ("target_currency", base), ("size", max(1, min(args.limit, 100))),
                    ("from_ts", since), ("to_ts", now_ms)]
        return super().params_for(op, args, now_ms)

    # --- parsing -----------------------------------------------------------------------------------------
    def parse_ticker(self, payload: Any, q: TickerQuery) -> Ticker:
        (t,) = payload["tickers"]
        ts = int(t["timestamp"]) * MS
        bids, asks = t.get("best_bids") or [], t.get("best_asks") or []
        return Ticker(venue="coinone", symbol=q.symbol, ts_event=ts, ts_recv=ts, last=Decimal(t["last"]),
                      open_24h=Decimal(t["first"]), high_24h=Decimal(t["high"]), low_24h=Decimal(t["low"]),
                      volume_24h=Decimal(t["target_volume"]), quote_volume_24h=Decimal(t["quote_volume"]),
                      bid=Decimal(bids[0]["price"]) if bids else None, bid_size=Decimal(bids[0]["qty"]) if bids else None,
                      ask=Decimal(asks[0]["price"]) if asks else None, ask_size=Decimal(asks[0]["qty"]) if asks else None)

    def parse_orderbook(self, payload: Any, q: OrderBookQuery) -> BookSnapshot:
        side = lambda rows: [PriceLevel(Decimal(r["price"]), Decimal(r["qty"])) for r in rows][: q.depth]  # noqa: E731
        ts = int(payload["timestamp"]) * MS
        return BookSnapshot(venue="coinone", symbol=q.symbol, ts_event=ts, ts_recv=ts, sequence=0,
                            venue_sequence=int(payload["id"]) if payload.get("id") else None,
                            bids=side(payload["bids"]), asks=side(payload["asks"]))

    def parse_instruments(self, payload: Any, _: Any) -> dict[str, MarketRules]:
        rules = {}
        for m in payload["markets"]:
            symbol = f"{m['target_currency'].upper()}-{m['quote_currency'].upper()}"
            rules[symbol] = MarketRules(
                symbol=symbol, venue_symbol=f"{m['quote_currency']}/{m['target_currency']}",
                tick_size=Decimal(m["price_unit"]) if m.get("price_unit") else None,
                lot_size=Decimal(m["qty_unit"]) if m.get("qty_unit") else None,
                min_quantity=Decimal(m["min_qty"]) if m.get("min_qty") else None,
                max_quantity=Decimal(m["max_qty"]) if m.get("max_qty") else None,
                min_notional=Decimal(m["min_order_amount"]) if m.get("min_order_amount") else None,
                trading=m.get("trade_status", 1) == 1 and m.get("maintenance_status", 0) == 0,
            )
        return rules

    def _order(self, o: dict[str, Any], client_order_id: str | None) -> OrderInfo:
        filled = Decimal(o.get("executed_qty") or o.get("traded_qty") or "0")
        avg = o.get("avg_price") or o.get("average_executed_price")
        return OrderInfo(
            symbol=f"{o['target_currency'].upper()}-{o['quote_currency'].upper()}",
            client_order_id=client_order_id or o.get("user_order_id"), venue_order_id=o["order_id"],
            side="buy" if o["side"] == "BUY" else "sell", order_type="market" if o.get("type") == "MARKET" else "limit",
            state=STATE.get(o.get("status", "LIVE"), "open"),
            quantity=Decimal(o["original_qty"]) if o.get("original_qty") else None, filled_quantity=filled,
            price=Decimal(o["price"]) if o.get("price") else None,
            average_price=Decimal(avg) if avg and filled else None,
            ts_created=int(o["ordered_at"]) * MS if o.get("ordered_at") else None,
            ts_updated=int(o["updated_at"]) * MS if o.get("updated_at") else None,
        )

    def parse_place_order(self, payload: Any, o: PlaceOrder) -> OrderInfo:
        return OrderInfo(symbol=o.symbol, client_order_id=o.client_order_id, venue_order_id=payload["order_id"],
                         side=o.side, order_type=o.order_type, state="open", quantity=o.quantity,
                         filled_quantity=Decimal(0), price=o.price)

    def parse_cancel_order(self, payload: Any, c: CancelOrder) -> OrderInfo:
        quote, base = _pair(c.symbol)
        return self._order({**payload, "status": "CANCELED", "quote_currency": quote, "target_currency": base},
                           c.client_order_id)

    def parse_order_status(self, payload: Any, q: OrderStatusQuery) -> OrderInfo:
        return self._order(payload["order"], q.client_order_id)

    def parse_open_orders(self, payload: Any, _: Any) -> list[OrderInfo]:
        return [self._order(o, None) for o in payload["active_orders"]]

    def parse_balance(self, payload: Any, _: Any) -> list[Balance]:
        return [Balance(asset=b["currency"].upper(), free=Decimal(b["available"]), locked=Decimal(b["limit"]))
                for b in payload["balances"] if Decimal(b["available"]) or Decimal(b["limit"])]

    def parse_trade_history(self, payload: Any, q: TradeHistoryQuery) -> list[Fill]:
        fills = [Fill(trade_id=t["trade_id"], venue_order_id=t["order_id"], symbol=q.symbol,
                      side="sell" if t["is_ask"] else "buy", price=Decimal(t["price"]), quantity=Decimal(t["qty"]),
                      ts_event=int(t["timestamp"]) * MS, fee=Decimal(t["fee"]) if t.get("fee") else None,
                      fee_asset=t["fee_currency"].upper() if t.get("fee_currency") else None,
                      liquidity="maker" if t.get("is_maker") else "taker")
                 for t in payload["completed_orders"]]
        return sorted(fills, key=lambda f: f.ts_event)

    # --- errors --------------------------------------------------------------------------------------------
    def error(self, status: int, headers: dict[str, str], payload: Any, op: str) -> VenueError | None:
        if not isinstance(payload, dict) or payload.get("result") != "error":
            return None
        # v2.1 and public v2 answer snake_case; the docs' public rate-limit reply is camelCase
        code = str(payload.get("error_code", payload.get("errorCode", "")))
        message = payload.get("error_msg", payload.get("errorMsg", ""))
        text, kw = f"coinone {code}: {message}", {"venue_code": code}
        if status >= 500 and status != 503 and op in NON_IDEMPOTENT:
            # a 500/502/504 on place or cancel may come after the order was taken
            return OutcomeUnknown(text, **kw)
        if code == "4":
            wait = retry_after(headers) or (1.0 if self.endpoints[op].signed else PUBLIC_BLOCK_S)
            return RateLimited(text, retry_after=wait, **kw)
        return ERRORS.get(code, InvalidOrder)(text, **kw)


ADAPTER = CoinoneRest
