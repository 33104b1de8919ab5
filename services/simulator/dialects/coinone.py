"""Coinone v2.1 as the simulator speaks it, on the simulator core.

Followed: docs.coinone.co.kr — Private API v2.1 (every call a POST; X-COINONE-PAYLOAD =
base64(JSON {access_token, nonce: UUID v4, ...params}), X-COINONE-SIGNATURE =
hex HMAC-SHA512(secret, payload)), reference pages place-order (/v2.1/order), cancel-order,
order-detail (order_id *or* user_order_id, never both; user_order_id up to 150 chars of
lower-case letters, digits, ``-_.``, never reusable), find-active-orders, find-balance
(/account/balance/all), find-completed-orders (size 1-100, from_ts and to_ts required),
public v2 ticker_new / orderbook (size 5, 10, 15, 16) / markets; the error-code page
(``{"result": "error", "error_code": "...", "error_msg": "..."}``: 4 blocked (rate limit),
11 access token missing, 12 invalid access token, 103 lack of balance, 104 order id not
exist, 105 price not correct, 107 parameter error, 108 unknown cryptocurrency, 120-123
payload / signature missing or wrong, 130/131 nonce, 405 server error / maintenance); ccxt
4.5.90 coinone.sign() (the body is the base64 payload) and its reply examples; rate limits
from the docs intro (public 300/min per IP, over it error 4 — shown there in the older
camelCase envelope — and a one-minute block) and the v2.1 limits (orders 40/s, other
private 80/s per portfolio; remaining-quota headers as a third-party summary names them).

Where the simulator differs from the venue: the HTTP status of error replies is not
documented per code (here 400 client errors, 401 auth, 429 code 4, 503 code 405); codes
130 (nonce not a UUID v4), 131 (nonce reused), 313 (bad user_order_id), 312 (user_order_id
used before) and 306/307 (quantity unit / minimum order amount) are the simulator's best
reading of the docs; STOP_LIMIT orders are refused (107); order ids are UUIDs but fills'
``trade_id`` are counters; the ticker's 24h figures come from the simulator's own fills.
The private WebSocket (``/v1/private``, MYORDER) is services.simulator.dialects.coinone_private.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from services.simulator.config import Account
from services.simulator.core import MarketSpec, Refusal
from services.simulator.dialect import Dialect, Limit, Req, Route
from services.simulator.dialects.coinone_private import CoinonePrivate
from services.simulator.matching import Fill, Order

_BALANCES = {a: Decimal(n) for a, n in {"KRW": "100000000000", "BTC": "100", "ETH": "1000"}.items()}
_USER_ORDER_ID = re.compile(r"[a-z0-9_.\-]{1,150}")
_SIZES = ("5", "10", "15", "16")
_NS = 1_000_000_000
PUBLIC_BLOCK_S = 60

# (HTTP status, error_code, error_msg) per refusal kind
_REPLIES: dict[str, tuple[int, str, str]] = {
    "bad_request": (400, "107", "Parameter error"),
    "unknown_symbol": (400, "108", "Unknown cryptocurrency"),
    "bad_key": (401, "12", "Invalid access token"),
    "bad_signature": (401, "123", "V2 API signature is not correct"),
    "expired": (401, "131", "V2 API nonce is not valid"),
    "nonce": (401, "131", "V2 API nonce is already used"),
    "insufficient_balance": (400, "103", "Lack of balance"),
    "unknown_order": (400, "104", "Order id is not exist"),
    "order_closed": (400, "104", "Order id is not exist"),
    "duplicate_order": (400, "312", "user_order_id is already used"),
    "tick_size": (400, "105", "Price is not correct"),
    "lot_size": (400, "306", "Quantity is not correct"),
    "min_quantity": (400, "306", "Quantity is not correct"),
    "min_notional": (400, "307", "Order amount is below the minimum"),
    "would_take": (400, "107", "Parameter error"),
    "rate_limited": (429, "4", "Blocked user access"),
    "banned": (429, "4", "Blocked user access"),
    "maintenance": (503, "405", "Server error"),
}


def _refusal(kind: Any, detail: str, code: str) -> Refusal:
    """A Refusal carrying the Coinone code to render (where one kind has several codes)."""
    r = Refusal(kind, detail)
    r.coinone = code  # type: ignore[attr-defined]
    return r


def _decimal(value: Any, name: str, *, required: bool = True) -> Decimal | None:
    if value is None or value == "":
        if required:
            raise Refusal("bad_request", f"{name} is required")
        return None
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise Refusal("bad_request", f"{name} is not a number") from None
    if not d.is_finite() or d <= 0:
        raise Refusal("bad_request", f"{name} must be positive")
    return d


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


class CoinoneDialect(CoinonePrivate, Dialect):
    name = "coinone"
    WEBSOCKET = True
    ROUTES = [
        Route("GET", "/public/v2/ticker_new/{quote}/{target}", "ticker", limits=("public",)),
        Route("GET", "/public/v2/orderbook/{quote}/{target}", "orderbook", limits=("public",)),
        Route("GET", "/public/v2/markets/{quote}", "markets", limits=("public",)),
        Route("POST", "/v2.1/order", "place", signed=True, limits=("order",), kind="place"),
        Route("POST", "/v2.1/order/cancel", "cancel", signed=True, limits=("order",), kind="cancel"),
        Route("POST", "/v2.1/order/detail", "detail", signed=True, limits=("private",)),
        Route("POST", "/v2.1/order/active_orders", "active_orders", signed=True, limits=("private",)),
        Route("POST", "/v2.1/account/balance/all", "balance", signed=True, limits=("private",)),
        Route("POST", "/v2.1/order/completed_orders", "completed_orders", signed=True, limits=("private",)),
    ]
    LIMITS = {"public": Limit(300, 60, "ip"), "order": Limit(40, 1, "account"), "private": Limit(80, 1, "account")}
    _USAGE = {"public": "Public-Ratelimit-Remaining", "order": "Private-Order-Ratelimit-Remaining",
              "private": "Private-Ratelimit-Remaining"}
    # BTC/KRW: price_unit 1000 KRW above 1,000,000 KRW (range_units), qty_unit 0.0001 (docs
    # markets example), minimum order amount 5,000 KRW (Coinone trading guide).
    MARKETS = [MarketSpec("BTC-KRW", "KRW/BTC", Decimal("1000"), Decimal("0.0001"), Decimal("0.0001"), Decimal("5000"))]
    MAKER_FEE = Decimal("0.002")
    TAKER_FEE = Decimal("0.002")
    FEE_IN_QUOTE = True
    CLIENT_IDS = "forever"  # "거래쌍 상관 없이 기존에 입력한 user_order_id 는 재사용 불가"
    DEFAULT_ACCOUNTS = [
        Account(name="demo", api_key="sim-coinone-demo-access", secret="SIM-COINONE-DEMO-SECRET-000000000000", balances=_BALANCES),
        Account(name="taker", api_key="sim-coinone-taker-access", secret="SIM-COINONE-TAKER-SECRET-00000000000", balances=_BALANCES),
    ]
    """Paper accounts of the simulator (not anyone's secrets): ``demo`` for strategies and
    the demo, ``taker`` for the other side of the market in tests."""

    # -- authentication and replies ------------------------------------------------------------

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._blocked: dict[str, int] = {}
        """Client IP -> when its public block ends (ns)."""
        self.init_private()

    def add_ws_routes(self, app: web.Application) -> None:
        self.add_private_route(app)

    async def authenticate(self, req: Req) -> Account:
        headers = req.request.headers
        payload, signature = headers.get("X-COINONE-PAYLOAD", ""), headers.get("X-COINONE-SIGNATURE", "")
        if not payload:
            raise _refusal("bad_signature", "X-COINONE-PAYLOAD is missing", "120")
        if not signature:
            raise _refusal("bad_signature", "X-COINONE-SIGNATURE is missing", "121")
        try:
            params = json.loads(base64.b64decode(payload, validate=True), parse_float=Decimal)
        except (binascii.Error, ValueError):
            raise _refusal("bad_request", "the payload is not base64 of JSON", "132") from None
        if not isinstance(params, dict):
            raise _refusal("bad_request", "the payload is not a JSON object", "132")
        body = req.body.strip()
        if body and body != payload.encode() and _json_or_none(body) != params:
            raise _refusal("bad_request", "the body differs from X-COINONE-PAYLOAD", "132")
        token = params.get("access_token")
        if not token or not isinstance(token, str):
            raise _refusal("bad_key", "access_token is missing", "11")
        account = self.core.account(token)
        expected = hmac.new(account.secret.encode(), payload.encode(), hashlib.sha512).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise Refusal("bad_signature", "signature mismatch")
        nonce = params.get("nonce")
        if not nonce or not isinstance(nonce, str):
            raise _refusal("nonce", "nonce is missing", "122")
        try:
            if uuid.UUID(nonce).version != 4:
                raise ValueError
        except ValueError:
            raise _refusal("nonce", "nonce is not a UUID v4", "130") from None
        self.core.single_use_nonce(account, nonce)
        req.params = params  # type: ignore[attr-defined]
        return account

    def refuse(self, refusal: Refusal, req: Req) -> tuple[int, Any, dict[str, str]]:
        status, code, message = _REPLIES[refusal.kind]
        code = getattr(refusal, "coinone", code)
        if code == "4" and req is not None and req.path.startswith("/public/"):
            # the docs intro shows the public block in the older camelCase envelope
            return status, {"result": "error", "errorCode": "4", "errorMsg": "Blocked user access."}, {}
        return status, {"result": "error", "error_code": code, "error_msg": message}, {}

    def _admit(self, req: Req, route: Route, scope_kind: str, windows: list[tuple[Limit, Any]]) -> None:
        """Docs intro: over 300 public requests a minute, the client is blocked for 1 minute."""
        if scope_kind != "ip" or "public" not in route.limits:
            return super()._admit(req, route, scope_kind, windows)
        ip = str(req.request.remote)
        until = self._blocked.get(ip, 0)
        if req.now < until:
            raise Refusal("rate_limited", "blocked after the public limit", retry_after=-(-(until - req.now) // _NS))
        try:
            super()._admit(req, route, scope_kind, windows)
        except Refusal as r:
            if r.kind == "rate_limited":
                self._blocked[ip], r.retry_after = req.now + PUBLIC_BLOCK_S * _NS, PUBLIC_BLOCK_S
            raise

    def server_error(self, status: int) -> Any:
        if status == 429:
            return {"result": "error", "error_code": "4", "error_msg": "Blocked user access"}
        return {"result": "error", "error_code": "405", "error_msg": "Server error"}

    def usage_headers(self, req: Req, windows: list[tuple[Limit, Any]]) -> dict[str, str]:
        return {self._USAGE[w.name]: str(max(0, w.limit - w.current(req.now))) for _, w in windows}

    # -- helpers ----------------------------------------------------------------------------------

    def _market(self, quote: Any, target: Any) -> MarketSpec:
        if not quote or not target or not isinstance(quote, str) or not isinstance(target, str):
            raise Refusal("bad_request", "quote_currency and target_currency are required")
        return self.core.spec(f"{quote.upper()}/{target.upper()}")

    def _order(self, req: Req, p: dict[str, Any]) -> Order:
        spec = self._market(p.get("quote_currency"), p.get("target_currency"))
        order_id, user_order_id = p.get("order_id"), p.get("user_order_id")
        if bool(order_id) == bool(user_order_id):
            raise Refusal("bad_request", "exactly one of order_id and user_order_id is required")
        order = self.core.find(req.account, order_id=order_id or None, client_order_id=user_order_id or None)  # type: ignore[arg-type]
        if order.symbol != spec.symbol:
            raise Refusal("unknown_order", "the order is of another market")
        return order

    def _fee_rate(self, maker: bool) -> Decimal:
        configured = self.settings.maker_fee if maker else self.settings.taker_fee
        return configured if configured is not None else (self.MAKER_FEE if maker else self.TAKER_FEE)

    def _status(self, o: Order) -> str:
        if o.status == "new":
            return "LIVE"
        if o.status in ("partially_filled", "filled"):
            return o.status.upper()
        return "PARTIALLY_CANCELED" if o.filled else "CANCELED"

    def _render(self, o: Order) -> dict[str, Any]:
        spec = self.core.markets[o.symbol]
        executed = o.filled
        remain = o.remaining if o.is_open else Decimal(0)
        canceled = Decimal(0) if o.is_open or o.quantity is None else o.quantity - o.filled
        return {
            "order_id": str(o.order_id), "type": o.order_type.upper(), "quote_currency": spec.quote,
            "target_currency": spec.base, "status": self._status(o), "side": o.side.upper(),
            "fee": o.fees, "fee_rate": self._fee_rate(not o.fills or all(f.is_maker for f in o.fills)),
            "avg_price": o.average_price if o.filled else None, "price": o.price,
            "original_qty": o.quantity, "executed_qty": executed, "traded_qty": executed, "canceled_qty": canceled,
            "remain_qty": remain, "original_amount": o.quote_quantity, "traded_amount": o.filled_quote,
            "limit_price": None, "trigger_price": None, "is_triggered": None,
            "ordered_at": o.ts_created // 1_000_000, "updated_at": o.ts_updated // 1_000_000,
            "user_order_id": o.client_order_id or None,
        }

    def _fill_row(self, o: Order, f: Fill) -> dict[str, Any]:
        """One fill as find-completed-orders lists it (the private MYORDER stream reuses it)."""
        spec = self.core.markets[o.symbol]
        return {"trade_id": str(f.trade_id), "order_id": str(o.order_id), "quote_currency": spec.quote,
                "target_currency": spec.base, "order_type": o.order_type.upper(), "is_ask": o.side == "sell",
                "is_maker": f.is_maker, "price": f.price, "qty": f.quantity, "timestamp": f.ts // 1_000_000,
                "fee_rate": self._fee_rate(f.is_maker), "fee": f.fee, "fee_currency": f.fee_asset,
                "user_order_id": o.client_order_id or None}

    def _params(self, req: Req) -> dict[str, Any]:
        return getattr(req, "params", {})

    # -- public routes ----------------------------------------------------------------------------

    async def ticker(self, req: Req) -> Any:
        spec = self._market(req.match["quote"], req.match["target"])
        trades = {f.trade_id: f for book in self.core.trades.values() for o, f in book if o.symbol == spec.symbol}
        fills = sorted(trades.values(), key=lambda f: f.ts)
        bid, ask = self.core.best(spec.symbol, "buy"), self.core.best(spec.symbol, "sell")
        prices = [f.price for f in fills] or [(bid or ask or (Decimal(0),))[0]]
        last = prices[-1]
        now = self.now_ms()
        return {"result": "success", "error_code": "0", "server_time": now, "tickers": [{
            "quote_currency": spec.quote.lower(), "target_currency": spec.base.lower(), "timestamp": now,
            "high": max(prices), "low": min(prices), "first": prices[0],
            "last": last, "quote_volume": sum((f.quote_quantity for f in fills), Decimal(0)),
            "target_volume": sum((f.quantity for f in fills), Decimal(0)),
            "best_asks": [{"price": p, "qty": q} for p, q in ([ask] if ask else [])],
            "best_bids": [{"price": p, "qty": q} for p, q in ([bid] if bid else [])],
            "id": f"{now}001"}]}

    async def orderbook(self, req: Req) -> Any:
        spec = self._market(req.match["quote"], req.match["target"])
        size = req.query().get("size", "15")
        if size not in _SIZES:
            raise Refusal("bad_request", "size must be 5, 10, 15 or 16")
        now = self.now_ms()
        side = lambda s: [{"price": p, "qty": q} for p, q in self.core.levels(spec.symbol, s, int(size))]  # noqa: E731
        return {"result": "success", "error_code": "0", "timestamp": now, "id": f"{now}001",
                "quote_currency": spec.quote, "target_currency": spec.base, "order_book_unit": spec.tick,
                "bids": side("buy"), "asks": side("sell")}

    async def markets(self, req: Req) -> Any:
        quote = req.match["quote"].upper()
        rows = [{"quote_currency": m.quote, "target_currency": m.base, "price_unit": m.tick, "qty_unit": m.lot,
                 "max_order_amount": Decimal("1000000000"), "max_price": Decimal("8000000000"),
                 "max_qty": Decimal("1000000000"), "min_order_amount": m.min_notional, "min_price": m.tick,
                 "min_qty": m.min_quantity, "order_book_units": [m.tick], "maintenance_status": 0,
                 "trade_status": 1, "order_types": ["LIMIT", "MARKET"]}
                for m in self.MARKETS if m.quote == quote]
        if not rows:
            raise Refusal("unknown_symbol", f"no market quoted in {quote}")
        return {"result": "success", "error_code": "0", "server_time": self.now_ms(), "markets": rows}

    # -- private routes ---------------------------------------------------------------------------

    async def place(self, req: Req) -> Any:
        p = self._params(req)
        spec = self._market(p.get("quote_currency"), p.get("target_currency"))
        side, kind = str(p.get("side", "")).upper(), str(p.get("type", "")).upper()
        if side not in ("BUY", "SELL") or kind not in ("LIMIT", "MARKET"):
            raise Refusal("bad_request", "side must be BUY or SELL and type LIMIT or MARKET")
        user_order_id = p.get("user_order_id") or ""
        if user_order_id and (not isinstance(user_order_id, str) or not _USER_ORDER_ID.fullmatch(user_order_id)):
            raise _refusal("bad_request", "user_order_id: up to 150 of a-z 0-9 - _ .", "313")
        order = Order(order_id=str(uuid.uuid4()), client_order_id=user_order_id, account=req.account.name,  # type: ignore[union-attr]
                      symbol=spec.symbol, side="buy" if side == "BUY" else "sell",
                      order_type="limit" if kind == "LIMIT" else "market")
        if kind == "LIMIT":
            order.price, order.quantity = _decimal(p.get("price"), "price"), _decimal(p.get("qty"), "qty")
            order.post_only = _flag(p.get("post_only"))
        elif side == "BUY":
            order.quote_quantity, order.time_in_force = _decimal(p.get("amount"), "amount"), "ioc"
        else:
            order.quantity, order.time_in_force = _decimal(p.get("qty"), "qty"), "ioc"
        self.core.place(order)
        return {"result": "success", "error_code": "0", "order_id": order.order_id}

    async def cancel(self, req: Req) -> Any:
        order = self._order(req, self._params(req))
        self.core.cancel(order)
        o = self._render(order)
        return {"result": "success", "error_code": "0", **{k: o[k] for k in (
            "order_id", "price", "remain_qty", "side", "original_qty", "traded_qty", "canceled_qty", "fee",
            "fee_rate", "avg_price", "ordered_at", "quote_currency", "target_currency", "user_order_id")},
            "qty": o["original_qty"], "canceled_at": self.now_ms()}

    async def detail(self, req: Req) -> Any:
        return {"result": "success", "error_code": "0", "order": self._render(self._order(req, self._params(req)))}

    async def active_orders(self, req: Req) -> Any:
        p = self._params(req)
        symbol = None
        if p.get("quote_currency") or p.get("target_currency"):
            symbol = self._market(p.get("quote_currency"), p.get("target_currency")).symbol
        types = p.get("order_type") or []
        if not isinstance(types, list) or any(t not in ("LIMIT", "STOP_LIMIT") for t in types):
            raise Refusal("bad_request", "order_type must be a list of LIMIT, STOP_LIMIT")
        rows = [self._render(o) for o in self.core.open_orders(req.account, symbol)  # type: ignore[arg-type]
                if o.order_type == "limit" and (not types or "LIMIT" in types)]
        for r in rows:
            r["average_executed_price"] = r.pop("avg_price")
        return {"result": "success", "error_code": "0", "active_orders": rows}

    async def balance(self, req: Req) -> Any:
        wallet = self.core.wallet(req.account)  # type: ignore[arg-type]
        assets = sorted(set(wallet.assets()) | {a for m in self.MARKETS for a in (m.base, m.quote)})
        return {"result": "success", "error_code": "0", "balances": [
            {"available": wallet.available(a), "limit": wallet.locked.get(a, Decimal(0)), "average_price": Decimal(0),
             "currency": a} for a in assets]}

    async def completed_orders(self, req: Req) -> Any:
        p = self._params(req)
        spec = self._market(p.get("quote_currency"), p.get("target_currency"))
        try:
            size, from_ts, to_ts = int(p["size"]), int(p["from_ts"]), int(p["to_ts"])
        except (KeyError, TypeError, ValueError):
            raise Refusal("bad_request", "size, from_ts and to_ts are required integers") from None
        if not 1 <= size <= 100 or from_ts > to_ts:
            raise _refusal("bad_request", "size must be 1-100 and from_ts <= to_ts", "316")
        fills = [(o, f) for o, f in self.core.fills(req.account, spec.symbol)  # type: ignore[arg-type]
                 if from_ts <= f.ts // 1_000_000 <= to_ts]
        rows = [self._fill_row(o, f) for o, f in reversed(fills)][:size]
        return {"result": "success", "error_code": "0", "completed_orders": rows}


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body, parse_float=Decimal)
    except ValueError:
        return None


DIALECT = CoinoneDialect
