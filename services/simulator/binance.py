"""Binance spot API v3 as the simulator speaks it.

REST under ``/api/v3`` (paths, parameters, JSON shapes, error codes and weights from
binance/binance-spot-api-docs rest-api.md and errors.md), market streams on ``/ws`` and
``/stream?streams=`` replayed from BINANCE.ws.1.0, user data streams by listenKey.

Signed requests are verified from the docs' definition, not with exbus's own signing
code: HMAC-SHA256 (secretKey) over ``totalParams`` = query string concatenated with the
request body, lowercase hex in ``signature``; ``X-MBX-APIKEY``; ``timestamp`` with
``recvWindow`` (default 5000, max 60000): accepted if
``timestamp < serverTime + 1000 and serverTime - timestamp <= recvWindow``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import re
import secrets
import string
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Awaitable, Callable, Literal
from urllib.parse import parse_qsl

import msgspec
from aiohttp import web

from services.simulator.clock import Clock
from services.simulator.config import Account, BanPolicy, BinanceSettings
from services.simulator.faults import note_order
from services.simulator.ledger import Ledger
from services.simulator.limits import RateLimits, Scope
from services.simulator.matching import (
    QUANTUM, ZERO, Exchange, FeeModel, Fill, Market, Order, OrderRejected, Wallet,
)
from services.simulator.recorded import BinanceRecording, Frame
from services.simulator.replay import replay_forever
from services.simulator.streams import StreamClient
from services.simulator.venue import Venue, encode, json_response, parse_decimal

DECIMAL_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
CLIENT_ORDER_ID = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
STATUS = {"new": "NEW", "partially_filled": "PARTIALLY_FILLED", "filled": "FILLED",
          "canceled": "CANCELED", "expired": "EXPIRED"}
EXECUTION = {"new": "NEW", "trade": "TRADE", "canceled": "CANCELED", "expired": "EXPIRED"}


class BinanceError(Exception):
    """An error answer: HTTP status and Binance's {"code": ..., "msg": ...}."""

    def __init__(self, status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{code} {msg}")
        self.status, self.code, self.msg, self.headers = status, code, msg, headers or {}


def mandatory(name: str) -> BinanceError:
    return BinanceError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def not_required(name: str) -> BinanceError:
    return BinanceError(400, -1106, f"Parameter '{name}' sent when not required.")


def insufficient() -> BinanceError:
    return BinanceError(400, -2010, "Account has insufficient balance for requested action.")


def duplicate() -> BinanceError:
    return BinanceError(400, -2010, "Duplicate order sent.")


def would_take() -> BinanceError:
    return BinanceError(400, -2010, "Order would immediately match and take.")


def unknown_order() -> BinanceError:
    return BinanceError(400, -2011, "Unknown order sent.")


def no_such_order() -> BinanceError:
    return BinanceError(400, -2013, "Order does not exist.")


def invalid_symbol() -> BinanceError:
    return BinanceError(400, -1121, "Invalid symbol.")


def fmt(d: Decimal) -> str:
    """Binance's 8-decimal strings ("0.35210000")."""
    return f"{d.quantize(QUANTUM):f}"


# -- weights (rest-api.md "Weight" of each endpoint) --------------------------------------------


def _depth_weight(p: dict[str, str]) -> int:
    text = p.get("limit") or "100"
    limit = int(text) if text.isdigit() else 100
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def _symbols_weight(one: int, many: Callable[[int], int], none: int) -> Callable[[dict[str, str]], int]:
    def weight(p: dict[str, str]) -> int:
        if p.get("symbol"):
            return one
        if p.get("symbols"):
            return many(p["symbols"].count(",") + 1)
        return none
    return weight


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    security: Literal["NONE", "USER_STREAM", "SIGNED"]
    weight: Callable[[dict[str, str]], int]
    handler: str


def _w(n: int) -> Callable[[dict[str, str]], int]:
    return lambda p: n


ENDPOINTS = [
    Endpoint("GET", "/api/v3/ping", "NONE", _w(1), "ping"),
    Endpoint("GET", "/api/v3/time", "NONE", _w(1), "time"),
    Endpoint("GET", "/api/v3/exchangeInfo", "NONE", _w(20), "exchange_info"),
    Endpoint("GET", "/api/v3/depth", "NONE", _depth_weight, "depth"),
    Endpoint("GET", "/api/v3/ticker/24hr", "NONE",
             _symbols_weight(2, lambda n: 2 if n <= 20 else 40 if n <= 100 else 80, 80), "ticker_24hr"),
    Endpoint("GET", "/api/v3/ticker/bookTicker", "NONE", _symbols_weight(2, lambda n: 4, 4), "book_ticker"),
    Endpoint("GET", "/api/v3/ticker/price", "NONE", _symbols_weight(2, lambda n: 4, 4), "price_ticker"),
    Endpoint("POST", "/api/v3/order", "SIGNED", _w(1), "new_order"),
    Endpoint("DELETE", "/api/v3/order", "SIGNED", _w(1), "cancel_order"),
    Endpoint("GET", "/api/v3/order", "SIGNED", _w(4), "query_order"),
    Endpoint("GET", "/api/v3/openOrders", "SIGNED", lambda p: 6 if p.get("symbol") else 80, "open_orders"),
    Endpoint("GET", "/api/v3/account", "SIGNED", _w(20), "account"),
    Endpoint("GET", "/api/v3/myTrades", "SIGNED", lambda p: 5 if p.get("orderId") else 20, "my_trades"),
    Endpoint("POST", "/api/v3/userDataStream", "USER_STREAM", _w(2), "start_user_stream"),
    Endpoint("PUT", "/api/v3/userDataStream", "USER_STREAM", _w(2), "keepalive_user_stream"),
    Endpoint("DELETE", "/api/v3/userDataStream", "USER_STREAM", _w(2), "close_user_stream"),
]


# -- signatures ---------------------------------------------------------------------------------


def _without_signature(raw: str) -> tuple[str, str | None]:
    """A raw urlencoded string minus its ``signature`` parameter, and that signature."""
    kept, signature = [], None
    for part in raw.split("&") if raw else []:
        if part.startswith("signature="):
            signature = part[len("signature="):]
        else:
            kept.append(part)
    return "&".join(kept), signature


def verify_signature(secret: str, query: str, body: str) -> bool:
    """Whether ``signature`` (in the query or the body) is HMAC-SHA256(secret, query + body)."""
    q, sig_q = _without_signature(query)
    b, sig_b = _without_signature(body)
    signature = sig_q or sig_b
    if not signature:
        return False
    expected = hmac.new(secret.encode(), (q + b).encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.lower())


@dataclass(slots=True)
class Ctx:
    """One REST request being handled."""

    request: web.Request
    params: dict[str, str]
    now: int
    account: Account | None
    headers: dict[str, str]


@dataclass(slots=True)
class TickerStats:
    """Rolling statistics behind /api/v3/ticker/24hr, fed by the replayed trades and kline."""

    open: Decimal = ZERO
    high: Decimal = ZERO
    low: Decimal = ZERO
    last: Decimal = ZERO
    last_qty: Decimal = ZERO
    volume: Decimal = ZERO
    quote_volume: Decimal = ZERO
    count: int = 0
    first_id: int = -1
    last_id: int = -1
    open_time: int = 0

    def trade(self, price: Decimal, qty: Decimal, trade_id: int, ts_ms: int) -> None:
        if not self.count and not self.open:
            self.open, self.high, self.low, self.open_time = price, price, price, ts_ms
        self.high = max(self.high, price)
        self.low = min(self.low, price) if self.low else price
        self.last, self.last_qty = price, qty
        self.volume += qty
        self.quote_volume += price * qty
        self.count += 1
        self.first_id = trade_id if self.first_id < 0 else self.first_id
        self.last_id = trade_id


def _client_order_id() -> str:
    """A venue-generated client order id, like Binance's 22-character ones."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(22))


class BinanceVenue(Venue):
    """The simulated Binance: accounts, books, orders, limits and streams."""

    name = "binance"

    def __init__(self, settings: BinanceSettings, recording: BinanceRecording, clock: Clock,
                 ledger: Ledger, ban: BanPolicy) -> None:
        super().__init__(clock, ledger, RateLimits(ban))
        self.settings = settings
        self.recording = recording
        self.symbols = {s["symbol"]: s for s in recording.exchange_info["symbols"]}
        self.filters = {sym: {f["filterType"]: f for f in s["filters"]} for sym, s in self.symbols.items()}
        self.accounts = {a.api_key: a for a in settings.accounts}
        markets = {sym: Market(sym, s["baseAsset"], s["quoteAsset"], _step(self.filters[sym])) for sym, s in self.symbols.items()}
        wallets = {a.name: Wallet(a.balances) for a in settings.accounts}
        fees = FeeModel(maker=lambda m: settings.maker_commission,
                        taker=lambda m: settings.taker_commission, in_quote=False)
        self.exchange = Exchange(markets, wallets, fees, clock, self._on_update, self._on_balance)
        for symbol, snap in recording.depth.items():
            self.exchange.apply_depth(symbol, _levels(snap["bids"]), _levels(snap["asks"]),
                                      snapshot=True, update_id=snap["lastUpdateId"])
        self.order_ids = itertools.count(1)
        self.orders: dict[int, Order] = {}
        self.by_client_id: dict[tuple[str, str, str], list[Order]] = {}
        self.trades: dict[str, list[tuple[Order, Fill]]] = {a.name: [] for a in settings.accounts}
        self.listen_keys: dict[str, str] = {}
        self.stats: dict[str, TickerStats] = {}
        self._spans = _replay_spans(recording.frames)
        self._seed_stats(recording.frames)
        self.endpoints = {(e.method, e.path): e for e in ENDPOINTS}

    # -- routes ---------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        for e in ENDPOINTS:
            app.router.add_route(e.method, e.path, self._dispatch)
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/ws/{streams:.*}", self._ws)
        app.router.add_get("/stream", self._ws)

    def route_kind(self, method: str, path: str) -> str | None:
        if path == "/api/v3/order":
            return {"POST": "place", "DELETE": "cancel"}.get(method)
        return None

    def error_body(self, status: int) -> bytes:
        if status == 500:
            return encode({"code": -1001, "msg": "Internal error; unable to process your request. Please try again."})
        return encode({"code": -1008, "msg": "Server is currently overloaded with other requests. Please try again in a few minutes."})

    async def _dispatch(self, request: web.Request) -> web.Response:
        endpoint = self.endpoints[(request.method, request.path)]
        now = self.clock()
        query = request.rel_url.raw_query_string
        body = await request.text() if request.can_read_body else ""
        params = dict(parse_qsl(body, keep_blank_values=True))
        params.update(parse_qsl(query, keep_blank_values=True))  # the query string wins
        ip = self.limits.scope(f"ip:{request.remote}")
        weight_window = ip.window("REQUEST_WEIGHT_1M", self.settings.limits.request_weight_1m, 60)
        headers: dict[str, str] = {}
        try:
            self._admit(ip, endpoint.weight(params), now)
            account = None
            if endpoint.security != "NONE":
                account = self._api_key(request)
                self._tally(account, endpoint.weight(params), now)
            if endpoint.security == "SIGNED":
                self._verify(account, params, query, body, now)
            handler: Callable[[Ctx], Awaitable[Any]] = getattr(self, endpoint.handler)
            result = await handler(Ctx(request, params, now, account, headers))
            status = 200
        except BinanceError as e:
            result, status = {"code": e.code, "msg": e.msg}, e.status
            headers.update(e.headers)
        headers["X-MBX-USED-WEIGHT-1M"] = str(weight_window.current(now))
        return json_response(result, status, headers)

    def _admit(self, ip: Scope, weight: int, now: int) -> None:
        """IP limits: ban, 429 for requests over REQUEST_WEIGHT or RAW_REQUESTS."""
        ban = ip.arrive(now)
        if ban:
            until = now // 1_000_000 + ban * 1000
            raise BinanceError(418, -1003, f"Way too much request weight used; IP banned until {until}. "
                               "Please use WebSocket Streams for live updates to avoid bans.",
                               {"Retry-After": str(ban)})
        limits = self.settings.limits
        weight_window = ip.window("REQUEST_WEIGHT_1M", limits.request_weight_1m, 60)
        raw_window = ip.window("RAW_REQUESTS_5M", limits.raw_requests_5m, 300)
        over = None if weight_window.fits(now, weight) else weight_window
        over = over or (None if raw_window.fits(now, 1) else raw_window)
        weight_window.add(now, weight)
        raw_window.add(now, 1)
        if over is not None:
            retry_after = ip.limited(now, over)
            text = (f"Too much request weight used; current limit is {limits.request_weight_1m} request weight per 1 MINUTE."
                    if over is weight_window else
                    f"Too many requests; current limit is {limits.raw_requests_5m} requests per 5 MINUTE.")
            raise BinanceError(429, -1003, text + " Please use WebSocket Streams for live updates to avoid polling the API.",
                               {"Retry-After": str(retry_after)})

    def _tally(self, account: Account, weight: int, now: int) -> None:
        """Per-key usage, for the ledger (Binance enforces weight per IP, not per key)."""
        scope = self.limits.scope(f"account:{account.name}")
        scope.requests += 1
        scope.window("REQUEST_WEIGHT_1M", self.settings.limits.request_weight_1m, 60, enforced=False).add(now, weight)

    def _api_key(self, request: web.Request) -> Account:
        key = request.headers.get("X-MBX-APIKEY", "")
        if not key:
            raise BinanceError(401, -2014, "API-key format invalid.")
        account = self.accounts.get(key)
        if account is None:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        return account

    def _verify(self, account: Account, params: dict[str, str], query: str, body: str, now: int) -> None:
        if not params.get("signature"):
            raise mandatory("signature")
        if not params.get("timestamp", "").isdigit():
            raise mandatory("timestamp")
        recv_window = params.get("recvWindow", "5000")
        window = parse_decimal(recv_window)
        if window is None:
            raise BinanceError(400, -1100, f"Illegal characters found in parameter 'recvWindow'; legal range is '{DECIMAL_RANGE}'.")
        if window > 60000:
            raise BinanceError(400, -1131, "recvWindow must be less than 60000.")
        if not verify_signature(account.secret, query, body):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        timestamp = int(params["timestamp"])
        ts_ms = Decimal(timestamp) / 1000 if len(params["timestamp"]) >= 16 else Decimal(timestamp)  # µs or ms
        server_ms = Decimal(now) / 1_000_000
        if ts_ms >= server_ms + 1000:
            raise BinanceError(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if server_ms - ts_ms > window:
            raise BinanceError(400, -1021, "Timestamp for this request is outside of the recvWindow.")

    # -- public market data ---------------------------------------------------------------

    async def ping(self, ctx: Ctx) -> Any:
        return {}

    async def time(self, ctx: Ctx) -> Any:
        return {"serverTime": ctx.now // 1_000_000}

    def _symbol(self, params: dict[str, str], *, required: bool = True) -> str | None:
        symbol = params.get("symbol")
        if not symbol:
            if required:
                raise mandatory("symbol")
            return None
        if symbol not in self.symbols:
            raise invalid_symbol()
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
                raise BinanceError(400, -1100, "Illegal characters found in parameter 'symbols'; "
                                   "legal range is '^\\[(\"[A-Z0-9-_.]{1,20}\"(,\"[A-Z0-9-_.]{1,20}\"){0,}){0,1}\\]$'.")
            for name in names:
                if name not in self.symbols:
                    raise invalid_symbol()
            return names
        return list(self.symbols)

    async def exchange_info(self, ctx: Ctx) -> Any:
        info = dict(self.recording.exchange_info)
        limits = self.settings.limits
        info["serverTime"] = ctx.now // 1_000_000
        info["rateLimits"] = [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": limits.request_weight_1m},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": limits.orders_10s},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": limits.orders_1d},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": limits.raw_requests_5m},
        ]
        if ctx.params.get("symbol") or ctx.params.get("symbols"):
            info["symbols"] = [self.symbols[s] for s in self._symbol_list(ctx.params)]
        return info

    async def depth(self, ctx: Ctx) -> Any:
        symbol = self._symbol(ctx.params)
        limit = ctx.params.get("limit", "100")
        if not limit.isdigit() or not 1 <= int(limit) <= 5000:
            raise BinanceError(400, -1100, "Illegal characters found in parameter 'limit'; legal range is '1-5000'.")
        book = self.exchange.books[symbol]
        return {
            "lastUpdateId": book.update_id,
            "bids": [[fmt(p), fmt(q)] for p, q in book.levels("buy", int(limit))],
            "asks": [[fmt(p), fmt(q)] for p, q in book.levels("sell", int(limit))],
        }

    def _book_ticker(self, symbol: str) -> dict[str, str]:
        book = self.exchange.books[symbol]
        bid, ask = book.best("buy") or (ZERO, ZERO), book.best("sell") or (ZERO, ZERO)
        return {"symbol": symbol, "bidPrice": fmt(bid[0]), "bidQty": fmt(bid[1]),
                "askPrice": fmt(ask[0]), "askQty": fmt(ask[1])}

    async def book_ticker(self, ctx: Ctx) -> Any:
        out = [self._book_ticker(s) for s in self._symbol_list(ctx.params)]
        return out[0] if ctx.params.get("symbol") else out

    async def price_ticker(self, ctx: Ctx) -> Any:
        out = [{"symbol": s, "price": fmt(self.stats.get(s, TickerStats()).last)} for s in self._symbol_list(ctx.params)]
        return out[0] if ctx.params.get("symbol") else out

    async def ticker_24hr(self, ctx: Ctx) -> Any:
        now_ms = ctx.now // 1_000_000
        out = []
        for symbol in self._symbol_list(ctx.params):
            st = self.stats.get(symbol, TickerStats())
            top = self._book_ticker(symbol)
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
        return out[0] if ctx.params.get("symbol") else out

    # -- orders ---------------------------------------------------------------------------

    def _decimal(self, params: dict[str, str], name: str) -> Decimal | None:
        text = params.get(name)
        if text is None or text == "":
            return None
        value = parse_decimal(text)
        if value is None:
            raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '{DECIMAL_RANGE}'.")
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
                best = self.exchange.books[symbol].best("sell" if order.side == "buy" else "buy")
                price = best[0] if best else None
            notional = order.quote_quantity if order.quote_quantity is not None else (
                price * order.quantity if price is not None and order.quantity is not None else None)
            if notional is not None and notional < Decimal(nf.get("minNotional", "0")):
                raise fail(name)
        mx = filters.get("MAX_NUM_ORDERS")
        if mx and order.order_type == "limit":
            book = self.exchange.books[symbol]
            open_n = sum(1 for side in (book.resting_bids, book.resting_asks) for queue in side.values()
                          for o in queue if o.account == order.account)
            if open_n >= int(mx["maxNumOrders"]):
                raise fail("MAX_NUM_ORDERS")

    def _parse_new_order(self, ctx: Ctx) -> Order:
        p = ctx.params
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
            raise BinanceError(400, -1100, "Illegal characters found in parameter 'newClientOrderId'; "
                               "legal range is '^[a-zA-Z0-9-_]{1,36}$'.")
        resp_type = p.get("newOrderRespType") or ("FULL" if kind in ("LIMIT", "MARKET") else "ACK")
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise BinanceError(400, -1100, "Illegal characters found in parameter 'newOrderRespType'; "
                               "legal range is 'ACK, RESULT, FULL'.")
        order = Order(
            order_id=0, client_order_id=coid, account=ctx.account.name, symbol=symbol, side=side,
            order_type="market" if kind == "MARKET" else "limit",
            time_in_force={"IOC": "ioc", "FOK": "fok"}.get(tif or "", "gtc"),
            post_only=kind == "LIMIT_MAKER", price=price, quantity=quantity, quote_quantity=quote_qty,
            venue_fields={"type": kind, "timeInForce": tif or "GTC", "respType": resp_type},
        )
        self._check_filters(symbol, order)
        return order

    def _order_counts(self, account: Account, now: int) -> tuple[Any, Any]:
        scope = self.limits.scope(f"account:{account.name}")
        limits = self.settings.limits
        return (scope.window("ORDERS_10S", limits.orders_10s, 10), scope.window("ORDERS_1D", limits.orders_1d, 86400))

    async def new_order(self, ctx: Ctx) -> Any:
        order = self._parse_new_order(ctx)
        account, now = ctx.account, ctx.now
        key = (account.name, order.symbol, order.client_order_id)
        if any(o.is_open for o in self.by_client_id.get(key, [])):
            self._reject(order, duplicate())
        scope = self.limits.scope(f"account:{account.name}")
        for w in self._order_counts(account, now):
            if not w.fits(now, 1):
                scope.limited(now, w, backoff=False)
                unit = "10 SECOND" if w.interval_s == 10 else "1 DAY"
                self._reject(order, BinanceError(429, -1015, f"Too many new orders; current limit is {w.limit} orders per {unit}."))
        order.order_id = next(self.order_ids)
        for w in self._order_counts(account, now):
            w.add(now, 1)
        try:
            self.exchange.place(order)
        except OrderRejected as e:
            for w in self._order_counts(account, now):
                w.sub(now, 1)
            self._reject(order, would_take() if e.reason == OrderRejected.WOULD_TAKE else insufficient())
        self.orders[order.order_id] = order
        self.by_client_id.setdefault(key, []).append(order)
        self.ledger.accepted(self.name, order)
        note_order(order)
        w10, w1d = self._order_counts(account, now)
        ctx.headers["X-MBX-ORDER-COUNT-10S"] = str(w10.current(now))
        ctx.headers["X-MBX-ORDER-COUNT-1D"] = str(w1d.current(now))
        return self._new_order_json(order)

    def _reject(self, order: Order, error: BinanceError) -> None:
        self.ledger.rejected(self.name, order.account, order.client_order_id, str(error.code), error.msg, self.clock())
        raise error

    def _new_order_json(self, o: Order) -> dict[str, Any]:
        ack = {"symbol": o.symbol, "orderId": o.order_id, "orderListId": -1,
               "clientOrderId": o.client_order_id, "transactTime": o.ts_created // 1_000_000}
        resp_type = o.venue_fields["respType"]
        if resp_type == "ACK":
            return ack
        result = ack | {
            "price": fmt(o.price or ZERO), "origQty": fmt(o.quantity or ZERO), "executedQty": fmt(o.filled),
            "origQuoteOrderQty": fmt(o.quote_quantity or ZERO), "cummulativeQuoteQty": fmt(o.filled_quote),
            "status": STATUS[o.status], "timeInForce": o.venue_fields["timeInForce"],
            "type": o.venue_fields["type"], "side": o.side.upper(),
            "workingTime": o.ts_created // 1_000_000, "selfTradePreventionMode": "NONE",
        }
        if resp_type == "FULL":
            result["fills"] = [{"price": fmt(f.price), "qty": fmt(f.quantity), "commission": fmt(f.fee),
                                "commissionAsset": f.fee_asset, "tradeId": f.trade_id} for f in o.fills]
        return result

    def _query_json(self, o: Order) -> dict[str, Any]:
        return {
            "symbol": o.symbol, "orderId": o.order_id, "orderListId": -1, "clientOrderId": o.client_order_id,
            "price": fmt(o.price or ZERO), "origQty": fmt(o.quantity or ZERO), "executedQty": fmt(o.filled),
            "cummulativeQuoteQty": fmt(o.filled_quote), "status": STATUS[o.status],
            "timeInForce": o.venue_fields["timeInForce"], "type": o.venue_fields["type"], "side": o.side.upper(),
            "stopPrice": fmt(ZERO), "icebergQty": fmt(ZERO), "time": o.ts_created // 1_000_000,
            "updateTime": o.ts_updated // 1_000_000, "isWorking": True, "workingTime": o.ts_created // 1_000_000,
            "origQuoteOrderQty": fmt(o.quote_quantity or ZERO), "selfTradePreventionMode": "NONE",
        }

    def _find(self, ctx: Ctx, not_found: Callable[[], BinanceError]) -> Order:
        """The order named by ``orderId`` and/or ``origClientOrderId`` (both must agree)."""
        p = ctx.params
        symbol = self._symbol(p)
        order_id, coid = p.get("orderId"), p.get("origClientOrderId")
        if not order_id and not coid:
            raise BinanceError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        if order_id:
            if not order_id.isdigit():
                raise BinanceError(400, -1100, f"Illegal characters found in parameter 'orderId'; legal range is '{DECIMAL_RANGE}'.")
            order = self.orders.get(int(order_id))
            if order is None or order.account != ctx.account.name or order.symbol != symbol:
                raise not_found()
            if coid and order.client_order_id != coid:
                raise not_found()
            return order
        matches = self.by_client_id.get((ctx.account.name, symbol, coid), [])
        if not matches:
            raise not_found()
        open_ = [o for o in matches if o.is_open]
        return open_[-1] if open_ else matches[-1]

    async def cancel_order(self, ctx: Ctx) -> Any:
        order = self._find(ctx, unknown_order)
        if not order.is_open:
            raise unknown_order()
        cancel_id = ctx.params.get("newClientOrderId") or _client_order_id()
        order.venue_fields["cancelClientOrderId"] = cancel_id
        self.exchange.cancel(order)
        return {
            "symbol": order.symbol, "origClientOrderId": order.client_order_id, "orderId": order.order_id,
            "orderListId": -1, "clientOrderId": cancel_id, "transactTime": order.ts_updated // 1_000_000,
            "price": fmt(order.price or ZERO), "origQty": fmt(order.quantity or ZERO),
            "executedQty": fmt(order.filled), "origQuoteOrderQty": fmt(order.quote_quantity or ZERO),
            "cummulativeQuoteQty": fmt(order.filled_quote), "status": STATUS[order.status],
            "timeInForce": order.venue_fields["timeInForce"], "type": order.venue_fields["type"],
            "side": order.side.upper(), "selfTradePreventionMode": "NONE",
        }

    async def query_order(self, ctx: Ctx) -> Any:
        return self._query_json(self._find(ctx, no_such_order))

    async def open_orders(self, ctx: Ctx) -> Any:
        symbol = self._symbol(ctx.params, required=False)
        return [self._query_json(o) for o in self.orders.values()
                if o.account == ctx.account.name and o.is_open and (symbol is None or o.symbol == symbol)]

    async def account(self, ctx: Ctx) -> Any:
        wallet = self.exchange.wallets[ctx.account.name]
        omit_zero = ctx.params.get("omitZeroBalances") == "true"
        balances = [{"asset": a, "free": fmt(wallet.available(a)), "locked": fmt(wallet.locked.get(a, ZERO))}
                    for a in wallet.assets()]
        if omit_zero:
            balances = [b for b in balances if Decimal(b["free"]) or Decimal(b["locked"])]
        s = self.settings
        bps = lambda rate: int(rate * 10000)  # noqa: E731 - commissions in basis points, as the venue reports them
        return {
            "makerCommission": bps(s.maker_commission), "takerCommission": bps(s.taker_commission),
            "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": fmt(s.maker_commission), "taker": fmt(s.taker_commission),
                                "buyer": fmt(ZERO), "seller": fmt(ZERO)},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": ctx.now // 1_000_000,
            "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "uid": 0,
        }

    async def my_trades(self, ctx: Ctx) -> Any:
        p = ctx.params
        symbol = self._symbol(p)
        limit = int(p.get("limit") or 500)
        if not 1 <= limit <= 1000:
            raise BinanceError(400, -1100, "Illegal characters found in parameter 'limit'; legal range is '1-1000'.")
        out = []
        for order, fill in self.trades[ctx.account.name]:
            ts = fill.ts // 1_000_000
            if order.symbol != symbol or (p.get("orderId") and str(order.order_id) != p["orderId"]):
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

    # -- user data stream -----------------------------------------------------------------

    async def start_user_stream(self, ctx: Ctx) -> Any:
        for key, name in self.listen_keys.items():
            if name == ctx.account.name:
                return {"listenKey": key}
        key = secrets.token_hex(32)
        self.listen_keys[key] = ctx.account.name
        return {"listenKey": key}

    def _listen_key(self, ctx: Ctx) -> str:
        key = ctx.params.get("listenKey")
        if not key:
            raise mandatory("listenKey")
        if self.listen_keys.get(key) != ctx.account.name:
            raise BinanceError(400, -1125, "This listenKey does not exist.")
        return key

    async def keepalive_user_stream(self, ctx: Ctx) -> Any:
        self._listen_key(ctx)
        return {}

    async def close_user_stream(self, ctx: Ctx) -> Any:
        del self.listen_keys[self._listen_key(ctx)]
        return {}

    def _on_update(self, order: Order, fill: Fill | None, kind: str) -> None:
        """Engine event: trades for myTrades, unfilled-order credit, executionReport."""
        now = self.clock()
        if fill is not None:
            self.trades.setdefault(order.account, []).append((order, fill))
            stats = self.stats.setdefault(order.symbol, TickerStats())
            if not fill.is_maker:
                stats.trade(fill.price, fill.quantity, fill.trade_id, fill.ts // 1_000_000)
            if len(order.fills) == 1:  # first fill: the unfilled order count goes down by one
                scope = self.limits.scope(f"account:{order.account}")
                for w in scope.windows.values():
                    if w.name.startswith("ORDERS_"):
                        w.sub(now, 1)
        topic = f"user:{order.account}"
        if not self.hub.has(topic):
            return
        cancel_id = order.venue_fields.get("cancelClientOrderId") if kind == "canceled" else None
        self.hub.publish(topic, {
            "e": "executionReport", "E": now // 1_000_000, "s": order.symbol,
            "c": cancel_id or order.client_order_id, "S": order.side.upper(), "o": order.venue_fields["type"],
            "f": order.venue_fields["timeInForce"], "q": fmt(order.quantity or ZERO), "p": fmt(order.price or ZERO),
            "P": fmt(ZERO), "F": fmt(ZERO), "g": -1, "C": order.client_order_id if cancel_id else "",
            "x": EXECUTION[kind], "X": STATUS[order.status], "r": "NONE", "i": order.order_id,
            "l": fmt(fill.quantity if fill else ZERO), "z": fmt(order.filled), "L": fmt(fill.price if fill else ZERO),
            "n": fmt(fill.fee if fill else ZERO), "N": fill.fee_asset if fill else None,
            "T": (fill.ts if fill else order.ts_updated) // 1_000_000, "t": fill.trade_id if fill else -1,
            "v": 0, "I": 0, "w": order.is_open and order.order_type == "limit" and order.time_in_force == "gtc",
            "m": bool(fill and fill.is_maker), "M": False, "O": order.ts_created // 1_000_000,
            "Z": fmt(order.filled_quote), "Y": fmt(fill.quote_quantity if fill else ZERO),
            "Q": fmt(order.quote_quantity or ZERO), "W": order.ts_created // 1_000_000, "V": "NONE",
        })

    def _on_balance(self, account: str, assets: list[str]) -> None:
        topic = f"user:{account}"
        if not self.hub.has(topic):
            return
        wallet = self.exchange.wallets[account]
        ms = self.now_ms()
        self.hub.publish(topic, {"e": "outboundAccountPosition", "E": ms, "u": ms, "B": [
            {"a": a, "f": fmt(wallet.available(a)), "l": fmt(wallet.locked.get(a, ZERO))} for a in assets]})

    # -- WebSocket streams ----------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        """``/ws/<stream>[/<stream>...]`` (raw payloads), ``/stream?streams=a/b`` (wrapped);
        a listenKey as a stream name subscribes to that account's user data."""
        combined = request.path == "/stream"
        names = (request.query.get("streams", "") if combined else request.match_info.get("streams", "")).split("/")
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        alias: dict[str, str] = {}  # topic -> the name the client subscribed with

        def render(topic: str, event: Any) -> str:
            if combined:
                return encode({"stream": alias.get(topic, topic), "data": event}).decode()
            return encode(event).decode()

        client = StreamClient(ws, render)
        for name in filter(None, names):
            self._subscribe(client, name, alias)
        self.hub.add(client)
        try:
            await ws.prepare(request)
            await self.hub.serve(client, lambda c, data: self._ws_message(c, data, alias))
        finally:
            self.hub.clients.discard(client)
        return ws

    def _subscribe(self, client: StreamClient, name: str, alias: dict[str, str]) -> None:
        topic = f"user:{self.listen_keys[name]}" if name in self.listen_keys else name.lower()
        alias[topic] = name  # stream names match case-insensitively; frames carry the client's spelling
        client.topics.add(topic)

    def _ws_message(self, client: StreamClient, data: str | bytes, alias: dict[str, str]) -> None:
        """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS (web-socket-streams.md)."""
        try:
            msg = msgspec.json.decode(data)
            method, params, req_id = msg["method"], msg.get("params", []), msg.get("id")
        except (msgspec.DecodeError, KeyError, TypeError):
            client.send(encode({"error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}}).decode())
            return
        if method == "SUBSCRIBE":
            for name in params:
                self._subscribe(client, name, alias)
            self.hub.touched()
            client.send(encode({"result": None, "id": req_id}).decode())
        elif method == "UNSUBSCRIBE":
            for name in params:
                topic = f"user:{self.listen_keys[name]}" if name in self.listen_keys else name.lower()
                client.topics.discard(topic)
                alias.pop(topic, None)
            client.send(encode({"result": None, "id": req_id}).decode())
        elif method == "LIST_SUBSCRIPTIONS":
            client.send(encode({"result": sorted(alias.get(t, t) for t in client.topics), "id": req_id}).decode())
        else:
            client.send(encode({"error": {"code": 1, "msg": f"Unknown property '{method}'"}, "id": req_id}).decode())

    # -- replay ---------------------------------------------------------------------------

    def start_replay(self, speed: float) -> None:
        self._replay = asyncio.create_task(replay_forever(self.recording.frames, speed, self._emit))

    def _seed_stats(self, frames: list[Frame]) -> None:
        for frame in frames:
            d = frame.payload["data"]
            if d.get("e") == "kline" and d["s"] not in self.stats:
                k = d["k"]
                self.stats[d["s"]] = TickerStats(
                    open=Decimal(k["o"]), high=Decimal(k["h"]), low=Decimal(k["l"]), last=Decimal(k["c"]),
                    volume=Decimal(k["v"]), quote_volume=Decimal(k["q"]), count=k["n"],
                    first_id=k["f"], last_id=k["L"], open_time=k["t"])

    def _emit(self, frame: Frame, n: int) -> None:
        """One recorded frame, pass ``n``: ids continue across passes, times are now."""
        stream, data = frame.payload["stream"], dict(frame.payload["data"])
        symbol = data["s"]
        now_ms = self.now_ms()
        shift = now_ms - data.get("E", now_ms)
        event = data.get("e")
        depth_span, trade_span, agg_span = self._spans.get(symbol, (0, 0, 0))
        if event == "depthUpdate":
            data["U"] += n * depth_span
            data["u"] += n * depth_span
            if data["u"] > self.exchange.books[symbol].update_id:
                self.exchange.apply_depth(symbol, _levels(data["b"]), _levels(data["a"]), update_id=data["u"])
        elif event == "aggTrade":
            data["a"] += n * agg_span
            data["f"] += n * trade_span
            data["l"] += n * trade_span
            data["T"] += shift
            price, qty = Decimal(data["p"]), Decimal(data["q"])
            self.stats.setdefault(symbol, TickerStats()).trade(price, qty, data["l"], data["T"])
            self.exchange.apply_trade(symbol, price, qty, "sell" if data["m"] else "buy")
        elif event == "kline":
            k = dict(data["k"])
            minute_shift = shift - shift % 60_000
            k["t"] += minute_shift
            k["T"] += minute_shift
            k["f"] += n * trade_span
            k["L"] += n * trade_span
            data["k"] = k
        elif "u" in data:  # bookTicker
            data["u"] += n * depth_span
        if "E" in data:
            data["E"] = now_ms
        self.hub.publish(stream.lower(), data)


def _step(filters: dict[str, dict[str, Any]]) -> Decimal:
    """The quantity step of market orders: MARKET_LOT_SIZE's if set, else LOT_SIZE's."""
    for name in ("MARKET_LOT_SIZE", "LOT_SIZE"):
        step = Decimal(filters.get(name, {}).get("stepSize", "0"))
        if step:
            return step
    return QUANTUM


def _levels(levels: list[list[str]]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(p), Decimal(q)) for p, q in levels]


def _replay_spans(frames: list[Frame]) -> dict[str, tuple[int, int, int]]:
    """Per symbol: how far depth update ids, trade ids and aggregate trade ids move per pass."""
    lo: dict[tuple[str, str], int] = {}
    hi: dict[tuple[str, str], int] = {}

    def seen(symbol: str, kind: str, first: int, last: int) -> None:
        lo[(symbol, kind)] = min(lo.get((symbol, kind), first), first)
        hi[(symbol, kind)] = max(hi.get((symbol, kind), last), last)

    for frame in frames:
        d = frame.payload["data"]
        if d.get("e") == "depthUpdate":
            seen(d["s"], "depth", d["U"], d["u"])
        elif d.get("e") == "aggTrade":
            seen(d["s"], "trade", d["f"], d["l"])
            seen(d["s"], "agg", d["a"], d["a"])
        elif d.get("e") == "kline":
            seen(d["s"], "trade", d["k"]["f"], d["k"]["L"])
    symbols = {s for s, _ in lo}
    span = lambda s, k: hi[(s, k)] - lo[(s, k)] + 1 if (s, k) in lo else 1  # noqa: E731
    return {s: (span(s, "depth"), span(s, "trade"), span(s, "agg")) for s in symbols}
