"""Upbit Open API v1 as the simulator speaks it.

REST under ``/v1`` (docs.upbit.com reference: paths, parameters, JSON shapes, error
names), public WebSocket ``/websocket/v1`` replayed from UPBIT.ws.62.0 (trade, orderbook;
DEFAULT or SIMPLE format, binary frames), private ``/websocket/v1/private`` (myOrder,
myAsset).

Requests are authenticated as the docs define it, with PyJWT and hashlib directly:
``Authorization: Bearer <JWT>`` signed HS256 or HS512 with the secret key; payload
``access_key``, ``nonce`` (never reused), and when there are parameters ``query_hash`` =
hex SHA512 of the query string (for a JSON body: its keys and values as ``k=v&...``,
lists as ``k[]=v``), ``query_hash_alg`` = SHA512.

Where the docs name no error (a repeated ``identifier``, 429/418 bodies) the simulator's
choice is stated at the constant that holds it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import quote, unquote

import jwt
from aiohttp import web

from services.simulator.clock import Clock
from services.simulator.config import Account, BanPolicy, UpbitSettings
from services.simulator.faults import note_order
from services.simulator.ledger import Ledger
from services.simulator.limits import RateLimits, Scope
from services.simulator.matching import ZERO, Exchange, FeeModel, Fill, Market, Order, OrderRejected, Wallet
from services.simulator.recorded import Frame, UpbitRecording
from services.simulator.replay import replay_forever
from services.simulator.streams import StreamClient
from services.simulator.venue import Venue, encode, json_response, parse_decimal

KST = timezone(timedelta(hours=9))
QUOTATION_GROUPS = {"/v1/market/all": "market", "/v1/ticker": "ticker", "/v1/orderbook": "orderbook"}
ORDER_GROUP_ROUTES = {("POST", "/v1/orders")}
DUPLICATE_IDENTIFIER = "duplicate_identifier"
"""Upbit documents that a used ``identifier`` is refused even after a failed order, but not
the error name; the simulator answers 400 with this name."""
REMAINING_REQ_MIN = 1800
"""The deprecated ``min`` field of Remaining-Req, a fixed value per the docs."""
STATE = {"new": "wait", "partially_filled": "wait", "filled": "done", "canceled": "cancel", "expired": "cancel"}

SIMPLE = {
    "type": "ty", "code": "cd", "timestamp": "tms", "trade_date": "td", "trade_time": "ttm",
    "trade_timestamp": "ttms", "trade_price": "tp", "trade_volume": "tv", "ask_bid": "ab",
    "prev_closing_price": "pcp", "change": "c", "change_price": "cp", "sequential_id": "sid",
    "stream_type": "st", "total_ask_size": "tas", "total_bid_size": "tbs", "orderbook_units": "obu",
    "ask_price": "ap", "bid_price": "bp", "ask_size": "as", "bid_size": "bs", "level": "lv",
    # myOrder
    "uuid": "uid", "order_type": "ot", "state": "s", "trade_uuid": "tuid", "price": "p", "avg_price": "ap",
    "volume": "v", "remaining_volume": "rv", "executed_volume": "ev", "trades_count": "tc",
    "reserved_fee": "rsf", "remaining_fee": "rmf", "paid_fee": "pf", "locked": "l", "executed_funds": "ef",
    "time_in_force": "tif", "trade_fee": "tf", "is_maker": "im", "identifier": "id", "smp_type": "smpt",
    "prevented_volume": "pv", "prevented_locked": "pl", "order_timestamp": "otms",
    # myAsset
    "asset_uuid": "astuid", "assets": "ast", "currency": "cu", "balance": "b", "asset_timestamp": "asttms",
}
"""DEFAULT field name -> SIMPLE abbreviation (docs.upbit.com websocket type references)."""
DEFAULT = {v: k for k, v in SIMPLE.items() if k not in ("avg_price",)}
"""SIMPLE -> DEFAULT for the recorded frames (trade and orderbook, where ``ap`` is ask_price)."""


class UpbitError(Exception):
    """An error answer: HTTP status and {"error": {"name": ..., "message": ...}}."""

    def __init__(self, status: int, name: str | int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{name}: {message}")
        self.status, self.name, self.message, self.headers = status, name, message, headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"name": self.name, "message": self.message}}


def validation_error(message: str) -> UpbitError:
    return UpbitError(400, "validation_error", message)


def num(d: Decimal | None) -> str | None:
    """Upbit's decimal strings: plain notation with at least one decimal ("100.0", "0.01")."""
    if d is None:
        return None
    text = format(d.normalize(), "f")
    return text if "." in text else text + ".0"


def kst_iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, KST).isoformat(timespec="seconds")


def simple(obj: Any) -> Any:
    """A DEFAULT-format event in SIMPLE abbreviations."""
    if isinstance(obj, dict):
        return {SIMPLE.get(k, k): simple(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [simple(v) for v in obj]
    return obj


def full(obj: Any) -> Any:
    """A recorded SIMPLE frame in DEFAULT names."""
    if isinstance(obj, dict):
        return {DEFAULT.get(k, k): full(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [full(v) for v in obj]
    return obj


def _hash_strings(params: list[tuple[str, str]]) -> set[str]:
    """The query strings a client may have hashed for these parameters (raw or encoded)."""
    raw = "&".join(f"{k}={v}" for k, v in params)
    encoded = "&".join(f"{quote(k, safe='[]')}={quote(v, safe='')}" for k, v in params)
    return {raw, encoded}


def body_params(body: dict[str, Any]) -> list[tuple[str, str]]:
    """A JSON body as the ordered (key, value) pairs its query_hash covers."""
    out = []
    for k, v in body.items():
        if v is None:
            continue
        for item in (v if isinstance(v, list) else [v]):
            key = f"{k}[]" if isinstance(v, list) else k
            out.append((key, "true" if item is True else "false" if item is False else str(item)))
    return out


@dataclass(slots=True)
class MarketStats:
    """What /v1/ticker reports, from the recorded and simulated trades."""

    opening: Decimal = ZERO
    high: Decimal = ZERO
    low: Decimal = ZERO
    last: Decimal = ZERO
    last_volume: Decimal = ZERO
    prev_close: Decimal = ZERO
    acc_volume: Decimal = ZERO
    acc_price: Decimal = ZERO
    trade_ts: int = 0
    """Milliseconds."""

    def trade(self, price: Decimal, volume: Decimal, ts_ms: int) -> None:
        if not self.opening:
            self.opening = self.high = self.low = price
        self.high, self.low = max(self.high, price), min(self.low, price)
        self.last, self.last_volume, self.trade_ts = price, volume, ts_ms
        self.acc_volume += volume
        self.acc_price += price * volume


@dataclass
class Subscription:
    """One WebSocket connection's request: types -> codes (empty = all), format."""

    types: dict[str, set[str]] = field(default_factory=dict)
    units: dict[str, int] = field(default_factory=dict)
    fmt: str = "DEFAULT"


class UpbitVenue(Venue):
    """The simulated Upbit: accounts, books, orders, limits and streams."""

    name = "upbit"

    def __init__(self, settings: UpbitSettings, recording: UpbitRecording, clock: Clock,
                 ledger: Ledger, ban: BanPolicy) -> None:
        super().__init__(clock, ledger, RateLimits(ban))
        self.settings = settings
        self.recording = recording
        self.market_list = recording.markets
        markets = {}
        for m in recording.markets:
            quote_, base = m["market"].split("-", 1)
            markets[m["market"]] = Market(m["market"], base, quote_)
        self.accounts = {a.api_key: a for a in settings.accounts}
        wallets = {a.name: Wallet(a.balances) for a in settings.accounts}
        rate = lambda m: settings.fees.get(m.quote, Decimal("0.0025"))  # noqa: E731
        self.exchange = Exchange(markets, wallets, FeeModel(maker=rate, taker=rate, in_quote=True),
                                 clock, self._on_update, self._on_balance)
        self.orders: dict[str, Order] = {}
        self.by_identifier: dict[tuple[str, str], Order] = {}
        self.identifiers: dict[str, set[str]] = {a.name: set() for a in settings.accounts}
        self.nonces: dict[str, set[str]] = {a.name: set() for a in settings.accounts}
        self.trade_uuids: dict[int, str] = {}
        self.stats: dict[str, MarketStats] = {}
        self.last_book_ts: dict[str, int] = {}
        for frame in recording.frames:  # books and statistics as of the end of the recording
            self._apply(frame.payload)

    # -- routes ---------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        for path, handler in (("/v1/market/all", self.market_all), ("/v1/ticker", self.ticker),
                              ("/v1/orderbook", self.orderbook)):
            app.router.add_get(path, self._quotation(handler))
        for method, path, handler in (
            ("GET", "/v1/accounts", self.accounts_list), ("POST", "/v1/orders", self.new_order),
            ("DELETE", "/v1/order", self.cancel_order), ("GET", "/v1/order", self.get_order),
            ("GET", "/v1/orders/open", self.open_orders), ("GET", "/v1/orders/closed", self.closed_orders),
        ):
            app.router.add_route(method, path, self._exchange(handler))
        app.router.add_get("/websocket/v1", self._ws)
        app.router.add_get("/websocket/v1/private", self._ws_private)

    def route_kind(self, method: str, path: str) -> str | None:
        if path == "/v1/orders" and method == "POST":
            return "place"
        if path == "/v1/order" and method == "DELETE":
            return "cancel"
        return None

    def error_body(self, status: int) -> bytes:
        return encode({"error": {"name": "server_error", "message": "Internal server error."}})

    def _quotation(self, handler: Any) -> Any:
        """A public route: per-IP group limit; decimals as JSON numbers, as Upbit quotes them."""

        async def route(request: web.Request) -> web.Response:
            headers: dict[str, str] = {}
            try:
                scope = self.limits.scope(f"ip:{request.remote}")
                self._admit(scope, QUOTATION_GROUPS[request.path], self.clock(), headers, quotation=True)
                result, status = await handler(request)
            except UpbitError as e:
                result, status = e.body(), e.status
                headers.update(e.headers)
            return json_response(result, status, headers, decimals_as_numbers=True)

        return route

    def _exchange(self, handler: Any) -> Any:
        """A private route: JWT, then the account's group limit (``order`` or ``default``)."""

        async def route(request: web.Request) -> web.Response:
            headers: dict[str, str] = {}
            try:
                account, params = await self._authenticate(request)
                group = "order" if (request.method, request.path) in ORDER_GROUP_ROUTES else "default"
                self._admit(self.limits.scope(f"account:{account.name}"), group, self.clock(), headers, quotation=False)
                result, status = await handler(request, account, params)
            except UpbitError as e:
                result, status = e.body(), e.status
                headers.update(e.headers)
            return json_response(result, status, headers)

        return route

    def _admit(self, scope: Scope, group: str, now: int, headers: dict[str, str], *, quotation: bool) -> None:
        """Per-second group limit: Remaining-Req on every answer, 429 over it, 418 when ignored."""
        limit = self.settings.rate_limits.get(group, 10 if quotation else 30)
        window = scope.window(group, limit, 1)
        ban = scope.arrive(now)
        if ban:
            raise UpbitError(418, 418 if quotation else "too_many_requests",
                             f"Your requests are blocked for {ban} seconds after repeated rate limit violations.",
                             {"Retry-After": str(ban)})
        over = not window.fits(now, 1)
        window.add(now, 1)
        headers["Remaining-Req"] = f"group={group}; min={REMAINING_REQ_MIN}; sec={max(0, limit - window.current(now))}"
        if over:
            retry_after = scope.limited(now, window)
            raise UpbitError(429, 429 if quotation else "too_many_requests", "Too many API requests.",
                             {"Retry-After": str(retry_after)})

    async def _authenticate(self, request: web.Request) -> tuple[Account, dict[str, Any]]:
        """Verify the Bearer JWT and its query_hash; returns the account and the parameters."""
        raw_query = request.rel_url.raw_query_string
        if request.method == "POST":
            text = await request.text()
            try:
                body = json.loads(text, parse_float=str, parse_int=str) if text else {}
            except ValueError:
                raise validation_error("The request body is not JSON.") from None
            if not isinstance(body, dict):
                raise validation_error("The request body must be a JSON object.")
            pairs = body_params(body)
            params: dict[str, Any] = {k: v for k, v in body.items() if v is not None}
            candidates = _hash_strings(pairs) if pairs else {""}
        else:
            pairs = [tuple(p.split("=", 1)) if "=" in p else (p, "") for p in raw_query.split("&") if p]
            params = {}
            for k, v in pairs:
                k, v = unquote(k), unquote(v.replace("+", " "))
                if k.endswith("[]"):
                    params.setdefault(k[:-2], []).append(v)
                else:
                    params[k] = v
            candidates = {raw_query, unquote(raw_query)}
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise UpbitError(401, "no_authorization_token", "Authorization token does not exist.")
        token = header[len("Bearer "):].strip()
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise UpbitError(401, "jwt_verification", "Failed to verify Jwt token.") from None
        account = self.accounts.get(str(claims.get("access_key", "")))
        if account is None:
            raise UpbitError(401, "invalid_access_key", "Invalid access key.")
        claims = self._verified(token, account)
        nonce = str(claims.get("nonce") or "")
        if not nonce:
            raise UpbitError(401, "jwt_verification", "Failed to verify Jwt token.")
        if nonce in self.nonces[account.name]:
            raise UpbitError(401, "nonce_used", "The nonce has already been used.")
        self.nonces[account.name].add(nonce)
        query_hash = claims.get("query_hash")
        if (pairs or query_hash) and not self._hash_matches(claims, candidates):
            raise UpbitError(401, "invalid_query_payload", "The Jwt query payload does not match the request.")
        return account, params

    @staticmethod
    def _verified(token: str, account: Account) -> dict[str, Any]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # short HMAC keys are the venue's choice, not ours
                return jwt.decode(token, account.secret, algorithms=["HS256", "HS512"])
        except jwt.InvalidTokenError:
            raise UpbitError(401, "jwt_verification", "Failed to verify Jwt token.") from None

    @staticmethod
    def _hash_matches(claims: dict[str, Any], candidates: set[str]) -> bool:
        alg = str(claims.get("query_hash_alg", "SHA512")).lower()
        if alg not in ("sha512", "sha256", "sha384"):
            return False
        given = str(claims.get("query_hash", "")).lower()
        return any(hashlib.new(alg, c.encode()).hexdigest() == given for c in candidates)

    # -- quotation --------------------------------------------------------------------------

    def _markets_param(self, request: web.Request) -> list[str]:
        text = request.query.get("markets", "")
        if not text:
            raise UpbitError(400, 400, "markets is missing.")
        names = [m.strip() for m in text.split(",") if m.strip()]
        if any(m not in self.exchange.markets for m in names):
            raise UpbitError(404, 404, "Code not found")
        return names

    async def market_all(self, request: web.Request) -> tuple[Any, int]:
        if request.query.get("is_details") == "true":
            return [m | {"market_warning": "NONE"} for m in self.market_list], 200
        return self.market_list, 200

    async def orderbook(self, request: web.Request) -> tuple[Any, int]:
        out = []
        for market in self._markets_param(request):
            book = self.exchange.books[market]
            asks, bids = book.levels("sell", 15), book.levels("buy", 15)
            units = [{"ask_price": a[0] if a else ZERO, "bid_price": b[0] if b else ZERO,
                      "ask_size": a[1] if a else ZERO, "bid_size": b[1] if b else ZERO}
                     for a, b in zip(asks + [None] * (15 - len(asks)), bids + [None] * (15 - len(bids)))
                     if a or b]
            out.append({"market": market, "timestamp": self.now_ms(),
                        "total_ask_size": sum((q for _, q in asks), ZERO),
                        "total_bid_size": sum((q for _, q in bids), ZERO),
                        "orderbook_units": units, "level": 0})
        return out, 200

    async def ticker(self, request: web.Request) -> tuple[Any, int]:
        out = []
        for market in self._markets_param(request):
            st = self.stats.get(market, MarketStats())
            change = st.last - st.prev_close if st.prev_close else ZERO
            rate = (change / st.prev_close).quantize(Decimal("0.00000001")) if st.prev_close else ZERO
            ts = datetime.fromtimestamp(st.trade_ts / 1000, timezone.utc) if st.trade_ts else None
            out.append({
                "market": market,
                "trade_date": ts.strftime("%Y%m%d") if ts else None,
                "trade_time": ts.strftime("%H%M%S") if ts else None,
                "trade_date_kst": ts.astimezone(KST).strftime("%Y%m%d") if ts else None,
                "trade_time_kst": ts.astimezone(KST).strftime("%H%M%S") if ts else None,
                "trade_timestamp": st.trade_ts, "opening_price": st.opening, "high_price": st.high,
                "low_price": st.low, "trade_price": st.last, "prev_closing_price": st.prev_close,
                "change": "RISE" if change > 0 else "FALL" if change < 0 else "EVEN",
                "change_price": abs(change), "change_rate": abs(rate),
                "signed_change_price": change, "signed_change_rate": rate, "trade_volume": st.last_volume,
                "acc_trade_price": st.acc_price, "acc_trade_price_24h": st.acc_price,
                "acc_trade_volume": st.acc_volume, "acc_trade_volume_24h": st.acc_volume,
                "highest_52_week_price": st.high, "highest_52_week_date": ts.strftime("%Y-%m-%d") if ts else None,
                "lowest_52_week_price": st.low, "lowest_52_week_date": ts.strftime("%Y-%m-%d") if ts else None,
                "timestamp": self.now_ms(),
            })
        return out, 200

    # -- exchange ---------------------------------------------------------------------------

    async def accounts_list(self, request: web.Request, account: Account, params: dict[str, Any]) -> tuple[Any, int]:
        wallet = self.exchange.wallets[account.name]
        return [{"currency": a, "balance": num(wallet.available(a)), "locked": num(wallet.locked.get(a, ZERO)),
                 "avg_buy_price": "0", "avg_buy_price_modified": False, "unit_currency": "KRW"}
                for a in wallet.assets() if wallet.available(a) or wallet.locked.get(a)], 200

    def _number(self, params: dict[str, Any], name: str) -> Decimal | None:
        value = params.get(name)
        if value is None or value == "":
            return None
        d = parse_decimal(str(value))  # the body was read with numbers kept as their text
        if d is None or d <= 0:
            raise validation_error(f"{name} does not have a valid value")
        return d

    def _parse_order(self, account: Account, p: dict[str, Any]) -> Order:
        market, side, ord_type = p.get("market"), p.get("side"), p.get("ord_type")
        if not market or not side or not ord_type:
            raise validation_error("market, side and ord_type are required")
        if market not in self.exchange.markets:
            raise validation_error("market does not have a valid value")
        if side not in ("bid", "ask"):
            raise validation_error("side does not have a valid value")
        create_error = UpbitError(400, "create_bid_error" if side == "bid" else "create_ask_error",
                                  "The order request does not fit its ord_type.")
        volume, price, tif = self._number(p, "volume"), self._number(p, "price"), p.get("time_in_force")
        if tif not in (None, "ioc", "fok", "post_only"):
            raise validation_error("time_in_force does not have a valid value")
        if ord_type == "limit":
            if volume is None or price is None:
                raise create_error
        elif ord_type == "price":
            if side != "bid" or price is None or volume is not None or tif:
                raise create_error
        elif ord_type == "market":
            if side != "ask" or volume is None or price is not None or tif:
                raise create_error
        elif ord_type == "best":
            if tif not in ("ioc", "fok") or (price is None if side == "bid" else volume is None):
                raise create_error
        else:
            raise validation_error("ord_type does not have a valid value")
        if tif == "post_only" and ord_type != "limit":
            raise create_error
        order = Order(order_id=str(uuid.uuid4()), client_order_id=str(p.get("identifier") or ""),
                      account=account.name, symbol=market, side="buy" if side == "bid" else "sell",
                      order_type="limit" if ord_type == "limit" else "market",
                      time_in_force={"ioc": "ioc", "fok": "fok"}.get(tif or "", "gtc"),
                      post_only=tif == "post_only", venue_fields={"ord_type": ord_type, "time_in_force": tif})
        if ord_type == "limit":
            order.price, order.quantity = price, volume
        elif side == "bid":  # price / best bid: spend ``price`` of the quote currency
            order.quote_quantity = price
            order.venue_fields["funds"] = price
        else:
            order.quantity = volume
        if ord_type == "best":  # best: only the best opposite level
            best = self.exchange.books[market].best("sell" if order.side == "buy" else "buy")
            order.price = best[0] if best else None
        self._check_min_total(order, side)
        return order

    def _check_min_total(self, order: Order, side: str) -> None:
        minimum = self.settings.min_total.get(self.exchange.markets[order.symbol].quote, ZERO)
        if order.quote_quantity is not None:
            total = order.quote_quantity
        elif order.price is not None:
            total = order.price * order.quantity
        else:
            best = self.exchange.books[order.symbol].best("buy")
            total = best[0] * order.quantity if best else None
        if total is not None and total < minimum:
            raise UpbitError(400, f"under_min_total_{side}", f"The order total must be at least {minimum}.")

    async def new_order(self, request: web.Request, account: Account, params: dict[str, Any]) -> tuple[Any, int]:
        identifier = str(params.get("identifier") or "")
        try:
            if identifier:
                if identifier in self.identifiers[account.name]:
                    raise UpbitError(400, DUPLICATE_IDENTIFIER, "The identifier has already been used.")
                self.identifiers[account.name].add(identifier)  # used up even if the order fails
            order = self._parse_order(account, params)
            if order.post_only and self.exchange.would_take(order):
                order.status = "canceled"  # post_only at a taker price: canceled, nothing executes
                order.ts_created = order.ts_updated = self.clock()
            else:
                try:
                    self.exchange.place(order)
                except OrderRejected:
                    side = "bid" if order.side == "buy" else "ask"
                    raise UpbitError(400, f"insufficient_funds_{side}", "Insufficient balance for the order.") from None
        except UpbitError as e:
            self.ledger.rejected(self.name, account.name, identifier, str(e.name), e.message, self.clock())
            raise
        self.orders[order.order_id] = order
        if identifier:
            self.by_identifier[(account.name, identifier)] = order
        self.ledger.accepted(self.name, order)
        note_order(order)
        return self._order_json(order), 201

    def _find(self, account: Account, params: dict[str, Any]) -> Order:
        order_uuid, identifier = params.get("uuid"), params.get("identifier")
        if not order_uuid and not identifier:
            raise validation_error("uuid or identifier is required")
        order = self.orders.get(order_uuid) if order_uuid else self.by_identifier.get((account.name, identifier))
        if order is None or order.account != account.name:
            raise UpbitError(404, "order_not_found", "Order not found.")
        return order

    async def cancel_order(self, request: web.Request, account: Account, params: dict[str, Any]) -> tuple[Any, int]:
        order = self._find(account, params)
        if not order.is_open:
            raise UpbitError(404, "order_not_found", "Order not found.")
        before = self._order_json(order)  # the venue answers with the order as it was (cancel is asynchronous)
        self.exchange.cancel(order)
        return before, 200

    async def get_order(self, request: web.Request, account: Account, params: dict[str, Any]) -> tuple[Any, int]:
        return self._order_json(self._find(account, params), trades=True), 200

    def _list(self, account: Account, params: dict[str, Any], open_: bool) -> list[dict[str, Any]]:
        states = params.get("states") or ([params["state"]] if params.get("state") else None)
        limit = int(params.get("limit") or 100)
        if not 1 <= limit <= 1000:
            raise validation_error("limit does not have a valid value")
        out = [o for o in self.orders.values()
               if o.account == account.name and o.is_open == open_
               and (not params.get("market") or o.symbol == params["market"])
               and (not states or STATE[o.status] in states)]
        out.sort(key=lambda o: o.ts_created, reverse=params.get("order_by", "desc") == "desc")
        return [self._order_json(o) for o in out[:limit]]

    async def open_orders(self, request: web.Request, account: Account, params: dict[str, Any]) -> tuple[Any, int]:
        return self._list(account, params, True), 200

    async def closed_orders(self, request: web.Request, account: Account, params: dict[str, Any]) -> tuple[Any, int]:
        return self._list(account, params, False), 200

    def _fee_rate(self, order: Order) -> Decimal:
        return self.settings.fees.get(self.exchange.markets[order.symbol].quote, Decimal("0.0025"))

    def _order_json(self, o: Order, *, trades: bool = False) -> dict[str, Any]:
        ord_type = o.venue_fields["ord_type"]
        remaining_fee = ZERO
        if o.side == "buy" and o.is_open and o.price is not None and o.quantity is not None:
            remaining_fee = (o.remaining * o.price * self._fee_rate(o)).quantize(Decimal("0.00000001"))
        out: dict[str, Any] = {
            "uuid": o.order_id, "side": "bid" if o.side == "buy" else "ask", "ord_type": ord_type,
            "price": num(o.venue_fields.get("funds") or o.price), "state": STATE[o.status], "market": o.symbol,
            "created_at": kst_iso(o.ts_created), "volume": num(o.quantity),
            "remaining_volume": num(o.remaining) if o.quantity is not None else None,
            "reserved_fee": num(o.reserved_fee), "remaining_fee": num(remaining_fee), "paid_fee": num(o.fees),
            "locked": num(o.locked), "executed_volume": num(o.filled), "executed_funds": num(o.filled_quote),
            "trades_count": len(o.fills), "prevented_volume": "0", "prevented_locked": "0",
        }
        if o.venue_fields.get("time_in_force"):
            out["time_in_force"] = o.venue_fields["time_in_force"]
        if o.client_order_id:
            out["identifier"] = o.client_order_id
        if trades:
            out["trades"] = [{
                "market": o.symbol, "uuid": self._trade_uuid(f), "price": num(f.price), "volume": num(f.quantity),
                "funds": num(f.quote_quantity), "trend": None, "created_at": kst_iso(f.ts),
                "side": "bid" if o.side == "buy" else "ask",
            } for f in o.fills]
        return out

    def _trade_uuid(self, fill: Fill) -> str:
        return self.trade_uuids.setdefault(fill.trade_id, str(uuid.uuid4()))

    # -- private stream ---------------------------------------------------------------------

    def _on_update(self, order: Order, fill: Fill | None, kind: str) -> None:
        if fill is not None:
            self.stats.setdefault(order.symbol, MarketStats()).trade(fill.price, fill.quantity, fill.ts // 1_000_000)
        topic = f"user:{order.account}"
        if not self.hub.has(topic):
            return
        state = {"new": "wait", "trade": "trade", "canceled": "cancel", "expired": "cancel"}[kind]
        self.hub.publish(topic, ("myOrder", order.symbol, self._my_order(order, fill, state)))
        if kind == "trade" and order.status == "filled":
            self.hub.publish(topic, ("myOrder", order.symbol, self._my_order(order, None, "done")))

    def _my_order(self, o: Order, fill: Fill | None, state: str) -> dict[str, Any]:
        now = self.now_ms()
        return {
            "type": "myOrder", "code": o.symbol, "uuid": o.order_id, "ask_bid": "BID" if o.side == "buy" else "ASK",
            "order_type": o.venue_fields["ord_type"], "state": state,
            "trade_uuid": self._trade_uuid(fill) if fill else None,
            "price": fill.price if fill else (o.venue_fields.get("funds") or o.price),
            "avg_price": o.average_price, "volume": fill.quantity if fill else o.quantity,
            "remaining_volume": o.remaining if o.quantity is not None else None, "executed_volume": o.filled,
            "trades_count": len(o.fills), "reserved_fee": o.reserved_fee, "remaining_fee": ZERO,
            "paid_fee": o.fees, "locked": o.locked, "executed_funds": o.filled_quote,
            "time_in_force": o.venue_fields.get("time_in_force"), "trade_fee": fill.fee if fill else None,
            "is_maker": fill.is_maker if fill else None, "identifier": o.client_order_id or None,
            "smp_type": None, "prevented_volume": ZERO, "prevented_locked": ZERO,
            "trade_timestamp": fill.ts // 1_000_000 if fill else None, "order_timestamp": o.ts_created // 1_000_000,
            "timestamp": now, "stream_type": "REALTIME",
        }

    def _on_balance(self, account: str, assets: list[str]) -> None:
        topic = f"user:{account}"
        if not self.hub.has(topic):
            return
        wallet = self.exchange.wallets[account]
        now = self.now_ms()
        self.hub.publish(topic, ("myAsset", "", {
            "type": "myAsset", "asset_uuid": str(uuid.uuid4()),
            "assets": [{"currency": a, "balance": wallet.available(a), "locked": wallet.locked.get(a, ZERO)} for a in assets],
            "asset_timestamp": now, "timestamp": now, "stream_type": "REALTIME"}))

    # -- WebSocket --------------------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve_ws(request, None)

    async def _ws_private(self, request: web.Request) -> web.StreamResponse:
        try:
            account, _ = await self._authenticate(request)
        except UpbitError as e:
            return json_response(e.body(), e.status)
        return await self._serve_ws(request, account)

    async def _serve_ws(self, request: web.Request, account: Account | None) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        sub = Subscription()

        def render(topic: str, event: Any) -> bytes | None:
            kind, code, payload = event
            codes = sub.types.get(kind)
            if codes is None or (codes and code not in codes):
                return None
            if kind == "orderbook" and code in sub.units:
                payload = payload | {"orderbook_units": payload["orderbook_units"][: sub.units[code]]}
            return self._frame(payload, sub.fmt)

        client = StreamClient(ws, render)
        await self.hub.serve(client, lambda c, data: self._ws_request(c, data, sub, account))
        return ws

    @staticmethod
    def _frame(payload: dict[str, Any], fmt: str) -> bytes:
        obj = simple(payload) if fmt.startswith("SIMPLE") else payload
        if fmt.endswith("_LIST"):
            obj = [obj]
        return encode(obj, decimals_as_numbers=True)

    def _ws_request(self, client: StreamClient, data: str | bytes, sub: Subscription, account: Account | None) -> None:
        """[{"ticket": ...}, {"type": ..., "codes": [...]}, ..., {"format": ...}] replaces the subscription."""
        def error(name: str, message: str) -> None:
            client.send(encode({"error": {"name": name, "message": message}}))

        if data in ("PING", b"PING"):  # the docs' keep-alive message
            return client.send(encode({"status": "UP"}))
        try:
            request = json.loads(data)
        except ValueError:
            return error("WRONG_FORMAT", "The request is not JSON.")
        if not isinstance(request, list) or not all(isinstance(x, dict) for x in request):
            return error("WRONG_FORMAT", "The request must be a JSON array of objects.")
        if not any("ticket" in x for x in request):
            return error("NO_TICKET", "The request has no ticket.")
        types = [x for x in request if "type" in x]
        if not types:
            return error("NO_TYPE", "The request has no type.")
        allowed = {"myOrder", "myAsset"} if account else {"trade", "orderbook"}
        sub.types.clear()
        sub.units.clear()
        sub.fmt = next((x["format"] for x in request if "format" in x), "DEFAULT")
        for t in types:
            if t["type"] not in allowed:
                return error("INVALID_PARAM", f"type {t['type']} is not available on this endpoint.")
            codes = set()
            for code in t.get("codes", []):
                name, _, units = code.partition(".")
                codes.add(name)
                if units.isdigit():
                    sub.units[name] = int(units)
            if not codes and t["type"] in ("trade", "orderbook"):
                return error("NO_CODES", "The request has no codes.")
            sub.types[t["type"]] = codes
            if not t.get("isOnlyRealtime") and t["type"] in ("orderbook", "trade"):
                for code in codes:
                    snap = self._snapshot(t["type"], code)
                    if snap is not None:
                        client.offer("public", (t["type"], code, snap))
            if t.get("isOnlySnapshot"):
                sub.types.pop(t["type"])
        client.topics = {f"user:{account.name}"} if account else {"public"}
        self.hub.touched()

    def _snapshot(self, kind: str, code: str) -> dict[str, Any] | None:
        """The current orderbook or last trade of a market, as a SNAPSHOT event."""
        if kind == "orderbook":
            book = self.exchange.books[code] if code in self.exchange.books else None
            if book is None:
                return None
            asks, bids = book.levels("sell", 15), book.levels("buy", 15)
            units = [{"ask_price": a[0], "bid_price": b[0], "ask_size": a[1], "bid_size": b[1]} for a, b in zip(asks, bids)]
            return {"type": "orderbook", "code": code, "timestamp": self.now_ms(),
                    "total_ask_size": sum((q for _, q in asks), ZERO), "total_bid_size": sum((q for _, q in bids), ZERO),
                    "orderbook_units": units, "stream_type": "SNAPSHOT"}
        st = self.stats.get(code)
        if st is None or not st.trade_ts:
            return None
        ts = datetime.fromtimestamp(st.trade_ts / 1000, timezone.utc)
        return {"type": "trade", "code": code, "timestamp": self.now_ms(), "trade_date": ts.strftime("%Y-%m-%d"),
                "trade_time": ts.strftime("%H:%M:%S"), "trade_timestamp": st.trade_ts, "trade_price": st.last,
                "trade_volume": st.last_volume, "ask_bid": "BID", "prev_closing_price": st.prev_close,
                "change": "EVEN", "change_price": ZERO, "sequential_id": st.trade_ts * 1000,
                "stream_type": "SNAPSHOT"}

    # -- replay -----------------------------------------------------------------------------

    def start_replay(self, speed: float) -> None:
        self._replay = asyncio.create_task(replay_forever(self.recording.frames, speed, self._emit))

    def _apply(self, d: dict[str, Any]) -> None:
        """A recorded (SIMPLE) frame's effect on books, resting orders and statistics."""
        code = d["cd"]
        if code not in self.exchange.books:
            return
        if d["ty"] == "orderbook":
            units = d["obu"]
            self.exchange.apply_depth(code, [(u["bp"], u["bs"]) for u in units], [(u["ap"], u["as"]) for u in units],
                                      snapshot=True)
        elif d["ty"] == "trade":
            st = self.stats.setdefault(code, MarketStats())
            if not st.prev_close:
                st.prev_close = d["pcp"]
            st.trade(d["tp"], d["tv"], d["ttms"])
            self.exchange.apply_trade(code, d["tp"], d["tv"], "buy" if d["ab"] == "BID" else "sell")

    def _emit(self, frame: Frame, n: int) -> None:
        """One recorded frame on pass ``n``, with its times moved to now."""
        d = dict(frame.payload)
        now = self.now_ms()
        shift = now - d["tms"]
        d["tms"] = now
        if d["ty"] == "trade":
            d["ttms"] += shift
            d["sid"] += shift * 1000
            ts = datetime.fromtimestamp(d["ttms"] / 1000, timezone.utc)
            d["td"], d["ttm"] = ts.strftime("%Y-%m-%d"), ts.strftime("%H:%M:%S")
        self._apply(d)
        self.hub.publish("public", (full(d)["type"], d["cd"], full(d)))
