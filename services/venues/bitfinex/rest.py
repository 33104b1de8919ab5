"""Bitfinex v2 REST: what differs from the shared adapter.

Sources: docs.bitfinex.com "REST Auth" (bfx-signature = hex HMAC-SHA384(secret, "/api/" +
path + nonce + body), strictly increasing nonce per key), "Submit Order" (EXCHANGE
types, negative amount sells, ``cid``, flag 4096 post-only), "Cancel Order" (``cid`` +
``cid_date``), "Retrieve Orders", "Wallets", "Trades"; public ticker/book arrays.

Client order ids: Bitfinex's ``cid`` is an int45, "unique in the day (UTC) (not
enforced)". exbus sends the first 45 bits of the SHA-256 of its client order id
(deterministic, so the same id maps to the same cid). A cancel goes by the venue order id
when exbus has it, else by cid + ``cid_date``: the UTC date of the cancel request, so it
reaches orders created the same UTC day.

Status by cid: Bitfinex has no lookup by cid, and no endpoint holding both active and
closed orders ("Retrieve Orders" is active only, "Orders History" closed only). So
order_status reads the symbol's active orders first; when the order is not among them the
answer is a FollowUp to ``order_history`` (the symbol's closed orders, by ``id`` when exbus
knows it), which the caller sends next. Not in history either is OrderNotFound: an order
is reported missing only after both lists were read in that order, and nothing is re-sent
blindly.

Errors: Bitfinex answers every refusal ``["error", code, text]`` with HTTP 500, so the
status alone says nothing; codes and texts are mapped as ccxt's bitfinex does. Rate limits
(429, 11010) carry no Retry-After: the docs block the IP for 60 s on that endpoint.
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
    NON_IDEMPOTENT, CancelAccepted, Endpoint, FollowUp, HttpRequest, Params, RateLimit, RestAdapter, decimal_text, retry_after,
)
from services.venues.bitfinex.ws import exbus_asset, exbus_symbol, trading_symbol
from services.venues.errors import (
    AuthError, InsufficientBalance, InvalidOrder, OrderNotFound, OutcomeUnknown, RateLimited, VenueError,
    VenueUnavailable,
)
from services.venues.rules import MarketRules
from services.venues.signing import hmac_hex

MS = 1_000_000
E8 = Decimal("0.00000001")
POST_ONLY = 4096
TYPES = {("limit", "gtc"): "EXCHANGE LIMIT", ("limit", "ioc"): "EXCHANGE IOC", ("limit", "fok"): "EXCHANGE FOK"}


CID_BITS = 45  # "cid: int45"
RATE_LIMIT_BLOCK_S = 60.0  # docs "Requirements and Limitations": the IP is blocked for 60 s


def venue_cid(client_order_id: str) -> int:
    """exbus client order id -> Bitfinex integer cid (45 bits of its SHA-256)."""
    return int(hashlib.sha256(client_order_id.encode()).hexdigest()[:12], 16) >> (48 - CID_BITS)


def _state(status: str, filled: Decimal) -> str:
    s = status.upper()
    if s.startswith("EXECUTED"):
        return "filled"
    if "CANCELED" in s.split(" WAS:")[0]:  # CANCELED, POSTONLY CANCELED, "... was: PARTIALLY FILLED"
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
        "order_history": Endpoint("POST", "/v2/auth/r/orders/{symbol}/hist", True, {"auth": 1}),  # order_status' follow-up
        "open_orders": Endpoint("POST", "/v2/auth/r/orders", True, {"auth": 1}),
        "balance": Endpoint("POST", "/v2/auth/r/wallets", True, {"auth": 1}),
        "trade_history": Endpoint("POST", "/v2/auth/r/trades/{symbol}/hist", True, {"auth": 1}),
    }

    def venue_client_order_id(self, client_order_id: str) -> str:
        return str(venue_cid(client_order_id))

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
        if op == "cancel_order":
            if (args.venue_order_id or "").isdigit():  # Bitfinex order ids are integers
                return [("id", args.venue_order_id)]
            # cid_date: the UTC day of the request (see the module docstring)
            day = datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")
            return [("cid", str(venue_cid(args.client_order_id))), ("cid_date", day)]
        return super().params_for(op, args, now_ms)

    def params_order_status(self, q: OrderStatusQuery) -> Params:
        return []

    def params_order_history(self, q: OrderStatusQuery) -> Params:
        return [("id", [int(q.venue_order_id)])] if (q.venue_order_id or "").isdigit() else [("limit", "2500")]

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
        """The pair list carries no sizes. Every pair takes amounts and prices of at most 8
        decimals (docs "Price Precision"): that grid is checked before sending, as a price
        the venue would truncate is not the order asked for. The 5 significant digits of a
        price (MarketRules has no such rule) and the minimum sizes of pub:info:pair are
        left to the venue."""
        rules = {}
        for pair in payload[0]:
            symbol = exbus_symbol("t" + pair)
            if symbol is not None:
                rules[symbol] = MarketRules(symbol=symbol, venue_symbol="t" + pair, tick_size=E8, lot_size=E8)
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

    def _find(self, payload: Any, q: OrderStatusQuery) -> OrderInfo | None:
        cid = venue_cid(q.client_order_id)
        for row in payload:
            if row[2] == cid and (not (q.venue_order_id or "").isdigit() or str(row[0]) == q.venue_order_id):
                return self._order(row, q.client_order_id)
        return None

    def parse_order_status(self, payload: Any, q: OrderStatusQuery) -> OrderInfo | FollowUp:
        return self._find(payload, q) or FollowUp("order_history", q)

    def parse_order_history(self, payload: Any, q: OrderStatusQuery) -> OrderInfo | VenueError:
        return self._find(payload, q) or OrderNotFound(
            f"bitfinex: {q.client_order_id} is neither among the active orders nor in the order history",
            venue="bitfinex", venue_code="not_found")

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
                              fee=-Decimal(str(fee)) if fee is not None else None,
                              fee_asset=exbus_asset(fee_ccy) if fee_ccy else None,
                              liquidity="maker" if maker == 1 else "taker"))
        return sorted(fills, key=lambda f: f.ts_event)

    # --- errors -------------------------------------------------------------------------------------------
    def error(self, status: int, headers: dict[str, str], payload: Any, op: str) -> VenueError | None:
        if isinstance(payload, list) and payload[:1] == ["error"]:
            code, text = payload[1], str(payload[2])
        elif isinstance(payload, list) and len(payload) > 6 and payload[6] == "ERROR":
            code, text = payload[5] if payload[5] is not None else 10001, str(payload[7])  # a refused request
        elif isinstance(payload, dict) and "error" in payload:
            code, text = payload.get("code"), str(payload["error"])
        else:
            return None
        low, kw = text.lower(), {"venue_code": code}
        message = f"bitfinex {code}: {text}"
        if code == 11010 or "ratelimit" in low or "rate_limit" in low or status == 429:
            after = retry_after(headers)
            return RateLimited(message, retry_after=RATE_LIMIT_BLOCK_S if after is None else after, **kw)
        if code in (10100, 10111, 10112, 10113, 10114) or "nonce" in low or "apikey" in low:
            return AuthError(message, **kw)
        if ("not enough" in low and "balance" in low) or "available balance is only" in low:
            return InsufficientBalance(message, **kw)
        if "not found" in low:
            return OrderNotFound(message, **kw)
        if code in (20060, 11000) or "temporarily_unavailable" in low:  # maintenance, not ready: not processed
            return VenueUnavailable(message, **kw)
        if code == 10000 or not isinstance(code, int):  # unknown error: processed or not, nobody says
            if op in NON_IDEMPOTENT:
                return OutcomeUnknown(message, **kw)
            return VenueUnavailable(message, **kw)
        return InvalidOrder(message, **kw)


INTEGER_FIELDS = frozenset({"cid", "flags", "limit", "start", "end", "id", "gid"})


def _json_value(key: str, v: str) -> Any:
    """Bitfinex wants integers for ids, flags and limits; strings for amounts and prices."""
    return int(v) if key in INTEGER_FIELDS and not isinstance(v, list) else v


ADAPTER = BitfinexRest
