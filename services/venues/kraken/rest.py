"""Kraken spot REST: what differs from the shared adapter.

Sources: docs.kraken.com spot-rest-auth (API-Sign = base64(HMAC-SHA512(base64decode(secret),
uri_path + SHA256(nonce + postdata))), form-encoded POST bodies with a strictly increasing
``nonce`` per key), AddOrder / CancelOrder / QueryOrders / OpenOrders / ClosedOrders /
BalanceEx / TradesHistory / GetWebSocketsToken (``{"result": {"token", "expires": 900}}``,
the private WebSocket's token: services.venues.kraken.private), "Spot Client Order
Identifiers" (cl_ord_id: a UUID, 32 hex digits, or free text of at most 18 characters;
unique among open orders), "Spot REST rate limits", error strings as mapped by ccxt
4.5.90. Errors come back with HTTP 200 in the ``error`` array; Kraken sends no Retry-After.

Client order ids: ``cl_ord_id`` on AddOrder and CancelOrder. An exbus id Kraken would refuse
(longer than 18 characters and not a UUID) is sent as the UUID5 of it (:func:`cl_ord_id`),
and replies naming that UUID are read back as the exbus id where the query names it.

Order status: by ``txid`` (QueryOrders, any state) when exbus recorded the venue order id.
Without it (the place reply was lost) one request cannot cover every state: QueryOrders
needs a txid, and the ``cl_ord_id`` filter of OpenOrders sees open orders only, that of
ClosedOrders closed ones only. So order_status asks OpenOrders, and when the order is not
open answers a FollowUp to ``closed_orders``, which the caller sends next. An order never
goes from closed back to open, so "not open, then not closed" proves it did not exist when
the first look was made: only then is the answer OrderNotFound. OpenOrders listings show
the UUID5 of a long id, as Kraken stores it.
The nonce must be shared by every replica using the key (executors pass it in).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
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
    NON_IDEMPOTENT, CancelAccepted, Endpoint, FollowUp, HttpRequest, Params, RateLimit, RestAdapter, decimal_text,
    percent_encode, retry_after,
)
from services.venues.errors import (
    AuthError, DuplicateOrder, InsufficientBalance, InvalidOrder, OrderNotFound, OutcomeUnknown, RateLimited, VenueError,
    VenueUnavailable,
)
from services.venues.kraken.ws import ASSET_ALIASES
from services.venues.rules import MarketRules

NS = 1_000_000_000
EXBUS_ASSET = {v: k for k, v in ASSET_ALIASES.items()}
STATE = {"pending": "open", "open": "open", "closed": "filled", "canceled": "canceled", "expired": "expired"}

ERRORS: list[tuple[str, type[VenueError]]] = [
    ("EOrder:Insufficient funds", InsufficientBalance),
    ("EOrder:Unknown order", OrderNotFound),
    ("EOrder:Duplicate", DuplicateOrder),
    ("EAPI:Rate limit exceeded", RateLimited),
    ("EOrder:Rate limit exceeded", RateLimited),
    ("EGeneral:Too many requests", RateLimited),
    ("EGeneral:Temporary lockout", RateLimited),
    ("EService: Throttled", RateLimited),
    ("EAPI:Invalid key", AuthError),
    ("EAPI:Invalid signature", AuthError),
    ("EAPI:Invalid nonce", AuthError),
    ("EGeneral:Permission denied", AuthError),
    ("EService:Unavailable", VenueUnavailable),
    ("EService:Busy", VenueUnavailable),
    ("EService:Market in cancel_only mode", VenueUnavailable),
    ("EService:Market in post_only mode", VenueUnavailable),
    ("EGeneral:Internal error", VenueUnavailable),
]


RETRY_AFTER_S = {"EAPI:Rate limit exceeded": 45.0, "EOrder:Rate limit exceeded": 60.0}
"""Seconds to wait when Kraken (which sends no Retry-After) says a limit is exceeded: the
Starter REST counter (max 15, -0.33/s) drains in 45 s; the trading-engine threshold
(Starter 60, -1/s) in 60 s (docs.kraken.com spot-rest-ratelimits, spot-ratelimits)."""
_CL_ORD_ID = re.compile(r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32}|[ -~]{1,18})$")
_EXBUS_IDS = uuid.UUID("0e7b0c5e-6b1a-4c52-9a57-6b7261a6b3e1")


class WsToken(msgspec.Struct, frozen=True):
    """GetWebSocketsToken's answer: the token the private WebSocket subscribes with, valid
    ``expires_s`` (900) to subscribe, then for as long as that subscription lasts. A
    credential: its repr does not show it."""

    token: str
    expires_s: int = 900

    def __repr__(self) -> str:
        return f"WsToken(expires_s={self.expires_s})"


def cl_ord_id(client_order_id: str) -> str:
    """The cl_ord_id Kraken accepts for an exbus client order id: itself when it is a UUID
    or at most 18 characters, else its UUID5 (deterministic: every replica agrees)."""
    if _CL_ORD_ID.match(client_order_id):
        return client_order_id
    return str(uuid.uuid5(_EXBUS_IDS, client_order_id))


def kraken_asset(asset: str) -> str:
    """exbus asset -> Kraken's (``BTC`` -> ``XBT``)."""
    return ASSET_ALIASES.get(asset, asset)


def exbus_asset(asset: str) -> str:
    """Kraken asset -> exbus (``XXBT``/``XBT`` -> ``BTC``, ``ZUSD`` -> ``USD``)."""
    a = asset.upper().split(".")[0]
    if len(a) == 4 and a[0] in "XZ" and a not in ("XTZ",):
        a = a[1:]
    return EXBUS_ASSET.get(a, a)


def pair_names(symbol: str) -> set[str]:
    """Names Kraken may give one pair in replies: altname (XBTUSD), legacy (XXBTZUSD), wsname."""
    base, quote = (kraken_asset(x) for x in symbols.split(symbol))
    legacy = ("X" + base if len(base) == 3 else base) + (("Z" if quote in ("USD", "EUR", "GBP", "JPY", "CAD", "CHF", "AUD") else "X") + quote if len(quote) == 3 else quote)
    return {base + quote, legacy, f"{base}/{quote}"}


class KrakenRest(RestAdapter):
    venue = "kraken"
    base_url = "https://api.kraken.com"
    shared_nonce = True
    rate_limits = (
        RateLimit("counter", 15, 45.0, "api_key"),  # Starter tier: max 15, decays 0.33/s
        RateLimit("public", 1, 1.0, "ip"),
    )
    endpoints = {
        "ticker": Endpoint("GET", "/0/public/Ticker", False, {"public": 1}),
        "orderbook": Endpoint("GET", "/0/public/Depth", False, {"public": 1}),
        "instruments": Endpoint("GET", "/0/public/AssetPairs", False, {"public": 1}),
        "place_order": Endpoint("POST", "/0/private/AddOrder", True, {}),  # trading engine limit, per pair
        "cancel_order": Endpoint("POST", "/0/private/CancelOrder", True, {}),
        "order_status": Endpoint("POST", "/0/private/QueryOrders", True, {"counter": 1}),  # or OpenOrders, see above
        "closed_orders": Endpoint("POST", "/0/private/ClosedOrders", True, {"counter": 1}),  # order_status' follow-up
        "open_orders": Endpoint("POST", "/0/private/OpenOrders", True, {"counter": 1}),
        "balance": Endpoint("POST", "/0/private/BalanceEx", True, {"counter": 1}),
        "trade_history": Endpoint("POST", "/0/private/TradesHistory", True, {"counter": 2}),
        "ws_token": Endpoint("POST", "/0/private/GetWebSocketsToken", True, {"counter": 1}),  # private stream token
    }

    def path_for(self, op: str, args: Any) -> str:
        if op == "order_status" and not args.venue_order_id:
            return "/0/private/OpenOrders"
        return self.endpoints[op].path

    def sign(self, method: str, path: str, params: Params, creds: Credentials, time_ms: int,
             nonce: str | int | None = None) -> HttpRequest:
        if not any(k == "nonce" for k, _ in params):
            params = [("nonce", str(nonce if nonce is not None else time_ms * 1000)), *params]
        nonce_text = next(v for k, v in params if k == "nonce")
        body = percent_encode(params)
        digest = hashlib.sha256((nonce_text + body).encode()).digest()
        mac = hmac.new(base64.b64decode(creds.secret), path.encode() + digest, hashlib.sha512)
        headers = {"API-Key": creds.api_key, "API-Sign": base64.b64encode(mac.digest()).decode(),
                   "Content-Type": "application/x-www-form-urlencoded"}
        if method == "GET":
            return HttpRequest(method, f"{self.url}{path}?{body}", headers)
        return HttpRequest(method, f"{self.url}{path}", headers, body.encode())

    def pair(self, symbol: str) -> str:
        base, quote = symbols.split(symbol)
        return kraken_asset(base) + kraken_asset(quote)

    # --- parameters ---------------------------------------------------------------------
    def params_ticker(self, q: TickerQuery) -> Params:
        return [("pair", self.pair(q.symbol))]

    def params_orderbook(self, q: OrderBookQuery) -> Params:
        return [("pair", self.pair(q.symbol)), ("count", str(min(q.depth, 500)))]

    def params_instruments(self, _: Any) -> Params:
        return []

    def params_place_order(self, o: PlaceOrder) -> Params:
        if o.quantity is None:
            raise ValueError("Kraken market orders take a base quantity, not quote_quantity")
        if o.time_in_force == "fok":
            raise ValueError("Kraken spot has no fill-or-kill time in force")
        p: Params = [("ordertype", o.order_type), ("type", o.side), ("volume", decimal_text(o.quantity)),
                     ("pair", self.pair(o.symbol))]
        if o.price is not None:
            p.append(("price", decimal_text(o.price)))
        if o.order_type == "limit":
            p.append(("timeinforce", o.time_in_force.upper()))
        if o.post_only:
            p.append(("oflags", "post"))
        p.append(("cl_ord_id", cl_ord_id(o.client_order_id)))
        return p

    def params_cancel_order(self, c: CancelOrder) -> Params:
        return [("cl_ord_id", cl_ord_id(c.client_order_id))]

    def params_order_status(self, q: OrderStatusQuery) -> Params:
        if q.venue_order_id:
            return [("txid", q.venue_order_id)]
        return [("cl_ord_id", cl_ord_id(q.client_order_id))]

    def params_closed_orders(self, q: OrderStatusQuery) -> Params:
        return [("cl_ord_id", cl_ord_id(q.client_order_id))]

    def params_open_orders(self, _: OpenOrdersQuery) -> Params:
        return []

    def params_balance(self, _: BalanceQuery) -> Params:
        return []

    def params_trade_history(self, q: TradeHistoryQuery) -> Params:
        return [("start", str(q.since // NS))] if q.since is not None else []

    def params_ws_token(self, _: Any) -> Params:
        return []

    # --- parsing ------------------------------------------------------------------------------
    @staticmethod
    def _only(payload: Any) -> Any:
        (value,) = payload["result"].values()
        return value

    def parse_ticker(self, payload: Any, q: TickerQuery) -> Ticker:
        t = self._only(payload)
        d = Decimal
        return Ticker(venue="kraken", symbol=q.symbol, ts_event=0, ts_recv=0, ask=d(t["a"][0]), ask_size=d(t["a"][2]),
                      bid=d(t["b"][0]), bid_size=d(t["b"][2]), last=d(t["c"][0]), open_24h=d(t["o"]),
                      high_24h=d(t["h"][1]), low_24h=d(t["l"][1]), volume_24h=d(t["v"][1]))

    def parse_orderbook(self, payload: Any, q: OrderBookQuery) -> BookSnapshot:
        b = self._only(payload)
        side = lambda rows: [PriceLevel(Decimal(p), Decimal(v)) for p, v, *_ in rows][: q.depth]  # noqa: E731
        return BookSnapshot(venue="kraken", symbol=q.symbol, ts_event=0, ts_recv=0, sequence=0,
                            bids=side(b["bids"]), asks=side(b["asks"]))

    def parse_instruments(self, payload: Any, _: Any) -> dict[str, MarketRules]:
        rules = {}
        for name, p in payload["result"].items():
            if ".d" in name:  # dark-pool pairs
                continue
            symbol = f"{exbus_asset(p['base'])}-{exbus_asset(p['quote'])}"
            tick = Decimal(p["tick_size"]) if p.get("tick_size") else Decimal(1).scaleb(-int(p["pair_decimals"]))
            rules[symbol] = MarketRules(
                symbol=symbol, venue_symbol=p["altname"], tick_size=tick,
                lot_size=Decimal(1).scaleb(-int(p["lot_decimals"])),
                min_quantity=Decimal(p["ordermin"]) if p.get("ordermin") else None,
                min_notional=Decimal(p["costmin"]) if p.get("costmin") else None,
                trading=p.get("status", "online") == "online",
            )
        return rules

    def _order(self, txid: str, o: dict[str, Any], symbol: str | None) -> OrderInfo:
        descr = o.get("descr", {})
        vol, filled = Decimal(o["vol"]), Decimal(o.get("vol_exec", "0"))
        state = STATE.get(o.get("status", "open"), "open")
        if state == "open" and filled > 0:
            state = "partially_filled"
        price = Decimal(descr.get("price", "0") or "0")
        avg = Decimal(o.get("price", "0") or "0")
        return OrderInfo(
            symbol=symbol or descr.get("pair", ""), client_order_id=o.get("cl_ord_id"), venue_order_id=txid,
            side="buy" if descr.get("type") == "buy" else "sell",
            order_type="market" if descr.get("ordertype") == "market" else "limit", state=state,
            quantity=vol, filled_quantity=filled, price=price or None, average_price=avg or None,
            ts_created=int(Decimal(str(o["opentm"])) * NS) if o.get("opentm") else None,
        )

    def parse_place_order(self, payload: Any, o: PlaceOrder) -> OrderInfo:
        (txid,) = payload["result"]["txid"]
        return OrderInfo(symbol=o.symbol, client_order_id=o.client_order_id, venue_order_id=txid, side=o.side,
                         order_type=o.order_type, state="open", quantity=o.quantity, filled_quantity=Decimal(0),
                         price=o.price)

    def parse_cancel_order(self, payload: Any, c: CancelOrder) -> CancelAccepted | VenueError:
        if int(payload["result"].get("count", 0)) == 0:
            return OrderNotFound(f"kraken: no open order with cl_ord_id {c.client_order_id}", venue="kraken")
        return CancelAccepted(client_order_id=c.client_order_id)

    def parse_order_status(self, payload: Any, q: OrderStatusQuery) -> OrderInfo | FollowUp | VenueError:
        result = payload["result"]
        if "open" in result:  # by cl_ord_id among the open orders; not open: the closed ones next
            return self._by_client_id(result["open"], q) or FollowUp("closed_orders", q)
        o = result.get(q.venue_order_id) if q.venue_order_id else None
        if o is None:
            return OrderNotFound(f"kraken: no order {q.venue_order_id}", venue="kraken")
        return msgspec.structs.replace(self._order(q.venue_order_id, o, q.symbol), client_order_id=q.client_order_id)

    def parse_closed_orders(self, payload: Any, q: OrderStatusQuery) -> OrderInfo | VenueError:
        return self._by_client_id(payload["result"].get("closed", {}), q) or OrderNotFound(
            f"kraken: no order with cl_ord_id {cl_ord_id(q.client_order_id)}: not open, then not closed",
            venue="kraken", venue_code="not_found")

    def _by_client_id(self, orders: dict[str, Any], q: OrderStatusQuery) -> OrderInfo | None:
        wanted = cl_ord_id(q.client_order_id)
        for txid, o in orders.items():
            if o.get("cl_ord_id") == wanted:
                return msgspec.structs.replace(self._order(txid, o, q.symbol), client_order_id=q.client_order_id)
        return None

    def venue_client_order_id(self, client_order_id: str) -> str:
        return cl_ord_id(client_order_id)

    def parse_open_orders(self, payload: Any, q: OpenOrdersQuery) -> list[OrderInfo]:
        names = pair_names(q.symbol) if q.symbol else None
        out = []
        for txid, o in payload["result"].get("open", {}).items():
            pair = o.get("descr", {}).get("pair", "")
            if names is None or pair in names:
                out.append(self._order(txid, o, q.symbol))
        return out

    def parse_balance(self, payload: Any, _: Any) -> list[Balance]:
        out = []
        for asset, b in payload["result"].items():
            total, hold = Decimal(b.get("balance", "0")), Decimal(b.get("hold_trade", "0"))
            if total or hold:
                out.append(Balance(asset=exbus_asset(asset), free=total - hold, locked=hold))
        return out

    def parse_trade_history(self, payload: Any, q: TradeHistoryQuery) -> list[Fill]:
        names = pair_names(q.symbol)
        fills = []
        for txid, t in payload["result"].get("trades", {}).items():
            if t.get("pair") not in names:
                continue
            fills.append(Fill(trade_id=txid, venue_order_id=t["ordertxid"], symbol=q.symbol,
                              side="buy" if t["type"] == "buy" else "sell", price=Decimal(t["price"]),
                              quantity=Decimal(t["vol"]), ts_event=int(Decimal(str(t["time"])) * NS),
                              fee=Decimal(t["fee"]), fee_asset=symbols.split(q.symbol)[1],
                              liquidity=("maker" if t.get("maker") else "taker") if "maker" in t else None))
        return sorted(fills, key=lambda f: f.ts_event)[-q.limit:]

    def parse_ws_token(self, payload: Any, _: Any) -> WsToken:
        result = payload["result"]
        token = result["token"]
        if not isinstance(token, str) or not token:
            raise ValueError("GetWebSocketsToken answered no token")
        return WsToken(token=token, expires_s=int(result.get("expires", 900)))

    # --- errors ----------------------------------------------------------------------------------
    def error(self, status: int, headers: dict[str, str], payload: Any, op: str) -> VenueError | None:
        errors = payload.get("error") if isinstance(payload, dict) else None
        if status >= 500 and op in NON_IDEMPOTENT:
            return None  # the order may have been placed whatever the body says: OutcomeUnknown
        if not errors:
            return None
        text = "; ".join(map(str, errors))
        if op in ("order_status", "cancel_order") and any(str(e).startswith("EOrder:Invalid order") for e in errors):
            return OrderNotFound(f"kraken: {text}", venue_code="EOrder:Invalid order")
        for prefix, cls in ERRORS:
            if any(str(e).startswith(prefix) for e in errors):
                if cls is RateLimited:
                    wait = retry_after(headers) or RETRY_AFTER_S.get(prefix)
                    return RateLimited(f"kraken: {text}", retry_after=wait, venue_code=prefix,
                                       banned=prefix == "EGeneral:Temporary lockout")
                return cls(f"kraken: {text}", venue_code=prefix)
        return InvalidOrder(f"kraken: {text}", venue_code=str(errors[0]))


ADAPTER = KrakenRest
