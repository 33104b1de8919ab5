"""Bitfinex v2 REST: what differs from the shared adapter.

Sources: docs.bitfinex.com "REST Auth" (bfx-signature = hex HMAC-SHA384(secret, "/api/" +
path + nonce + body), strictly increasing nonce per key), "Submit Order" (EXCHANGE
types, negative amount sells, ``cid``, flag 4096 post-only), "Cancel Order" (``cid`` +
``cid_date``), "Retrieve Orders", "Wallets", "Trades"; public ticker/book arrays.

Client order ids: Bitfinex's ``cid`` is an integer, unique per UTC day. exbus sends the
first 48 bits of the SHA-256 of its client order id (deterministic, so the same id maps
to the same cid). Cancel by cid also needs the order's creation date: exbus sends the
UTC date of the cancel request, so a cancel by client id reaches orders created the same
UTC day. Status by cid exists only among *active* orders; an order that is no longer
active answers OutcomeUnknown, never OrderNotFound, so nothing is re-sent blindly.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from schemas.market import BookSnapshot, PriceLevel, Ticker
from schemas.orders import CancelOrder, PlaceOrder
from schemas.queries import (
    Balance, BalanceQuery, Fill, OpenOrdersQuery, OrderBookQuery, OrderInfo, OrderStatusQuery, TickerQuery,
    TradeHistoryQuery,
)
from schemas.vault import Credentials
from services.venues.base import (
    CancelAccepted, Endpoint, HttpRequest, Params, RateLimit, RestAdapter, decimal_text,
)
from services.venues.bitfinex.ws import exbus_asset, exbus_symbol, trading_symbol
from services.venues.errors import (
    AuthError, InsufficientBalance, InvalidOrder, OrderNotFound, OutcomeUnknown, RateLimited, VenueError,
    VenueUnavailable,
)
from services.venues.rules import MarketRules
from services.venues.signing import hmac_hex

MS = 1_000_000
POST_ONLY = 4096
TYPES = {("limit", "gtc"): "EXCHANGE LIMIT", ("limit", "ioc"): "EXCHANGE IOC", ("limit", "fok"): "EXCHANGE FOK"}


def venue_cid(client_order_id: str) -> int:
    """exbus client order id -> Bitfinex integer cid (48 bits of its SHA-256)."""
    return int(hashlib.sha256(client_order_id.encode()).hexdigest()[:12], 16)


def _state(status: str, filled: Decimal) -> str:
    s = status.upper()
    if s.startswith("EXECUTED"):
        return "filled"
    if s.startswith("CANCELED"):
        return "canceled"
    if s.startswith("PARTIALLY FILLED") or filled > 0:
        return "partially_filled"
    return "open"


class BitfinexRest(RestAdapter):
    venue = "bitfinex"
    base_url = "https://api.bitfinex.com"
    shared_nonce = True
    rate_limits = (
        RateLimit("auth", 90, 60.0, "ip"),  # "between 10 and 90 requests per minute" per endpoint
        RateLimit("public", 30, 60.0, "ip"),
    )
    endpoints = {
        "ticker": Endpoint("GET", "/v2/ticker/{symbol}", False, {"public": 1}),
        "orderbook": Endpoint("GET", "/v2/book/{symbol}/P0", False, {"public": 1}),
        "instruments": Endpoint("GET", "/v2/conf/pub:list:pair:exchange", False, {"public": 1}),
        "place_order": Endpoint("POST", "/v2/auth/w/order/submit", True, {"auth": 1}),
        "cancel_order": Endpoint("POST", "/v2/auth/w/order/cancel", True, {"auth": 1}),
        "order_status": Endpoint("POST", "/v2/auth/r/orders/{symbol}", True, {"auth": 1}),
        "open_orders": Endpoint("POST", "/v2/auth/r/orders", True, {"auth": 1}),
        "balance": Endpoint("POST", "/v2/auth/r/wallets", True, {"auth": 1}),
        "trade_history": Endpoint("POST", "/v2/auth/r/trades/{symbol}/hist", True, {"auth": 1}),
    }

    def path_for(self, op: str, args: Any) -> str:
        path = self.endpoints[op].path
        if "{symbol}" in path:
            path = path.replace("{symbol}", trading_symbol(args.symbol))
        if op == "open_orders" and args.symbol:
            path += "/" + trading_symbol(args.symbol)
        return path

    def sign(self, method: str, path: str, params: Params, creds: Credentials, time_ms: int,
             nonce: str | int | None = None) -> HttpRequest:
        nonce_text = str(nonce if nonce is not None else time_ms * 1000)
        body = json.dumps({k: _json_value(k, v) for k, v in params}, separators=(",", ":"))
        headers = {"bfx-nonce": nonce_text, "bfx-apikey": creds.api_key,
                   "bfx-signature": hmac_hex(creds.secret, f"/api{path}{nonce_text}{body}", "sha384"),
                   "Content-Type": "application/json"}
        return HttpRequest(method, f"{self.url}{path}", headers, body.encode())

    # --- parameters ----------------------------------------------------------------------------
    def params_ticker(self, _: TickerQuery) -> Params:
        return []

    def params_orderbook(self, q: OrderBookQuery) -> Params:
        return [("len", "1" if q.depth == 1 else "25" if q.depth <= 25 else "100")]

    def params_instruments(self, _: Any) -> Params:
        return []

    def params_place_order(self, o: PlaceOrder) -> Params:
        if o.quantity is None:
            raise ValueError("Bitfinex market orders take a base quantity, not quote_quantity")
        kind = "EXCHANGE MARKET" if o.order_type == "market" else TYPES[(o.order_type, o.time_in_force)]
        amount = o.quantity if o.side == "buy" else -o.quantity
        p: Params = [("type", kind), ("symbol", trading_symbol(o.symbol)), ("amount", decimal_text(amount))]
        if o.price is not None:
            p.append(("price", decimal_text(o.price)))
        p.append(("cid", str(venue_cid(o.client_order_id))))
        if o.post_only:
            p.append(("flags", str(POST_ONLY)))
        return p

    def params_for(self, op: str, args: Any, now_ms: int) -> Params:
        if op == "cancel_order":  # cid_date: the UTC day of the request (see the module docstring)
            day = datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")
            return [("cid", str(venue_cid(args.client_order_id))), ("cid_date", day)]
        return super().params_for(op, args, now_ms)

    def params_order_status(self, _: OrderStatusQuery) -> Params:
        return []

    def params_open_orders(self, _: OpenOrdersQuery) -> Params:
        return []

    def params_balance(self, _: BalanceQuery) -> Params:
        return []

    def params_trade_history(self, q: TradeHistoryQuery) -> Params:
        p: Params = [("limit", str(min(q.limit, 2500)))]
        return [*p, ("start", str(q.since // MS))] if q.since is not None else p

    # --- parsing --------------------------------------------------------------------------------------
    def parse_ticker(self, payload: Any, q: TickerQuery) -> Ticker:
        bid, bid_size, ask, ask_size, _chg, _rel, last, volume, high, low = payload[:10]
        return Ticker(venue="bitfinex", symbol=q.symbol, ts_event=0, ts_recv=0, bid=bid, bid_size=bid_size, ask=ask,
                      ask_size=ask_size, last=last, volume_24h=volume, high_24h=high, low_24h=low)

    def parse_orderbook(self, payload: Any, q: OrderBookQuery) -> BookSnapshot:
        bids = [PriceLevel(Decimal(p), Decimal(a)) for p, _n, a in payload if Decimal(a) > 0]
        asks = [PriceLevel(Decimal(p), -Decimal(a)) for p, _n, a in payload if Decimal(a) < 0]
        return BookSnapshot(venue="bitfinex", symbol=q.symbol, ts_event=0, ts_recv=0, sequence=0,
                            bids=bids[: q.depth], asks=asks[: q.depth])

    def parse_instruments(self, payload: Any, _: Any) -> dict[str, MarketRules]:
        """The pair list carries no sizes: Bitfinex prices have 5 significant digits and
        minimum sizes per pair come from pub:info:pair; exbus leaves those checks to the venue."""
        rules = {}
        for pair in payload[0]:
            symbol = exbus_symbol("t" + pair)
            if symbol is not None:
                rules[symbol] = MarketRules(symbol=symbol, venue_symbol="t" + pair)
        return rules

    def _order(self, row: list[Any], client_order_id: str | None) -> OrderInfo:
        oid, _gid, _cid, sym, created, updated, amount, amount_orig, kind = row[:9]
        status, price, avg = row[13], row[16], row[17]
        orig = Decimal(str(amount_orig))
        filled = abs(orig) - abs(Decimal(str(amount)))
        return OrderInfo(
            symbol=exbus_symbol(sym) or sym, client_order_id=client_order_id, venue_order_id=str(oid),
            side="buy" if orig > 0 else "sell", order_type="market" if "MARKET" in str(kind) else "limit",
            state=_state(str(status or "ACTIVE"), filled), quantity=abs(orig), filled_quantity=filled,
            price=Decimal(str(price)) if price else None, average_price=Decimal(str(avg)) if avg else None,
            ts_created=int(created) * MS if created else None, ts_updated=int(updated) * MS if updated else None,
        )

    def parse_place_order(self, payload: Any, o: PlaceOrder) -> OrderInfo:
        return self._order(payload[4][0], o.client_order_id)

    def parse_cancel_order(self, payload: Any, c: CancelOrder) -> CancelAccepted:
        return CancelAccepted(client_order_id=c.client_order_id, venue_order_id=str(payload[4][0]))

    def parse_order_status(self, payload: Any, q: OrderStatusQuery) -> OrderInfo | VenueError:
        cid = venue_cid(q.client_order_id)
        for row in payload:
            if row[2] == cid:
                return self._order(row, q.client_order_id)
        return OutcomeUnknown(f"bitfinex: {q.client_order_id} is not among active orders; inactive orders cannot be "
                              "found by cid in one request", venue="bitfinex", venue_code="not_active")

    def parse_open_orders(self, payload: Any, _: Any) -> list[OrderInfo]:
        return [self._order(row, None) for row in payload]

    def parse_balance(self, payload: Any, _: Any) -> list[Balance]:
        out = []
        for wallet, currency, balance, _unsettled, available, *_ in payload:
            if wallet != "exchange" or not balance:
                continue
            total = Decimal(str(balance))
            free = Decimal(str(available)) if available is not None else total
            out.append(Balance(asset=exbus_asset(currency), free=free, locked=total - free))
        return out

    def parse_trade_history(self, payload: Any, q: TradeHistoryQuery) -> list[Fill]:
        fills = []
        for tid, _sym, mts, oid, amount, price, _otype, _oprice, maker, fee, fee_ccy, *_ in payload:
            qty = Decimal(str(amount))
            fills.append(Fill(trade_id=str(tid), venue_order_id=str(oid), symbol=q.symbol, side="buy" if qty > 0 else "sell",
                              price=Decimal(str(price)), quantity=abs(qty), ts_event=int(mts) * MS,
                              fee=-Decimal(str(fee)) if fee is not None else None, fee_asset=fee_ccy,
                              liquidity="maker" if maker == 1 else "taker"))
        return sorted(fills, key=lambda f: f.ts_event)

    # --- errors -------------------------------------------------------------------------------------------
    def error(self, status: int, headers: dict[str, str], payload: Any, op: str) -> VenueError | None:
        if isinstance(payload, list) and payload[:1] == ["error"]:
            code, text = payload[1], str(payload[2])
        elif isinstance(payload, list) and len(payload) > 6 and payload[6] == "ERROR":
            code, text = payload[5], str(payload[7])
        elif isinstance(payload, dict) and "error" in payload:
            code, text = payload.get("code"), str(payload["error"])
        else:
            return None
        low, kw = text.lower(), {"venue_code": code}
        message = f"bitfinex {code}: {text}"
        if code == 11010 or "ratelimit" in low or status == 429:
            return RateLimited(message, **kw)
        if code == 10114 or "nonce" in low or "apikey" in low or code in (10100, 10111, 10112):
            return AuthError(message, **kw)
        if "not enough" in low and "balance" in low:
            return InsufficientBalance(message, **kw)
        if "not found" in low:
            return OrderNotFound(message, **kw)
        if status >= 500 or code in (20060, 11000):
            return VenueUnavailable(message, **kw)
        return InvalidOrder(message, **kw)


INTEGER_FIELDS = frozenset({"cid", "flags", "limit", "start", "end", "id", "gid"})


def _json_value(key: str, v: str) -> Any:
    """Bitfinex wants integers for ids, flags and limits; strings for amounts and prices."""
    return int(v) if key in INTEGER_FIELDS else v


ADAPTER = BitfinexRest
