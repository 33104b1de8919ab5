"""Bithumb (API 2.x, KRW markets) as the simulator speaks it, on the simulator core.

Docs followed (apidocs.bithumb.com, v2.1.x): "인증 헤더 만들기" (Bearer JWT HS256: access_key,
nonce = uuid, timestamp in ms, query_hash = SHA512 hex of the urlencoded parameters,
query_hash_alg; verified by services.simulator.jwt_query), "API 요청 수 제한 안내"
(2026-10-27: per IP and category, public 150/s each (ticker, orderbook, other), private
140/s each (order, cancel, other)), "API 주요 에러 코드" (``{"error": {"name", "message"}}``:
400 invalid_parameter / invalid_price_bid|ask / under_min_total_bid|ask /
insufficient_funds_bid|ask, 401 jwt_verification / invalid_query_payload / expired_jwt,
404 order_not_found), the client_order_id changelog (2026-03-12: ``POST /v2/orders``
takes ``client_order_id``, ``DELETE /v2/order`` and ``GET /v1/order`` take ``order_id``/
``uuid`` or ``client_order_id``, ``GET /v1/orders`` ``uuids[]``/``client_order_ids[]``),
the reference pages of ``/v1/ticker``, ``/v1/orderbook`` (Double numbers, 30 units for one
market), ``/v1/market/all``, ``/v1/accounts``, ``/v1/order`` (NumberString fields, trades).

Where the simulator differs from (or goes beyond) the venue:
- the order reply of ``POST /v2/orders`` and ``DELETE /v2/order`` is the full order object
  documented for v2.1.4 "주문하기" (uuid, state, volumes, fees) plus ``client_order_id``;
  the cancel answers with the order as it was (cancel is asynchronous at the venue);
- names the docs do not give: a reused client_order_id is 400 ``duplicate_client_order_id``,
  a reused nonce 401 ``jwt_verification``, an unknown key 401 ``invalid_access_key`` (Upbit's
  name), a lot-size violation 400 ``invalid_volume_bid|ask``, rate limits 429
  ``too_many_requests`` without Retry-After (none documented), maintenance 503;
- a timestamp more than 30 s old (or 1 s ahead) is ``expired_jwt`` (no window documented);
- one tick per market (Bithumb's KRW table gives 1,000 KRW above 1,000,000 KRW);
- a client that keeps going while limited is blocked (the simulator's ban policy), answered
  like any 429: the docs only say the category is "temporarily restricted";
- ``ord_type=best`` (2026-06-30) and the batch endpoints are not served (exbus sends neither);
- the minimum order total (5,000 KRW) is the value of GET /v1/orders/chance for KRW markets;
- no endpoint for the account's own fills (like Upbit: fills are read from GET /v1/order).

The private WebSocket v2 (``/websocket/v2/private``: myOrder, myAsset) is
:mod:`services.simulator.dialects.bithumb_private`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from aiohttp import web

from services.simulator.config import Account
from services.simulator.core import MarketSpec, Refusal
from services.simulator.dialect import Dialect, Limit, Reply, Req, Route
from services.simulator.dialects.bithumb_private import BithumbPrivate
from services.simulator.jwt_query import JwtRefusal, JwtRules, verify_jwt_request
from services.simulator.matching import ZERO, Fill, Order
from services.simulator.venue import parse_decimal

_BALANCES = {a: Decimal(n) for a, n in {"KRW": "100000000000", "BTC": "100", "ETH": "1000"}.items()}
KST = timezone(timedelta(hours=9))
CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,36}")
STATE = {"new": "wait", "partially_filled": "wait", "filled": "done", "canceled": "cancel", "expired": "cancel"}
NAMES = {"BTC": ("비트코인", "Bitcoin"), "ETH": ("이더리움", "Ethereum")}
RULES = JwtRules(algorithms=("HS256",), timestamp_claim="timestamp", window_ms=30_000)

# kind -> (status, error name (``{side}`` = bid/ask of the order), message)
ERRORS: dict[str, tuple[int, str, str]] = {
    "bad_request": (400, "invalid_parameter", "잘못된 파라미터 입니다."),
    "unknown_symbol": (400, "invalid_parameter", "잘못된 파라미터 입니다. (market)"),
    "bad_key": (401, "invalid_access_key", "잘못된 엑세스 키입니다."),
    "bad_signature": (401, "jwt_verification", "Jwt 토큰 검증에 실패했습니다."),
    "expired": (401, "expired_jwt", "Jwt가 만료되었습니다."),
    "nonce": (401, "jwt_verification", "Jwt 토큰 검증에 실패했습니다. (nonce)"),
    "insufficient_balance": (400, "insufficient_funds_{side}", "주문가능한 금액이 부족합니다."),
    "unknown_order": (404, "order_not_found", "주문을 찾지 못했습니다."),
    "order_closed": (404, "order_not_found", "주문을 찾지 못했습니다."),
    "duplicate_order": (400, "duplicate_client_order_id", "이미 사용된 client_order_id 입니다."),
    "tick_size": (400, "invalid_price_{side}", "주문가격 단위를 잘못 입력하셨습니다. 확인 후 시도해주세요."),
    "lot_size": (400, "invalid_volume_{side}", "주문수량 단위를 잘못 입력하셨습니다."),
    "min_quantity": (400, "under_min_total_{side}", "최소 주문금액 이상으로 주문해주세요."),
    "min_notional": (400, "under_min_total_{side}", "최소 주문금액 이상으로 주문해주세요."),
    "rate_limited": (429, "too_many_requests", "요청 수 제한을 초과했습니다."),
    "banned": (429, "too_many_requests", "요청 수 제한 초과로 API 사용이 일시적으로 제한되었습니다."),
    "maintenance": (503, "service_unavailable", "서비스 점검 중입니다."),
}


def _kst(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, KST).isoformat(timespec="seconds")


class BithumbDialect(BithumbPrivate, Dialect):
    name = "bithumb"
    WEBSOCKET = True
    ROUTES = [
        Route("GET", "/v1/market/all", "market_all", limits=("public_other",)),
        Route("GET", "/v1/ticker", "ticker", limits=("public_ticker",), decimals_as_numbers=True),  # Double
        Route("GET", "/v1/orderbook", "orderbook", limits=("public_orderbook",), decimals_as_numbers=True),
        Route("GET", "/v1/accounts", "accounts", signed=True, limits=("private_other",)),
        Route("POST", "/v2/orders", "place", signed=True, limits=("order",), kind="place"),
        Route("DELETE", "/v2/order", "cancel", signed=True, limits=("cancel",), kind="cancel"),
        Route("GET", "/v1/order", "order", signed=True, limits=("private_other",)),
        Route("GET", "/v1/orders", "orders", signed=True, limits=("private_other",)),
    ]
    LIMITS = {  # "API 요청 수 제한 안내": per IP, per category, per second
        "public_ticker": Limit(150, 1, "ip"),
        "public_orderbook": Limit(150, 1, "ip"),
        "public_other": Limit(150, 1, "ip"),
        "order": Limit(140, 1, "ip"),
        "cancel": Limit(140, 1, "ip"),
        "private_other": Limit(140, 1, "ip"),
    }
    # KRW-BTC: tick 1,000 KRW for prices >= 1,000,000 KRW (Bithumb KRW tick table, and every
    # price in BITHUMB.ws.docs is a multiple of it); volume to 8 decimals; minimum order
    # total 5,000 KRW (GET /v1/orders/chance ``market.bid.min_total`` / ``ask.min_total``).
    MARKETS = [MarketSpec("BTC-KRW", "KRW-BTC", Decimal("1000"), Decimal("0.00000001"), ZERO, Decimal("5000"))]
    MAKER_FEE = Decimal("0.0004")  # Bithumb's KRW-market fee rate, 0.04 %, maker and taker alike
    TAKER_FEE = Decimal("0.0004")
    FEE_IN_QUOTE = True  # fees are charged in KRW (reserved_fee on buys)
    CLIENT_IDS = "forever"
    DEFAULT_ACCOUNTS = [
        Account(name="demo", api_key="sim-bithumb-demo-access", secret="sim-bithumb-demo-secret-0000000000000000000000000000000000000000", balances=_BALANCES),
        Account(name="taker", api_key="sim-bithumb-taker-access", secret="sim-bithumb-taker-secret-000000000000000000000000000000000000000", balances=_BALANCES),
    ]
    """Paper accounts of the simulator (not anyone's secrets): ``demo`` for strategies and
    the demo, ``taker`` for the other side of the market in tests."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.core.post_only_taking = "cancel"  # "개별 주문 조회": post_only at a taker price ends as cancel
        self.core.describe = lambda r: self._error(r)[1:]
        self.init_upbitlike_private()

    def add_ws_routes(self, app: web.Application) -> None:
        self.add_private_route(app)

    @staticmethod
    def trade_id_of(fill: Fill) -> str:
        """The venue's id of a fill (GET /v1/order ``trades[].uuid``, myOrder ``trade_id``)."""
        return f"T{fill.trade_id:019d}"

    # -- authentication and refusals ------------------------------------------------------

    async def authenticate(self, req: Req) -> Account:
        verified = verify_jwt_request(self.core, req, RULES)
        req.params = verified.params
        return verified.account

    @staticmethod
    def _error(refusal: Refusal) -> tuple[int, str, str]:
        status, name, message = ERRORS.get(refusal.kind, ERRORS["bad_request"])
        if isinstance(refusal, JwtRefusal) and refusal.reason == "query_hash":
            name, message = "invalid_query_payload", "Jwt의 query를 검증하는데 실패하였습니다."
        side = "ask" if refusal.order is not None and refusal.order.side == "sell" else "bid"
        return status, name.format(side=side), f"{message} ({refusal.detail})" if refusal.detail else message

    def refuse(self, refusal: Refusal, req: Req) -> tuple[int, Any, dict[str, str]]:
        status, name, message = self._error(refusal)
        return status, {"error": {"name": name, "message": message}}, {}

    def server_error(self, status: int) -> Any:
        if status == 429:
            name, message = ERRORS["rate_limited"][1:]
        elif status == 503:
            name, message = ERRORS["maintenance"][1:]
        else:
            name, message = "server_error", "일시적인 서버 오류입니다. 잠시 후 다시 시도해주세요."
        return {"error": {"name": name, "message": message}}

    # -- quotation ------------------------------------------------------------------------

    def _markets(self, req: Req) -> list[MarketSpec]:
        codes = [c.strip() for c in req.query().get("markets", "").split(",") if c.strip()]
        if not codes:
            raise Refusal("bad_request", "markets is required")
        return [self.core.spec(c) for c in codes]

    async def market_all(self, req: Req) -> Any:
        details = req.query().get("isDetails", "false") == "true"
        out = []
        for m in self.MARKETS:
            ko, en = NAMES.get(m.base, (m.base, m.base))
            out.append({"market": m.venue_symbol, "korean_name": ko, "english_name": en,
                        **({"market_warning": "NONE"} if details else {})})
        return out

    async def ticker(self, req: Req) -> Any:
        out = []
        for spec in self._markets(req):
            fills = sorted((f for fs in self.core.trades.values() for o, f in fs if o.symbol == spec.symbol),
                           key=lambda f: f.ts)
            bid, ask = self.core.best(spec.symbol, "buy"), self.core.best(spec.symbol, "sell")
            mid = (bid[0] + ask[0]) / 2 if bid and ask else (bid or ask or (ZERO,))[0]
            last = fills[-1].price if fills else (mid // spec.tick) * spec.tick
            prices = [f.price for f in fills] or [last]
            now_ms = self.now_ms()
            ts = fills[-1].ts // 1_000_000 if fills else now_ms
            kst = datetime.fromtimestamp(ts / 1000, KST)
            utc = datetime.fromtimestamp(ts / 1000, timezone.utc)
            volume = sum((f.quantity for f in fills), ZERO) / 2  # both sides of each trade hold a fill
            funds = sum((f.quote_quantity for f in fills), ZERO) / 2
            out.append({
                "market": spec.venue_symbol, "trade_date": utc.strftime("%Y%m%d"), "trade_time": utc.strftime("%H%M%S"),
                "trade_date_kst": kst.strftime("%Y%m%d"), "trade_time_kst": kst.strftime("%H%M%S"),
                "trade_timestamp": ts, "opening_price": prices[0], "high_price": max(prices),
                "low_price": min(prices), "trade_price": last, "prev_closing_price": prices[0],
                "change": "EVEN" if last == prices[0] else "RISE" if last > prices[0] else "FALL",
                "change_price": abs(last - prices[0]), "change_rate": 0.0,
                "signed_change_price": last - prices[0], "signed_change_rate": 0.0,
                "trade_volume": fills[-1].quantity if fills else ZERO,
                "acc_trade_price": funds, "acc_trade_price_24h": funds,
                "acc_trade_volume": volume, "acc_trade_volume_24h": volume,
                "highest_52_week_price": max(prices), "highest_52_week_date": kst.strftime("%Y-%m-%d"),
                "lowest_52_week_price": min(prices), "lowest_52_week_date": kst.strftime("%Y-%m-%d"),
                "timestamp": now_ms,
            })
        return out

    async def orderbook(self, req: Req) -> Any:
        specs = self._markets(req)
        depth = 30 if len(specs) == 1 else 15
        out = []
        for spec in specs:
            bids, asks = self.core.levels(spec.symbol, "buy", depth), self.core.levels(spec.symbol, "sell", depth)
            none = (ZERO, ZERO)  # a side with fewer levels has zeros there
            pairs = [(asks[i] if i < len(asks) else none, bids[i] if i < len(bids) else none)
                     for i in range(max(len(bids), len(asks)))]
            units = [{"ask_price": a[0], "bid_price": b[0], "ask_size": a[1], "bid_size": b[1]} for a, b in pairs]
            out.append({"market": spec.venue_symbol, "timestamp": self.now_ms(),
                        "total_ask_size": sum((q for _, q in asks), ZERO),
                        "total_bid_size": sum((q for _, q in bids), ZERO), "orderbook_units": units})
        return out

    # -- exchange -----------------------------------------------------------------------------

    async def accounts(self, req: Req) -> Any:
        wallet = self.core.wallet(req.account)  # type: ignore[arg-type]
        assets = sorted(set(wallet.free) | set(wallet.locked), key=lambda a: (a != "KRW", a))
        return [{"currency": a, "balance": wallet.available(a), "locked": wallet.locked.get(a, ZERO),
                 "avg_buy_price": "0", "avg_buy_price_modified": False, "unit_currency": "KRW"} for a in assets]

    @staticmethod
    def _decimal(p: dict[str, Any], name: str) -> Decimal | None:
        value = p.get(name)
        if value is None or value == "":
            return None
        d = parse_decimal(str(value))
        if d is None or d <= 0:
            raise Refusal("bad_request", f"{name} does not have a valid value")
        return d

    async def place(self, req: Req) -> Any:
        try:
            order = self._parse_order(req)
        except Refusal as r:  # refused while parsing: in the ledger too, as the core does for its own
            self.core.record_refusal(req.account.name, str(req.params.get("client_order_id") or ""), r)  # type: ignore[union-attr]
            raise
        self.core.place(order)
        return Reply(self._order(order), status=201)

    def _parse_order(self, req: Req) -> Order:
        p = req.params
        market, side, ord_type, tif = p.get("market"), p.get("side"), p.get("ord_type"), p.get("time_in_force")
        cid = p.get("client_order_id")
        if not market or side not in ("bid", "ask") or ord_type not in ("limit", "price", "market"):
            raise Refusal("bad_request", "market, side (bid/ask) and ord_type (limit/price/market) are required")
        if cid is not None and not CLIENT_ID.fullmatch(str(cid)):
            raise Refusal("bad_request", "client_order_id must match [A-Za-z0-9_-]{1,36}")
        spec = self.core.spec(str(market))
        volume, price = self._decimal(p, "volume"), self._decimal(p, "price")
        if tif not in (None, "ioc", "fok", "post_only") or (tif and ord_type != "limit"):
            raise Refusal("bad_request", "time_in_force does not have a valid value")
        if (ord_type == "limit" and (volume is None or price is None)) or \
                (ord_type == "price" and (side != "bid" or price is None or volume is not None)) or \
                (ord_type == "market" and (side != "ask" or volume is None or price is not None)):
            raise Refusal("bad_request", f"the parameters do not fit ord_type {ord_type}")
        order = Order(order_id=f"C{self.core.next_id():019d}", client_order_id=str(cid or ""), account=req.account.name,  # type: ignore[union-attr]
                      symbol=spec.symbol, side="buy" if side == "bid" else "sell",
                      order_type="limit" if ord_type == "limit" else "market",
                      time_in_force="ioc" if tif == "ioc" else "fok" if tif == "fok" else "gtc", post_only=tif == "post_only",
                      venue_fields={"ord_type": ord_type, "time_in_force": tif})
        if ord_type == "limit":
            order.price, order.quantity = price, volume
        elif ord_type == "price":
            order.quote_quantity = order.venue_fields["funds"] = price
        else:
            order.quantity = volume
        return order

    def _find(self, req: Req, id_name: str) -> Order:
        p = req.params
        oid, cid = p.get(id_name), p.get("client_order_id")
        if not oid and not cid:
            raise Refusal("bad_request", f"{id_name} or client_order_id is required")
        return self.core.find(req.account, order_id=oid or None, client_order_id=None if oid else cid)  # type: ignore[arg-type]

    async def cancel(self, req: Req) -> Any:
        order = self._find(req, "order_id")
        before = self._order(order)
        self.core.cancel(order)
        return before

    async def order(self, req: Req) -> Any:
        return self._order(self._find(req, "uuid"), trades=True)

    async def orders(self, req: Req) -> Any:
        p = req.params
        states = p.get("states") or [p.get("state") or "wait"]
        states = [states] if isinstance(states, str) else states
        if any(s not in ("wait", "watch", "done", "cancel") for s in states):
            raise Refusal("bad_request", "state does not have a valid value")
        try:
            limit, page = int(p.get("limit") or 100), int(p.get("page") or 1)
        except (TypeError, ValueError):
            raise Refusal("bad_request", "limit/page must be integers") from None
        if not 1 <= limit <= 100 or page < 1:
            raise Refusal("bad_request", "limit does not have a valid value")
        uuids, cids = p.get("uuids"), p.get("client_order_ids")
        symbol = self.core.spec(p["market"]).symbol if p.get("market") else None
        found = [o for o in self.core.account_orders(req.account, symbol)  # type: ignore[arg-type]
                 if STATE[o.status] in states and (not uuids or str(o.order_id) in uuids)
                 and (uuids or not cids or o.client_order_id in cids)]
        found.sort(key=lambda o: o.ts_created, reverse=p.get("order_by", "desc") == "desc")
        return [self._order(o) for o in found[(page - 1) * limit: page * limit]]

    def _order(self, o: Order, *, trades: bool = False) -> dict[str, Any]:
        spec = self.core.markets[o.symbol]
        side = "bid" if o.side == "buy" else "ask"
        out: dict[str, Any] = {
            "uuid": str(o.order_id), "side": side, "ord_type": o.venue_fields.get("ord_type", o.order_type),
            "price": o.venue_fields.get("funds") or o.price, "state": STATE[o.status], "market": spec.venue_symbol,
            "created_at": _kst(o.ts_created), "volume": o.quantity,
            "remaining_volume": o.remaining if o.quantity is not None else None,
            "reserved_fee": o.reserved_fee, "remaining_fee": max(o.reserved_fee - o.fees, ZERO), "paid_fee": o.fees,
            "locked": o.locked, "executed_volume": o.filled, "executed_funds": o.filled_quote,
            "trades_count": len(o.fills), "client_order_id": o.client_order_id or None,
        }
        if o.venue_fields.get("time_in_force"):
            out["time_in_force"] = o.venue_fields["time_in_force"]
        if trades:
            out["trades"] = [{"market": spec.venue_symbol, "uuid": self.trade_id_of(f), "price": f.price,
                              "volume": f.quantity, "funds": f.quote_quantity, "side": side,
                              "created_at": _kst(f.ts)} for f in o.fills]
        return out


DIALECT = BithumbDialect
