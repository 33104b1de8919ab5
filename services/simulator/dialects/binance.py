"""Binance spot API v3 as the simulator speaks it, on the simulator core.

REST under ``/api/v3`` (paths, parameters, JSON shapes, error codes and weights from
binance/binance-spot-api-docs rest-api.md and errors.md); market streams and replay are in
:mod:`services.simulator.dialects.binance_streams`, the user data stream on the WebSocket
API in :mod:`services.simulator.dialects.binance_private`.

Signed requests are verified from the docs' definition, not with exbus's own signing
code: HMAC-SHA256 (secretKey) over ``totalParams`` = query string concatenated with the
request body, lowercase hex in ``signature``; ``X-MBX-APIKEY``; ``timestamp`` with
``recvWindow`` (default 5000, max 60000): accepted if
``timestamp < serverTime + 1000 and serverTime - timestamp <= recvWindow``.

The listenKey endpoints (``POST/PUT/DELETE /api/v3/userDataStream``) were retired on
2026-02-20 (CHANGELOG.md 2026-01-21); since then Binance answers them ``410 Gone`` with its
front end's HTML page (no JSON error: reported by client libraries, e.g.
oliver-zehentleitner/unicorn-binance-websocket-api#399, a 136-byte body), and so does the
simulator.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl

import msgspec
from aiohttp import web

from services.simulator.clock import Clock
from services.simulator.config import DEFAULT_RECORDED_DIR, Account, BanPolicy, BinanceSettings, VenueSettings
from services.simulator.core import MarketSpec, Refusal
from services.simulator.dialect import Dialect, Limit, Req, Route
from services.simulator.dialects.binance_private import BinancePrivate
from services.simulator.dialects.binance_streams import STATUS, BinanceStreams, TickerStats, fmt
from services.simulator.ledger import Ledger
from services.simulator.matching import QUANTUM, ZERO, Order
from services.simulator.recorded import load_binance
from services.simulator.venue import parse_decimal

DECIMAL_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
CLIENT_ORDER_ID = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
RETIRED_PATHS = {"/api/v3/userDataStream": ("POST", "PUT", "DELETE")}
"""Endpoints Binance retired (CHANGELOG.md 2026-01-21: the listenKey, since 2026-02-20)."""
GONE_PAGE = ("<html>\r\n<head><title>410 Gone</title></head>\r\n<body>\r\n<center><h1>410 Gone</h1></center>\r\n"
             "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
"""The 410 page of Binance's front end (nginx's default page, 136 bytes as reported)."""


class BinanceError(Refusal):
    """An error answer: HTTP status and Binance's {"code": ..., "msg": ...}."""

    def __init__(self, status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> None:
        super().__init__("bad_request", msg)
        self.status, self.code, self.msg, self.headers = status, code, msg, headers or {}


def mandatory(name: str) -> BinanceError:
    return BinanceError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def not_required(name: str) -> BinanceError:
    return BinanceError(400, -1106, f"Parameter '{name}' sent when not required.")


def illegal(name: str, legal: str = DECIMAL_RANGE) -> BinanceError:
    return BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")


def unknown_order() -> BinanceError:
    return BinanceError(400, -2011, "Unknown order sent.")


def no_such_order() -> BinanceError:
    return BinanceError(400, -2013, "Order does not exist.")


def params_of(req: Req) -> dict[str, str]:
    """Query and body parameters (the query string wins)."""
    if not req.params:
        params = dict(parse_qsl(req.text, keep_blank_values=True))
        params.update(parse_qsl(req.raw_query, keep_blank_values=True))
        req.params = params
    return req.params


# -- weights (rest-api.md "Weight" of each endpoint) --------------------------------------------


def _depth_weight(req: Req) -> int:
    text = params_of(req).get("limit") or "100"
    limit = int(text) if text.isdigit() else 100
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def _symbols_weight(one: int, many: Callable[[int], int], none: int) -> Callable[[Req], int]:
    def weight(req: Req) -> int:
        p = params_of(req)
        return one if p.get("symbol") else many(p["symbols"].count(",") + 1) if p.get("symbols") else none
    return weight


def _if(name: str, yes: int, no: int) -> Callable[[Req], int]:
    return lambda req: yes if params_of(req).get(name) else no


PUBLIC = ("REQUEST_WEIGHT_1M", "RAW_REQUESTS_5M")
KEYED = PUBLIC + ("KEY_WEIGHT_1M",)


def _route(method: str, path: str, handler: str, weight: Any, *, keyed: bool = False, kind: Any = None) -> Route:
    return Route(method, path, handler, signed=keyed, limits=KEYED if keyed else PUBLIC, kind=kind, weight=weight)


def hmac_matches(secret: str, payload: str, signature: str) -> bool:
    """Whether ``signature`` is the hex HMAC-SHA256 of ``payload`` with ``secret`` (HMAC
    signatures are not case-sensitive: web-socket-api.md, Signature Case Sensitivity)."""
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.lower())


def verify_signature(secret: str, query: str, body: str) -> bool:
    """Whether ``signature`` (in the query or the body) is HMAC-SHA256(secret, query + body)."""
    def without_signature(raw: str) -> tuple[str, str | None]:
        kept, signature = [], None
        for part in raw.split("&") if raw else []:
            if part.startswith("signature="):
                signature = part[len("signature="):]
            else:
                kept.append(part)
        return "&".join(kept), signature

    (q, sig_q), (b, sig_b) = without_signature(query), without_signature(body)
    signature = sig_q or sig_b
    return bool(signature) and hmac_matches(secret, q + b, signature)  # type: ignore[arg-type]


def check_signed(params: dict[str, str], signature_ok: Callable[[], bool], now: int) -> None:
    """The checks of a SIGNED request after its key (rest-api.md / web-socket-api.md "Timing
    security"): ``signature`` and ``timestamp`` present, ``recvWindow`` at most 60000, the
    signature, then ``timestamp < serverTime + 1000 and serverTime - timestamp <= recvWindow``
    (timestamps in ms or µs). ``now``: the server's time, ns."""
    if not params.get("signature"):
        raise mandatory("signature")
    if not params.get("timestamp", "").isdigit():
        raise mandatory("timestamp")
    window = parse_decimal(params.get("recvWindow", "5000"))
    if window is None:
        raise illegal("recvWindow")
    if window > 60000:
        raise BinanceError(400, -1131, "recvWindow must be less than 60000.")
    if not signature_ok():
        raise BinanceError(400, -1022, "Signature for this request is not valid.")
    timestamp = int(params["timestamp"])
    ts_ms = Decimal(timestamp) / 1000 if len(params["timestamp"]) >= 16 else Decimal(timestamp)  # µs or ms
    server_ms = Decimal(now) / 1_000_000
    if ts_ms >= server_ms + 1000:
        raise BinanceError(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if server_ms - ts_ms > window:
        raise BinanceError(400, -1021, "Timestamp for this request is outside of the recvWindow.")


def _client_order_id() -> str:
    """A venue-generated client order id, like Binance's 22-character ones."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(22))


def _step(filters: dict[str, dict[str, Any]]) -> Decimal:
    """The quantity step of market orders: MARKET_LOT_SIZE's if set, else LOT_SIZE's."""
    for name in ("MARKET_LOT_SIZE", "LOT_SIZE"):
        step = Decimal(filters.get(name, {}).get("stepSize", "0"))
        if step:
            return step
    return QUANTUM


class BinanceDialect(BinancePrivate, BinanceStreams, Dialect):
    """The simulated Binance: markets and filters from the recorded exchangeInfo, books from
    the recorded depth snapshots."""

    name = "binance"
    ROUTES = [
        _route("GET", "/api/v3/ping", "ping", 1),
        _route("GET", "/api/v3/time", "time", 1),
        _route("GET", "/api/v3/exchangeInfo", "exchange_info", 20),
        _route("GET", "/api/v3/depth", "depth", _depth_weight),
        _route("GET", "/api/v3/ticker/24hr", "ticker_24hr",
               _symbols_weight(2, lambda n: 2 if n <= 20 else 40 if n <= 100 else 80, 80)),
        _route("GET", "/api/v3/ticker/bookTicker", "book_ticker", _symbols_weight(2, lambda n: 4, 4)),
        _route("GET", "/api/v3/ticker/price", "price_ticker", _symbols_weight(2, lambda n: 4, 4)),
        _route("POST", "/api/v3/order", "new_order", 1, keyed=True, kind="place"),
        _route("DELETE", "/api/v3/order", "cancel_order", 1, keyed=True, kind="cancel"),
        _route("GET", "/api/v3/order", "query_order", 4, keyed=True),
        _route("GET", "/api/v3/openOrders", "open_orders", _if("symbol", 6, 80), keyed=True),
        _route("GET", "/api/v3/account", "account", 20, keyed=True),
        _route("GET", "/api/v3/myTrades", "my_trades", _if("orderId", 5, 20), keyed=True),
    ]
    LIMITS = {
        "REQUEST_WEIGHT_1M": Limit(6000, 60, "ip", counts="weight"),
        "RAW_REQUESTS_5M": Limit(300_000, 300, "ip"),
        # per-key usage, for the ledger only: Binance enforces weight per IP, not per key
        "KEY_WEIGHT_1M": Limit(6000, 60, "account", counts="weight", enforced=False, window="REQUEST_WEIGHT_1M"),
        "ORDERS_10S": Limit(100, 10, "account", counts="orders", refund_on_fill=True),
        "ORDERS_1D": Limit(200_000, 86400, "account", counts="orders", refund_on_fill=True),
    }
    DEFAULT_ACCOUNTS: list[Account] = []
    FEE_IN_QUOTE = False
    CLIENT_IDS = "open"
    WEBSOCKET = True
    READS_RECORDED = True

    def __init__(self, settings: BinanceSettings, clock: Clock, ledger: Ledger, ban: BanPolicy,
                 recorded: Path | None = None) -> None:
        self.binance = settings
        self.recording = load_binance(recorded or DEFAULT_RECORDED_DIR)
        self.symbols = {s["symbol"]: s for s in self.recording.exchange_info["symbols"]}
        self.filters = {sym: {f["filterType"]: f for f in s["filters"]} for sym, s in self.symbols.items()}
        self.MARKETS = [MarketSpec(sym, sym, ZERO, _step(self.filters[sym]), base_asset=s["baseAsset"],
                                   quote_asset=s["quoteAsset"]) for sym, s in self.symbols.items()]
        lim = settings.limits
        super().__init__(VenueSettings(accounts=settings.accounts, maker_fee=settings.maker_commission,
                                       taker_fee=settings.taker_commission, rate_limits={
                                           "REQUEST_WEIGHT_1M": lim.request_weight_1m, "KEY_WEIGHT_1M": lim.request_weight_1m,
                                           "RAW_REQUESTS_5M": lim.raw_requests_5m, "ORDERS_10S": lim.orders_10s,
                                           "ORDERS_1D": lim.orders_1d}), clock, ledger, ban)
        self.core.rules = lambda spec, order, reference: None  # the filters are checked while parsing
        self.core.describe = self._ledger_error
        for symbol, snap in self.recording.depth.items():
            self.core.exchange.apply_depth(symbol, _levels(snap["bids"]), _levels(snap["asks"]),
                                           snapshot=True, update_id=snap["lastUpdateId"])
        self.init_streams()
        self.init_user_data()

    def add_routes(self, app: web.Application) -> None:
        super().add_routes(app)
        for path, methods in RETIRED_PATHS.items():
            for method in methods:
                app.router.add_route(method, path, self._gone)

    def add_ws_routes(self, app: web.Application) -> None:
        self.add_market_routes(app)
        self.add_private_route(app)

    async def _gone(self, request: web.Request) -> web.Response:
        return web.Response(status=410, text=GONE_PAGE, content_type="text/html")

    def initial_books(self) -> dict[str, Any]:
        return {}  # the recorded depth snapshots, with their update ids (above)

    # -- authentication, errors, usage headers ----------------------------------------------

    async def authenticate(self, req: Req) -> Account:
        key = req.request.headers.get("X-MBX-APIKEY", "")
        if not key:
            raise BinanceError(401, -2014, "API-key format invalid.")
        account = self.core.by_key.get(key)
        if account is None:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        req.account = account  # from here the request counts for the key, even if its signature fails
        check_signed(params_of(req), lambda: verify_signature(account.secret, req.raw_query, req.text), req.now)
        return account

    def _error(self, r: Refusal, now: int) -> tuple[int, int, str, dict[str, str]]:
        """(status, code, msg, headers) of a refusal."""
        if isinstance(r, BinanceError):
            return r.status, r.code, r.msg, r.headers
        retry = {"Retry-After": str(r.retry_after)} if r.retry_after is not None else {}
        if r.kind == "banned":
            until = now // 1_000_000 + (r.retry_after or 0) * 1000
            return 418, -1003, (f"Way too much request weight used; IP banned until {until}. "
                                "Please use WebSocket Streams for live updates to avoid bans."), retry
        if r.kind == "rate_limited" and r.limit in ("ORDERS_10S", "ORDERS_1D"):
            unit = "10 SECOND" if r.limit == "ORDERS_10S" else "1 DAY"
            return 429, -1015, f"Too many new orders; current limit is {self.capacity(r.limit)} orders per {unit}.", {}
        if r.kind == "rate_limited":
            text = (f"Too much request weight used; current limit is {self.capacity('REQUEST_WEIGHT_1M')} request weight per 1 MINUTE."
                    if r.limit == "REQUEST_WEIGHT_1M" else
                    f"Too many requests; current limit is {self.capacity('RAW_REQUESTS_5M')} requests per 5 MINUTE.")
            return 429, -1003, text + " Please use WebSocket Streams for live updates to avoid polling the API.", retry
        return {
            "duplicate_order": (400, -2010, "Duplicate order sent.", {}),
            "would_take": (400, -2010, "Order would immediately match and take.", {}),
            "insufficient_balance": (400, -2010, "Account has insufficient balance for requested action.", {}),
            "unknown_symbol": (400, -1121, "Invalid symbol.", {}),
        }.get(r.kind, (400, -1100, str(r), {}))

    def _ledger_error(self, refusal: Refusal) -> tuple[str, str]:
        _, code, msg, _ = self._error(refusal, self.clock())
        return str(code), msg

    def refuse(self, refusal: Refusal, req: Req) -> tuple[int, Any, dict[str, str]]:
        status, code, msg, headers = self._error(refusal, req.now)
        return status, {"code": code, "msg": msg}, headers

    def server_error(self, status: int) -> Any:
        if status == 500:
            return {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."}
        return {"code": -1008, "msg": "Server is currently overloaded with other requests. Please try again in a few minutes."}

    def usage_headers(self, req: Req, windows: list[Any]) -> dict[str, str]:
        weight = self.limits.scope(f"ip:{req.request.remote}").window(
            "REQUEST_WEIGHT_1M", self.capacity("REQUEST_WEIGHT_1M"), 60)
        return {"X-MBX-USED-WEIGHT-1M": str(weight.current(req.now))}

    # -- public market data ---------------------------------------------------------------

    async def ping(self, req: Req) -> Any:
        return {}

    async def time(self, req: Req) -> Any:
        return {"serverTime": req.now // 1_000_000}

    def _symbol(self, params: dict[str, str], *, required: bool = True) -> str | None:
        symbol = params.get("symbol")
        if not symbol:
            if required:
                raise mandatory("symbol")
            return None
        if symbol not in self.symbols:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return symbol

    def _symbol_list(self, params: dict[str, str]) -> list[str]:
        """``symbol``, or ``symbols=["A","B"]``, or every symbol."""
        one = self._symbol(params, required=False)
        if one:
            return [one]
        if params.get("symbols"):
            try:
                names = msgspec.json.decode(params["symbols"], type=list[str])
            except msgspec.DecodeError:
                raise illegal("symbols", '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$') from None
            for name in names:
                self._symbol({"symbol": name})
            return names
        return list(self.symbols)

    async def exchange_info(self, req: Req) -> Any:
        info = dict(self.recording.exchange_info)
        info["serverTime"] = req.now // 1_000_000
        info["rateLimits"] = [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": self.capacity("REQUEST_WEIGHT_1M")},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": self.capacity("ORDERS_10S")},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": self.capacity("ORDERS_1D")},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": self.capacity("RAW_REQUESTS_5M")},
        ]
        p = params_of(req)
        if p.get("symbol") or p.get("symbols"):
            info["symbols"] = [self.symbols[s] for s in self._symbol_list(p)]
        return info

    async def depth(self, req: Req) -> Any:
        symbol = self._symbol(params_of(req))
        limit = params_of(req).get("limit", "100")
        if not limit.isdigit() or not 1 <= int(limit) <= 5000:
            raise illegal("limit", "1-5000")
        return {
            "lastUpdateId": self.core.exchange.books[symbol].update_id,
            "bids": [[fmt(p), fmt(q)] for p, q in self.core.levels(symbol, "buy", int(limit))],
            "asks": [[fmt(p), fmt(q)] for p, q in self.core.levels(symbol, "sell", int(limit))],
        }

    def _book_ticker(self, symbol: str) -> dict[str, str]:
        bid, ask = self.core.best(symbol, "buy") or (ZERO, ZERO), self.core.best(symbol, "sell") or (ZERO, ZERO)
        return {"symbol": symbol, "bidPrice": fmt(bid[0]), "bidQty": fmt(bid[1]), "askPrice": fmt(ask[0]), "askQty": fmt(ask[1])}

    def _one_or_all(self, req: Req, out: list[Any]) -> Any:
        return out[0] if params_of(req).get("symbol") else out

    async def book_ticker(self, req: Req) -> Any:
        return self._one_or_all(req, [self._book_ticker(s) for s in self._symbol_list(params_of(req))])

    async def price_ticker(self, req: Req) -> Any:
        return self._one_or_all(req, [{"symbol": s, "price": fmt(self.stats.get(s, TickerStats()).last)}
                                      for s in self._symbol_list(params_of(req))])

    async def ticker_24hr(self, req: Req) -> Any:
        now_ms = req.now // 1_000_000
        out = []
        for symbol in self._symbol_list(params_of(req)):
            st, top = self.stats.get(symbol, TickerStats()), self._book_ticker(symbol)
            change = st.last - st.open if st.count else ZERO
            out.append({
                "symbol": symbol, "priceChange": fmt(change),
                "priceChangePercent": f"{(change / st.open * 100 if st.open else ZERO):.3f}",
                "weightedAvgPrice": fmt(st.quote_volume / st.volume if st.volume else ZERO),
                "prevClosePrice": fmt(st.open), "lastPrice": fmt(st.last), "lastQty": fmt(st.last_qty),
                "bidPrice": top["bidPrice"], "bidQty": top["bidQty"], "askPrice": top["askPrice"], "askQty": top["askQty"],
                "openPrice": fmt(st.open), "highPrice": fmt(st.high), "lowPrice": fmt(st.low),
                "volume": fmt(st.volume), "quoteVolume": fmt(st.quote_volume),
                "openTime": now_ms - 86_400_000, "closeTime": now_ms,
                "firstId": st.first_id, "lastId": st.last_id, "count": st.count,
            })
        return self._one_or_all(req, out)

    # -- orders ---------------------------------------------------------------------------

    def _decimal(self, params: dict[str, str], name: str) -> Decimal | None:
        text = params.get(name)
        if text is None or text == "":
            return None
        value = parse_decimal(text)
        if value is None:
            raise illegal(name)
        return value

    def _check_filters(self, symbol: str, order: Order) -> None:
        """PRICE_FILTER, LOT_SIZE / MARKET_LOT_SIZE, MIN_NOTIONAL / NOTIONAL, MAX_NUM_ORDERS (filters.md)."""
        filters = self.filters[symbol]

        def fail(name: str) -> BinanceError:
            return BinanceError(400, -1013, f"Filter failure: {name}")

        pf = filters.get("PRICE_FILTER")
        if pf and order.price is not None:
            lo, hi, tick = Decimal(pf["minPrice"]), Decimal(pf["maxPrice"]), Decimal(pf["tickSize"])
            if (lo and order.price < lo) or (hi and order.price > hi) or (tick and (order.price - lo) % tick):
                raise fail("PRICE_FILTER")
        lot = filters.get("MARKET_LOT_SIZE") if order.order_type == "market" else None
        if not lot or not Decimal(lot["stepSize"]):
            lot = filters.get("LOT_SIZE")
        if lot and order.quantity is not None:
            lo, hi, step = Decimal(lot["minQty"]), Decimal(lot["maxQty"]), Decimal(lot["stepSize"])
            if order.quantity < lo or (hi and order.quantity > hi) or (step and (order.quantity - lo) % step):
                raise fail(lot["filterType"])
        for name in ("MIN_NOTIONAL", "NOTIONAL"):
            nf = filters.get(name)
            if not nf or (order.order_type == "market" and not nf.get("applyToMarket", nf.get("applyMinToMarket", True))):
                continue
            price = order.price
            if price is None:  # a market order: the price it would trade at now
                best = self.core.best(symbol, "sell" if order.side == "buy" else "buy")
                price = best[0] if best else None
            notional = order.quote_quantity if order.quote_quantity is not None else (
                price * order.quantity if price is not None and order.quantity is not None else None)
            if notional is not None and notional < Decimal(nf.get("minNotional", "0")):
                raise fail(name)
        mx = filters.get("MAX_NUM_ORDERS")
        if mx and order.order_type == "limit":
            book = self.core.exchange.books[symbol]
            open_n = sum(1 for side in (book.resting_bids, book.resting_asks) for queue in side.values()
                         for o in queue if o.account == order.account)
            if open_n >= int(mx["maxNumOrders"]):
                raise fail("MAX_NUM_ORDERS")

    def _parse_new_order(self, req: Req) -> Order:
        p = params_of(req)
        symbol = self._symbol(p)
        for name in ("side", "type"):
            if not p.get(name):
                raise mandatory(name)
        side = {"BUY": "buy", "SELL": "sell"}.get(p["side"])
        if side is None:
            raise BinanceError(400, -1117, "Invalid side.")
        kind = p["type"]
        if kind not in ("LIMIT", "MARKET", "LIMIT_MAKER"):
            raise BinanceError(400, -1116, "Invalid orderType.")
        quantity, quote_qty, price = self._decimal(p, "quantity"), self._decimal(p, "quoteOrderQty"), self._decimal(p, "price")
        tif = p.get("timeInForce")
        if kind == "LIMIT":
            for name, value in (("timeInForce", tif), ("quantity", quantity), ("price", price)):
                if value is None:
                    raise mandatory(name)
            if tif not in ("GTC", "IOC", "FOK"):
                raise BinanceError(400, -1115, "Invalid timeInForce.")
        elif kind == "LIMIT_MAKER":
            for name, value in (("quantity", quantity), ("price", price)):
                if value is None:
                    raise mandatory(name)
            if tif:
                raise not_required("timeInForce")
        else:
            if price is not None:
                raise not_required("price")
            if tif:
                raise not_required("timeInForce")
            if quantity is None and quote_qty is None:
                raise BinanceError(400, -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!")
            if quantity is not None and quote_qty is not None:
                raise not_required("quoteOrderQty")
            if quote_qty is not None and side == "sell":
                raise BinanceError(400, -1013, "Filter failure: MARKET_LOT_SIZE")
        if kind != "MARKET" and quote_qty is not None:
            raise not_required("quoteOrderQty")
        coid = p.get("newClientOrderId") or _client_order_id()
        if not CLIENT_ORDER_ID.match(coid):
            raise illegal("newClientOrderId", "^[a-zA-Z0-9-_]{1,36}$")
        resp_type = p.get("newOrderRespType") or ("FULL" if kind in ("LIMIT", "MARKET") else "ACK")
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise illegal("newOrderRespType", "ACK, RESULT, FULL")
        order = Order(
            order_id=0, client_order_id=coid, account=req.account.name, symbol=symbol, side=side,  # type: ignore[union-attr]
            order_type="market" if kind == "MARKET" else "limit",
            time_in_force={"IOC": "ioc", "FOK": "fok"}.get(tif or "", "gtc"),
            post_only=kind == "LIMIT_MAKER", price=price, quantity=quantity, quote_quantity=quote_qty,
            venue_fields={"type": kind, "timeInForce": tif or "GTC", "respType": resp_type},
        )
        self._check_filters(symbol, order)  # type: ignore[arg-type]
        return order

    async def new_order(self, req: Req) -> Any:
        order = self.core.place(self._parse_new_order(req))  # the id comes once every check passed
        for name, window in self.order_windows(order.account):
            req.headers["X-MBX-ORDER-COUNT-" + name.split("_", 1)[1]] = str(window.current(req.now))
        ack = {"symbol": order.symbol, "orderId": order.order_id, "orderListId": -1,
               "clientOrderId": order.client_order_id, "transactTime": order.ts_created // 1_000_000}
        resp_type = order.venue_fields["respType"]
        if resp_type == "ACK":
            return ack
        o = order
        result = ack | {
            "price": fmt(o.price or ZERO), "origQty": fmt(o.quantity or ZERO), "executedQty": fmt(o.filled),
            "origQuoteOrderQty": fmt(o.quote_quantity or ZERO), "cummulativeQuoteQty": fmt(o.filled_quote),
            "status": STATUS[o.status], "timeInForce": o.venue_fields["timeInForce"],
            "type": o.venue_fields["type"], "side": o.side.upper(),
            "workingTime": o.ts_created // 1_000_000, "selfTradePreventionMode": "NONE",
        }
        if resp_type == "FULL":
            result["fills"] = [{"price": fmt(f.price), "qty": fmt(f.quantity), "commission": fmt(f.fee),
                                "commissionAsset": f.fee_asset, "tradeId": f.trade_id} for f in order.fills]
        return result

    def _order_json(self, o: Order) -> dict[str, Any]:
        return {
            "symbol": o.symbol, "orderId": o.order_id, "orderListId": -1, "clientOrderId": o.client_order_id,
            "price": fmt(o.price or ZERO), "origQty": fmt(o.quantity or ZERO), "executedQty": fmt(o.filled),
            "cummulativeQuoteQty": fmt(o.filled_quote), "status": STATUS[o.status],
            "timeInForce": o.venue_fields["timeInForce"], "type": o.venue_fields["type"], "side": o.side.upper(),
            "stopPrice": fmt(ZERO), "icebergQty": fmt(ZERO), "time": o.ts_created // 1_000_000,
            "updateTime": o.ts_updated // 1_000_000, "isWorking": True, "workingTime": o.ts_created // 1_000_000,
            "origQuoteOrderQty": fmt(o.quote_quantity or ZERO), "selfTradePreventionMode": "NONE",
        }

    def _find(self, req: Req, not_found: Callable[[], BinanceError]) -> Order:
        """The order named by ``orderId`` and/or ``origClientOrderId`` (both must agree)."""
        p = params_of(req)
        symbol = self._symbol(p)
        order_id, coid = p.get("orderId"), p.get("origClientOrderId")
        if not order_id and not coid:
            raise BinanceError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        if order_id and not order_id.isdigit():
            raise illegal("orderId")
        try:
            order = self.core.find(req.account, order_id=int(order_id) if order_id else None,  # type: ignore[arg-type]
                                   client_order_id=coid)
        except Refusal:
            raise not_found() from None
        if order.symbol != symbol:
            raise not_found()
        return order

    async def cancel_order(self, req: Req) -> Any:
        order = self._find(req, unknown_order)
        if not order.is_open:
            raise unknown_order()
        cancel_id = params_of(req).get("newClientOrderId") or _client_order_id()
        order.venue_fields["cancelClientOrderId"] = cancel_id
        self.core.exchange.cancel(order)
        o = order
        return {
            "symbol": o.symbol, "origClientOrderId": o.client_order_id, "orderId": o.order_id,
            "orderListId": -1, "clientOrderId": cancel_id, "transactTime": o.ts_updated // 1_000_000,
            "price": fmt(o.price or ZERO), "origQty": fmt(o.quantity or ZERO),
            "executedQty": fmt(o.filled), "origQuoteOrderQty": fmt(o.quote_quantity or ZERO),
            "cummulativeQuoteQty": fmt(o.filled_quote), "status": STATUS[o.status],
            "timeInForce": o.venue_fields["timeInForce"], "type": o.venue_fields["type"],
            "side": o.side.upper(), "selfTradePreventionMode": "NONE",
        }

    async def query_order(self, req: Req) -> Any:
        return self._order_json(self._find(req, no_such_order))

    async def open_orders(self, req: Req) -> Any:
        return [self._order_json(o) for o in self.core.open_orders(req.account, self._symbol(params_of(req), required=False))]  # type: ignore[arg-type]

    async def account(self, req: Req) -> Any:
        wallet = self.core.wallet(req.account)  # type: ignore[arg-type]
        balances = [{"asset": a, "free": fmt(wallet.available(a)), "locked": fmt(wallet.locked.get(a, ZERO))}
                    for a in wallet.assets()]
        if params_of(req).get("omitZeroBalances") == "true":
            balances = [b for b in balances if Decimal(b["free"]) or Decimal(b["locked"])]
        s = self.binance
        bps = lambda rate: int(rate * 10000)  # noqa: E731 - commissions in basis points, as the venue reports them
        return {
            "makerCommission": bps(s.maker_commission), "takerCommission": bps(s.taker_commission),
            "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": fmt(s.maker_commission), "taker": fmt(s.taker_commission),
                                "buyer": fmt(ZERO), "seller": fmt(ZERO)},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": req.now // 1_000_000,
            "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "uid": 0,
        }

    async def my_trades(self, req: Req) -> Any:
        p = params_of(req)
        symbol = self._symbol(p)
        limit = int(p.get("limit") or 500)
        if not 1 <= limit <= 1000:
            raise illegal("limit", "1-1000")
        out = []
        for order, fill in self.core.fills(req.account, symbol):  # type: ignore[arg-type]
            ts = fill.ts // 1_000_000
            if p.get("orderId") and str(order.order_id) != p["orderId"]:
                continue
            if (p.get("startTime") and ts < int(p["startTime"])) or (p.get("endTime") and ts > int(p["endTime"])):
                continue
            if p.get("fromId") and fill.trade_id < int(p["fromId"]):
                continue
            out.append({"symbol": symbol, "id": fill.trade_id, "orderId": order.order_id, "orderListId": -1,
                        "price": fmt(fill.price), "qty": fmt(fill.quantity), "quoteQty": fmt(fill.quote_quantity),
                        "commission": fmt(fill.fee), "commissionAsset": fill.fee_asset, "time": ts,
                        "isBuyer": order.side == "buy", "isMaker": fill.is_maker, "isBestMatch": True})
        return out[:limit]


def _levels(levels: list[list[str]]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(p), Decimal(q)) for p, q in levels]


DIALECT = BinanceDialect
