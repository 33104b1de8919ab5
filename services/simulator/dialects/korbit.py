"""Korbit Open API v2 as the simulator speaks it, on the simulator core.

Followed: docs.korbit.co.kr (Korean reference, which the docs say prevails over the English
one): 요청 보내기 (GET/DELETE parameters in the query, POST as an
``application/x-www-form-urlencoded`` body), 요청 수 제한 (public 50/s per IP; 주문하기
30/s, 주문 취소하기 30/s, other private 50/s per account; 429 with ``Retry-After: 1``;
``Ratelimit: limit=50, remaining=48, reset=1`` and ``Ratelimit-Policy: 50;w=1`` on replies),
서명된 요청 보내기 / HMAC-SHA256 서명 (``X-KAPI-KEY``; hex HMAC-SHA256 of the sent
parameters with ``timestamp``, ``signature`` appended last; query + body signed as their
concatenation without ``&``; accepted when ``serverTime - timestamp <= recvWindow`` (default
5000, max 60000) and ``timestamp < serverTime + 1000``, else EXCEED_TIME_WINDOW), the
endpoint pages (현재가, 호가, 거래지원 목록, 서버 시각, 개별/미체결/최근 주문 조회, 최근 체결
내역 조회, 주문하기, 주문 취소하기, 자산 현황) for parameter names and reply shapes, and their
error lists (NO_BALANCE, DUPLICATE_CLIENT_ORDER_ID, INVALID_CURRENCY_PAIR, BAD_REQUEST,
PRICE_TICK_SIZE_INVALID, ORDER_VALUE_TOO_SMALL/LARGE, ORDER_NOT_FOUND, ORDER_ALREADY_*).
The error envelope ``{"success": false, "error": {"code": <status>, "message": <CODE>}}``
follows the official korbit-cli (``internal/apiclient/client.go`` reads the symbolic code
from ``error.message``; its tests use ``{"code": 422, "message": ...}``) and the docs'
WebSocket example (``errorJson.error?.message``: EXCEED_TIME_WINDOW, KEY_NOT_FOUND).
The private WebSocket (``/v2/private``: myOrder, myTrade) is the mixin
:class:`~services.simulator.dialects.korbit_private.KorbitPrivate`, authenticated by the
same ``authenticate`` as the signed routes.

Where the simulator differs from Korbit:
- HMAC-SHA256 keys only (Korbit also takes Ed25519 keys, base64 signatures); no IP allowlist
  or key permissions.
- HTTP statuses of the error codes are not documented: 400 for request/order errors, 401 for
  KEY_NOT_FOUND / INVALID_SIGNATURE / EXCEED_TIME_WINDOW (INVALID_SIGNATURE's name is not
  documented either), 404 ORDER_NOT_FOUND, 429 TOO_MANY_REQUESTS; 5xx bodies are guesses.
- Orders are accepted synchronously (no ``pending``; no TRY_AGAIN on cancel). As at Korbit
  ("no penalty beyond the 429") a client that keeps sending is never banned.
- A refused 주문하기 spends its clientOrderId, and NO_BALANCE comes before
  ORDER_VALUE_TOO_LARGE (the docs are silent on both).
- One tick (1000 KRW, the ``>= 1,000,000`` row of 호가 정책) per market, not the price table;
  ``best`` (BBO) orders are refused as BAD_REQUEST and the price-protection flags ignored.
- A clientOrderId is used up for good (core policy ``forever``); Korbit frees it about 3
  days after the order ends. Order queries do not forget orders after 3 days / 36 hours.
- Fees are the docs' example rates for every account (real rates are per member).
- Tickers are built from the book: open/high/low/close = last trade or mid, volumes 0.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from services.simulator.config import Account
from services.simulator.core import MarketSpec, Refusal
from services.simulator.dialect import Dialect, Limit, Req, Route
from services.simulator.dialects.korbit_private import KorbitPrivate
from services.simulator.limits import Scope, Window
from services.simulator.matching import Fill, Order

MS = 1_000_000
_BALANCES = {a: Decimal(n) for a, n in {"KRW": "100000000000", "BTC": "100", "ETH": "1000"}.items()}
KORBIT_CODE = re.compile(r"([A-Z_]+): ")
CLIENT_ORDER_ID = re.compile(r"[0-9a-zA-Z.:_-]{1,36}")
MAX_ORDER_VALUE = Decimal("1000000000")  # ORDER_VALUE_TOO_LARGE: "수량*가격을 10억원 이하로"
STATUS = {"new": "open", "partially_filled": "partiallyFilled", "filled": "filled"}
REFUSALS: dict[str, tuple[int, str]] = {
    "bad_request": (400, "BAD_REQUEST"), "unknown_symbol": (400, "INVALID_CURRENCY_PAIR"),
    "bad_key": (401, "KEY_NOT_FOUND"), "bad_signature": (401, "INVALID_SIGNATURE"),
    "expired": (401, "EXCEED_TIME_WINDOW"), "nonce": (401, "EXCEED_TIME_WINDOW"),
    "insufficient_balance": (400, "NO_BALANCE"), "unknown_order": (404, "ORDER_NOT_FOUND"),
    "duplicate_order": (400, "DUPLICATE_CLIENT_ORDER_ID"), "tick_size": (400, "PRICE_TICK_SIZE_INVALID"),
    "lot_size": (400, "BAD_REQUEST"), "min_quantity": (400, "BAD_REQUEST"),
    "min_notional": (400, "ORDER_VALUE_TOO_SMALL"),
    "order_closed": (400, "ORDER_ALREADY_CANCELED"), "rate_limited": (429, "TOO_MANY_REQUESTS"),
    "banned": (429, "TOO_MANY_REQUESTS"), "maintenance": (503, "SERVICE_UNAVAILABLE"),
}


def text(d: Decimal) -> str:
    """A decimal as Korbit writes it: plain digits, no exponent, no trailing zeros."""
    s = format(d, "f")
    return s.rstrip("0").rstrip(".") if "." in s else s


def closed_code(order: Order) -> str:
    """ORDER_ALREADY_* of an order that is no longer open (주문 취소하기 오류 코드)."""
    if order.status == "filled":
        return "ORDER_ALREADY_FILLED"
    return "ORDER_ALREADY_EXPIRED" if order.status == "expired" and not order.filled else "ORDER_ALREADY_CANCELED"


class KorbitDialect(KorbitPrivate, Dialect):
    name = "korbit"
    WEBSOCKET = True  # the private stream (services.simulator.dialects.korbit_private)
    LIMITS = {"public": Limit(50, 1, "ip"), "order": Limit(30, 1, "account"),
              "cancel": Limit(30, 1, "account"), "private": Limit(50, 1, "account")}
    ROUTES = [
        Route("GET", "/v2/time", "server_time", limits=("public",)),
        Route("GET", "/v2/tickers", "tickers", limits=("public",)),
        Route("GET", "/v2/orderbook", "orderbook", limits=("public",)),
        Route("GET", "/v2/currencyPairs", "currency_pairs", limits=("public",)),
        Route("POST", "/v2/orders", "place", signed=True, limits=("order",), kind="place"),
        Route("DELETE", "/v2/orders", "cancel", signed=True, limits=("cancel",), kind="cancel"),
        Route("GET", "/v2/orders", "order", signed=True, limits=("private",)),
        Route("GET", "/v2/openOrders", "open_orders", signed=True, limits=("private",)),
        Route("GET", "/v2/allOrders", "all_orders", signed=True, limits=("private",)),
        Route("GET", "/v2/balance", "balance", signed=True, limits=("private",)),
        Route("GET", "/v2/myTrades", "my_trades", signed=True, limits=("private",)),
    ]
    # BTC-KRW, the book of the replayed recording: tick 1000 KRW (호가 정책 조회, the
    # ">= 1000000" row), 8 decimals of BTC, ORDER_VALUE_TOO_SMALL below 5,000 KRW (주문하기)
    MARKETS = [MarketSpec("BTC-KRW", "btc_krw", Decimal("1000"), Decimal("0.00000001"), Decimal(0), Decimal("5000"))]
    # 거래수수료율 조회 example for btc_krw: makerFeeRate 0, takerFeeRate 0.0015, buyFeeCurrency btc,
    # sellFeeCurrency krw: the fee is taken from the asset received
    MAKER_FEE, TAKER_FEE = Decimal("0"), Decimal("0.0015")
    FEE_IN_QUOTE = False
    CLIENT_IDS = "forever"  # "동일한 clientOrderId로 여러 번 요청해도 한 번만 처리되며"
    DEFAULT_ACCOUNTS = [
        Account(name="demo", api_key="sim-korbit-demo-key", secret="sim-korbit-demo-secret-00000000000000000000", balances=_BALANCES),
        Account(name="taker", api_key="sim-korbit-taker-key", secret="sim-korbit-taker-secret-0000000000000000000", balances=_BALANCES),
    ]
    """Paper accounts of the simulator (not anyone's secrets): ``demo`` for strategies and
    the demo, ``taker`` for the other side of the market in tests."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.core.post_only_taking = "cancel"  # po: "바로 체결되는 상황이라면 주문이 취소됩니다"
        self.core.describe = lambda r: (self.code(r)[1], KORBIT_CODE.sub("", r.detail, count=1) or r.kind)
        self.init_private()

    def add_ws_routes(self, app: web.Application) -> None:
        self.add_private_route(app)

    # -- authentication, refusals, headers -----------------------------------------------

    async def authenticate(self, req: Req) -> Account:
        account = self.core.account(req.request.headers.get("X-KAPI-KEY", ""))
        if req.method == "POST" and req.body and not req.request.content_type.endswith("x-www-form-urlencoded"):
            raise Refusal("bad_request", "POST parameters must be application/x-www-form-urlencoded")
        signed, signature = [], None
        for part in (req.raw_query, req.text if req.method == "POST" else ""):
            pieces = [p for p in part.split("&") if p]
            signature = next((p[len("signature="):] for p in pieces if p.startswith("signature=")), signature)
            signed.append("&".join(p for p in pieces if not p.startswith("signature=")))
        if not signature:
            raise Refusal("bad_signature", "signature missing")
        expected = hmac.new(account.secret.encode(), "".join(signed).encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
            raise Refusal("bad_signature", "signature does not match")
        params = self.params(req)
        window = self.integer(params, "recvWindow", 5000)
        if not 0 < window <= 60000:
            raise Refusal("bad_request", "recvWindow must be at most 60000")
        if "timestamp" not in params:
            raise Refusal("bad_request", "timestamp missing")
        self.core.within(self.integer(params, "timestamp", 0), window, 1000)
        return account

    @staticmethod
    def code(refusal: Refusal) -> tuple[int, str]:
        """(HTTP status, Korbit error code) of a refusal."""
        status, code = REFUSALS.get(refusal.kind, (400, "BAD_REQUEST"))
        named = KORBIT_CODE.match(refusal.detail)  # a Korbit code the handler named
        return status, named.group(1) if named else code

    def refuse(self, refusal: Refusal, req: Req) -> tuple[int, Any, dict[str, str]]:
        status, code = self.code(refusal)
        headers = {"Retry-After": str(max(1, refusal.retry_after or 1))} if status == 429 else {}
        return status, {"success": False, "error": {"code": status, "message": code}}, headers

    def server_error(self, status: int) -> Any:
        code = {429: "TOO_MANY_REQUESTS", 503: "SERVICE_UNAVAILABLE", 504: "GATEWAY_TIMEOUT"}.get(status, "INTERNAL_SERVER_ERROR")
        return {"success": False, "error": {"code": status, "message": code}}

    def usage_headers(self, req: Req, windows: list[tuple[Limit, Window]]) -> dict[str, str]:
        if not windows:
            return {}
        limit, window = windows[-1]  # the route's own limit (account-scoped ones are counted last)
        window.roll(req.now)
        reset = max(1, -(-(window.start + window.interval_s * 1_000_000_000 - req.now) // 1_000_000_000))
        return {"Ratelimit": f"limit={window.limit}, remaining={max(0, window.limit - window.used)}, reset={reset}",
                "Ratelimit-Policy": f"{window.limit};w={limit.interval_s}"}

    @staticmethod
    def _limited(scope: Scope, window: Window, now: int) -> int:
        # 요청 수 제한: "the only disadvantage of exceeding the limit is not getting correct
        # replies until it resets": a 429, never a ban for clients that keep sending
        return scope.limited(now, window, backoff=False)

    # -- request parameters ----------------------------------------------------------------

    @staticmethod
    def params(req: Req) -> dict[str, str]:
        return {**req.query(), **(req.form() if req.method == "POST" else {})}

    @staticmethod
    def integer(params: dict[str, str], name: str, default: int) -> int:
        value = params.get(name)
        if value is None or value == "":
            return default
        if not (value.isascii() and value.isdigit()):
            raise Refusal("bad_request", f"{name} must be a number")
        return int(value)

    @staticmethod
    def decimal(params: dict[str, str], name: str) -> Decimal | None:
        value = params.get(name)
        if value is None:
            return None
        try:
            d = Decimal(value)
        except InvalidOperation:
            raise Refusal("bad_request", f"{name} is not a number") from None
        if not d.is_finite() or d <= 0:
            raise Refusal("bad_request", f"{name} must be positive")
        return d

    def market(self, params: dict[str, str]) -> MarketSpec:
        if not params.get("symbol"):
            raise Refusal("bad_request", "symbol missing")
        return self.core.spec(params["symbol"])

    def lookup(self, req: Req) -> Order:
        """The order of ``orderId`` or ``clientOrderId`` (one is required) in ``symbol``."""
        params = self.params(req)
        spec = self.market(params)
        order_id, client_order_id = params.get("orderId"), params.get("clientOrderId")
        if not order_id and not client_order_id:
            raise Refusal("bad_request", "orderId or clientOrderId is required")
        order = self.core.find(req.account, order_id=order_id or None, client_order_id=client_order_id)  # type: ignore[arg-type]
        if order.symbol != spec.symbol:
            raise Refusal("unknown_order", f"no such order in {spec.venue_symbol}")
        return order

    # -- replies ---------------------------------------------------------------------------

    def render(self, o: Order, *, listing: bool = False) -> dict[str, Any]:
        """An order as 개별 주문 조회 returns it (미체결 주문 조회 rows carry no symbol, no timeInForce)."""
        d: dict[str, Any] = {"orderId": int(o.order_id)}
        if o.client_order_id:
            d["clientOrderId"] = o.client_order_id
        if not listing:
            d["symbol"] = self.core.markets[o.symbol].venue_symbol
        d["orderType"], d["side"] = o.order_type, o.side
        if not listing:
            d["timeInForce"] = "po" if o.post_only else o.time_in_force
        if o.filled:
            d["avgPrice"] = text(o.average_price.quantize(Decimal("0.00000001")))
        for key, value in (("price", o.price), ("qty", o.quantity), ("amt", o.quote_quantity)):
            if value is not None:
                d[key] = text(value)
        d["filledQty"], d["filledAmt"] = text(o.filled), text(o.filled_quote)
        d["createdAt"] = o.ts_created // MS
        if o.fills:
            d["lastFilledAt"] = o.fills[-1].ts // MS
        ended = "partiallyFilledCanceled" if o.filled else ("canceled" if o.status == "canceled" else "expired")
        d["status"] = STATUS.get(o.status, ended)
        return d

    @staticmethod
    def ok(data: Any = None) -> dict[str, Any]:
        return {"success": True} if data is None else {"success": True, "data": data}

    # -- public routes ---------------------------------------------------------------------

    async def server_time(self, req: Req) -> Any:
        return self.ok({"time": self.now_ms()})

    async def tickers(self, req: Req) -> Any:
        names = [s for s in req.query().get("symbol", "").split(",") if s]
        specs = [self.core.spec(s) for s in names] if names else list(self.core.markets.values())
        rows = []
        for spec in specs:
            bid, ask = self.core.best(spec.symbol, "buy"), self.core.best(spec.symbol, "sell")
            trades = [f for fills in self.core.trades.values() for o, f in fills if o.symbol == spec.symbol]
            last = max(trades, key=lambda f: f.ts) if trades else None
            mid = (bid[0] + ask[0]) / 2 if bid and ask else (bid or ask or (Decimal(0),))[0]
            close = text(last.price if last else mid)
            rows.append({"symbol": spec.venue_symbol, "open": close, "high": close, "low": close, "close": close,
                         "prevClose": close, "priceChange": "0", "priceChangePercent": "0", "volume": "0",
                         "quoteVolume": "0", "bestBidPrice": text(bid[0]) if bid else "0",
                         "bestAskPrice": text(ask[0]) if ask else "0",
                         "lastTradedAt": last.ts // MS if last else self.now_ms()})
        return self.ok(rows)

    async def orderbook(self, req: Req) -> Any:
        spec = self.market(req.query())
        side = lambda s: [{"price": text(p), "qty": text(q)} for p, q in self.core.levels(spec.symbol, s, 30)]  # noqa: E731
        return self.ok({"timestamp": self.now_ms(), "bids": side("buy"), "asks": side("sell")})

    async def currency_pairs(self, req: Req) -> Any:
        return self.ok([{"symbol": m.venue_symbol, "status": "launched"} for m in self.core.markets.values()])

    # -- orders ----------------------------------------------------------------------------

    async def place(self, req: Req) -> Any:
        p, account = self.params(req), req.account
        client_order_id = p.get("clientOrderId", "")
        try:
            if CLIENT_ORDER_ID.fullmatch(client_order_id):  # "processed only once": a refusal spends it too
                self.core.claim_client_id(account, client_order_id)  # type: ignore[arg-type]
            order = self.order_of(p, account)  # type: ignore[arg-type]
        except Refusal as refusal:
            self.core.record_refusal(account.name, client_order_id, refusal)  # type: ignore[union-attr]
            raise
        self.core.place(order)
        if order.post_only and order.status == "canceled":
            self._push_private(order, None, "canceled")  # canceled on arrival: the core reports no update of it
        return self.ok({"orderId": int(order.order_id)})

    def order_of(self, p: dict[str, str], account: Account) -> Order:
        """The order of a 주문하기 request, or the BAD_REQUEST-style refusal of its parameters."""
        spec = self.market(p)
        side, order_type = p.get("side"), p.get("orderType")
        if side not in ("buy", "sell") or order_type not in ("limit", "market"):
            raise Refusal("bad_request", "side must be buy/sell and orderType limit/market (best is not simulated)")
        tif = p.get("timeInForce") or ("gtc" if order_type == "limit" else "ioc")
        if tif not in ("gtc", "ioc", "fok", "po") or (order_type == "market" and tif != "ioc"):
            raise Refusal("bad_request", f"timeInForce {tif} is not allowed for {order_type} orders")
        client_order_id = p.get("clientOrderId", "")
        if "clientOrderId" in p and not CLIENT_ORDER_ID.fullmatch(client_order_id):
            raise Refusal("bad_request", "clientOrderId must match [0-9a-zA-Z.:_-]{1,36}")
        price, qty, amt = self.decimal(p, "price"), self.decimal(p, "qty"), self.decimal(p, "amt")
        by_amount = order_type == "market" and side == "buy"
        if (order_type == "limit") != (price is not None) or by_amount != (amt is not None) or by_amount == (qty is not None):
            raise Refusal("bad_request", "limit orders take price and qty, market buys amt, market sells qty")
        value = price * qty if price is not None and qty is not None else amt or Decimal(0)
        held = self.core.wallet(account).available(spec.quote if side == "buy" else spec.base)
        if value > MAX_ORDER_VALUE and held >= (value if side == "buy" else qty or 0):
            # the docs do not say which check comes first: here an unfunded order is NO_BALANCE
            raise Refusal("bad_request", "ORDER_VALUE_TOO_LARGE: the order value is over 1,000,000,000 KRW")
        return Order(order_id=self.core.next_id(), client_order_id=client_order_id, account=account.name,
                     symbol=spec.symbol, side=side, order_type=order_type,  # type: ignore[arg-type]
                     time_in_force="gtc" if tif == "po" else tif, post_only=tif == "po",  # type: ignore[arg-type]
                     price=price, quantity=qty, quote_quantity=amt)

    async def cancel(self, req: Req) -> Any:
        order = self.lookup(req)
        if not order.is_open:
            raise Refusal("order_closed", f"{closed_code(order)}: order {order.order_id} is {order.status}")
        self.core.cancel(order)
        return self.ok()

    async def order(self, req: Req) -> Any:
        return self.ok(self.render(self.lookup(req)))

    async def open_orders(self, req: Req) -> Any:
        p = self.params(req)
        spec, limit = self.market(p), self.integer(p, "limit", 500)
        if not 1 <= limit <= 1000:
            raise Refusal("bad_request", "limit must be 1 - 1000")
        orders = sorted(self.core.open_orders(req.account, spec.symbol), key=lambda o: o.ts_created, reverse=True)  # type: ignore[arg-type]
        return self.ok([self.render(o, listing=True) for o in orders[:limit]])

    def window(self, p: dict[str, str]) -> tuple[MarketSpec, int, int, int]:
        """symbol, startTime, endTime (ms; default the last 36 hours) and limit (1-1000, 500)."""
        spec, limit, now = self.market(p), self.integer(p, "limit", 500), self.now_ms()
        if not 1 <= limit <= 1000:
            raise Refusal("bad_request", "limit must be 1 - 1000")
        return spec, self.integer(p, "startTime", now - 36 * 3600 * 1000), self.integer(p, "endTime", now), limit

    async def all_orders(self, req: Req) -> Any:
        spec, start, end, limit = self.window(self.params(req))
        orders = [o for o in self.core.account_orders(req.account, spec.symbol) if start <= o.ts_created // MS <= end]  # type: ignore[arg-type]
        orders.sort(key=lambda o: o.ts_created, reverse=True)
        return self.ok([self.render(o) for o in orders[:limit]])

    async def my_trades(self, req: Req) -> Any:
        spec, start, end, limit = self.window(self.params(req))
        fills = [(o, f) for o, f in self.core.fills(req.account, spec.symbol) if start <= f.ts // MS <= end]  # type: ignore[arg-type]
        return self.ok([self.trade_row(o, f) for o, f in reversed(fills)][:limit])

    def trade_row(self, o: Order, f: Fill) -> dict[str, Any]:
        """A fill as 최근 체결 내역 조회 returns it (the private stream's myTrade renames a few)."""
        return {"symbol": self.core.markets[o.symbol].venue_symbol, "tradeId": f.trade_id, "orderId": int(o.order_id),
                "side": o.side, "price": text(f.price), "qty": text(f.quantity), "amt": text(f.quote_quantity),
                "tradedAt": f.ts // MS, "isTaker": not f.is_maker, "feeCurrency": f.fee_asset.lower(),
                "feeQty": text(f.fee)}

    async def balance(self, req: Req) -> Any:
        wallet = self.core.wallet(req.account)  # type: ignore[arg-type]
        wanted = {c.upper() for c in req.query().get("currencies", "").split(",") if c}
        rows = []
        for asset in wallet.assets():
            if wanted and asset not in wanted:
                continue
            free, locked = wallet.available(asset), wallet.locked.get(asset, Decimal(0))
            rows.append({"currency": asset.lower(), "balance": text(free + locked), "available": text(free),
                         "tradeInUse": text(locked), "withdrawalInUse": "0", "avgPrice": "0"})
        return self.ok(rows)


DIALECT = KorbitDialect
