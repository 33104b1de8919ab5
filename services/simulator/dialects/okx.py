"""OKX v5 as the simulator speaks it, on the simulator core (spot, cash trading mode).

Followed (okx.com/docs-v5/en): "REST Authentication" (OK-ACCESS-KEY, OK-ACCESS-SIGN =
Base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath + body)), requestPath with its
``?query``; OK-ACCESS-TIMESTAMP ISO 8601 with ms, refused when more than 30 s off the server
time; OK-ACCESS-PASSPHRASE), "Demo trading" (``x-simulated-trading: 1``: this simulator plays
both the live and the demo host, so it accepts the header and its absence alike), the
endpoints below with their "Rate limit" lines, "Error Code" (REST, with HTTP statuses; copy
of 2026-07-20), and failure envelopes as OKX sends them (python-okx issue #97:
``{"code":"1","msg":"All operations failed","data":[{"sCode":"51000","sMsg":"Parameter px
error",...}]}``). Market rules: BTC-USDT from the recorded GET /public/instruments
(../shared/data/recorded/OKX.0). Fees: OKX regular-user spot tier (maker 0.08 %, taker
0.10 %), charged in the currency received.

Where the simulator differs from OKX:
- limits "per user ID + instrument ID" count per account only (one market here); OKX
  documents no ban for clients that ignore 429s: the core's ban is rendered as 50011 too;
- ticker 24 h fields come from the simulator's own trades since start (last = last trade,
  else the best bid); a books row counts its orders as "1" (recorded levels are anonymous);
- the paper accounts are in Spot mode: a tdMode other than ``cash`` gets 51010.
OKX sends no Retry-After with its 429 (its windows are 2 s); neither does the simulator.
The private WebSocket (login, ``orders`` channel) is services.simulator.dialects.okx_private.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from services.simulator.config import Account
from services.simulator.core import MarketSpec, Refusal
from services.simulator.dialect import Dialect, Limit, Reply, Req, Route
from services.simulator.dialects.okx_private import OkxPrivate
from services.simulator.matching import Fill, Order

_BALANCES = {a: Decimal(n) for a, n in {"USDT": "10000000", "USDC": "10000000", "BTC": "100", "ETH": "1000"}.items()}
_CLORDID = re.compile(r"^[A-Za-z0-9]{1,32}$")
_ORD_TYPES = {"limit": ("limit", "gtc", False), "post_only": ("limit", "gtc", True), "ioc": ("limit", "ioc", False),
              "fok": ("limit", "fok", False), "market": ("market", "gtc", False)}
_STATE = {"new": "live", "partially_filled": "partially_filled", "filled": "filled", "canceled": "canceled",
          "expired": "canceled"}
_ORDER_BASE = 700_000_000_000_000_000
"""OKX order ids are 18-19 digit numbers (docs example 312269865356374016)."""

# kind -> (HTTP status, code, msg) from the docs' Error Code tables
_REFUSALS: dict[str, tuple[int, str, str]] = {
    "bad_request": (400, "51000", "Parameter {} error"),
    "unknown_symbol": (200, "51001", "Instrument ID, Instrument ID code or Spread ID doesn't exist."),
    "bad_key": (401, "50111", "Invalid OK-ACCESS-KEY."),
    "bad_signature": (401, "50113", "Invalid signature."),
    "expired": (401, "50102", "Timestamp request expired."),
    "nonce": (401, "50112", "Invalid OK-ACCESS-TIMESTAMP."),
    "insufficient_balance": (200, "51008", "Order failed. Insufficient {} balance in account"),
    "unknown_order": (200, "51603", "Order does not exist."),
    "duplicate_order": (200, "51016", "Client order ID already exists."),
    "tick_size": (200, "51000", "Parameter px error"),
    "lot_size": (200, "51121", "Order quantity must be a multiple of the lot size."),
    "min_quantity": (200, "51020", "Your order should meet or exceed the minimum order amount."),
    "min_notional": (200, "51020", "Your order should meet or exceed the minimum order amount."),
    "order_closed": (200, "51400", "Order cancellation failed as the order has been filled, canceled or does not exist."),
    "rate_limited": (429, "50011", "Too Many Requests"),
    "banned": (429, "50011", "Too Many Requests"),
    "maintenance": (503, "50001", "Service temporarily unavailable. Please try again later."),
}
_SERVER_ERRORS = {
    500: ("50026", "System error. Try again later"),
    502: ("50013", "Systems are busy. Please try again later."),
    503: ("50001", "Service temporarily unavailable. Please try again later."),
    504: ("50004", "API endpoint request timeout. (does not mean that the request was successful or failed, "
                   "please check the request result)."),
    429: ("50011", "Too Many Requests"),
    418: ("50011", "Too Many Requests"),
}
_CODED = re.compile(r"^(\d{5}) (.*)$")
_STATUS_OF = {"50000": 400, "50002": 400, "50006": 400, "50014": 400, "51000": 400, "51003": 200, "51010": 200}
"""HTTP status of the codes a ``bad_request`` refusal carries (the others keep their kind's)."""


def refusal(kind: str, code: str, msg: str) -> Refusal:
    """A Refusal carrying the exact OKX code and message (``refuse`` renders them)."""
    return Refusal(kind, f"{code} {msg}")  # type: ignore[arg-type]


def _s(value: Decimal | None) -> str:
    """OKX numbers: strings in plain notation, "" for none."""
    if value is None:
        return ""
    return format(value.normalize(), "f") if value else "0"


def _ms(ns: int) -> str:
    return str(ns // 1_000_000) if ns else ""


def _number(body: dict[str, Any], name: str) -> Decimal:
    try:
        value = Decimal(str(body[name]))
    except (InvalidOperation, ValueError):
        raise refusal("bad_request", "51000", f"Parameter {name} error") from None
    if not value.is_finite() or value <= 0:
        raise refusal("bad_request", "51000", f"Parameter {name} error")
    return value


class OkxDialect(OkxPrivate, Dialect):
    name = "okx"
    WEBSOCKET = True
    ROUTES = [
        Route("GET", "/api/v5/public/time", "time", limits=("time",)),
        Route("GET", "/api/v5/market/ticker", "ticker", limits=("ticker",)),
        Route("GET", "/api/v5/market/books", "books", limits=("books",)),
        Route("GET", "/api/v5/public/instruments", "instruments", limits=("instruments",)),
        Route("POST", "/api/v5/trade/order", "place", signed=True, limits=("place_order", "sub_account_orders"),
              kind="place"),
        Route("POST", "/api/v5/trade/cancel-order", "cancel", signed=True, limits=("cancel_order",), kind="cancel"),
        Route("GET", "/api/v5/trade/order", "order", signed=True, limits=("order_details",)),
        Route("GET", "/api/v5/trade/orders-pending", "pending", signed=True, limits=("orders_pending",)),
        Route("GET", "/api/v5/account/balance", "balance", signed=True, limits=("balance",)),
        Route("GET", "/api/v5/trade/fills", "fills", signed=True, limits=("fills",)),
    ]
    LIMITS = {  # each endpoint's "Rate Limit" line; trading ones per user ID (+ instrument ID)
        "time": Limit(10, 2, "ip"),
        "ticker": Limit(20, 2, "ip"),
        "books": Limit(40, 2, "ip"),
        "instruments": Limit(20, 2, "ip"),  # IP + instrument type
        "place_order": Limit(60, 2, "account"),
        "sub_account_orders": Limit(1000, 2, "account", counts="orders"),  # "Sub-account rate limit": new + amend orders
        "cancel_order": Limit(60, 2, "account"),
        "order_details": Limit(60, 2, "account"),
        "orders_pending": Limit(60, 2, "account"),
        "balance": Limit(10, 2, "account"),
        "fills": Limit(60, 2, "account"),
    }
    MARKETS = [
        # recorded GET /api/v5/public/instruments?instType=SPOT (OKX.0): tickSz 0.1, lotSz 0.00000001, minSz 0.00001;
        # OKX spot has no minimum notional beyond minSz
        MarketSpec("BTC-USDT", "BTC-USDT", Decimal("0.1"), Decimal("0.00000001"), Decimal("0.00001")),
    ]
    MAKER_FEE = Decimal("0.0008")
    TAKER_FEE = Decimal("0.001")
    FEE_IN_QUOTE = False
    CLIENT_IDS = "open"
    DEFAULT_ACCOUNTS = [
        Account(name="demo", api_key="sim-okx-demo-key", secret="SIMOKXDEMOSECRET0000000000000000", passphrase="sim-okx-demo-passphrase", balances=_BALANCES),
        Account(name="taker", api_key="sim-okx-taker-key", secret="SIMOKXTAKERSECRET000000000000000", passphrase="sim-okx-taker-passphrase", balances=_BALANCES),
    ]
    """Paper accounts of the simulator (not anyone's secrets): ``demo`` for strategies and
    the demo, ``taker`` for the other side of the market in tests."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tape: dict[str, list[Fill]] = {s: [] for s in self.core.markets}
        self.core.listeners.append(self._on_update)
        self.core.post_only_taking = "cancel"  # accepted, then canceled by the system (cancelSource 31)
        self.core.describe = lambda r: self._code(r)[1:]  # the ledger records OKX's code and message
        self.init_private()

    def add_ws_routes(self, app: web.Application) -> None:
        self.add_private_route(app)

    def _on_update(self, order: Order, fill: Fill | None, kind: str) -> None:
        if fill is not None and not fill.is_maker:  # each trade once, by its taker
            self._tape[order.symbol].append(fill)

    # -- authentication ("REST Authentication") -------------------------------------------
    async def authenticate(self, req: Req) -> Account:
        h = req.request.headers
        key, sign = h.get("OK-ACCESS-KEY", ""), h.get("OK-ACCESS-SIGN", "")
        ts, passphrase = h.get("OK-ACCESS-TIMESTAMP", ""), h.get("OK-ACCESS-PASSPHRASE", "")
        for value, code, header in ((key, "50103", "KEY"), (passphrase, "50104", "PASSPHRASE"),
                                    (sign, "50106", "SIGN"), (ts, "50107", "TIMESTAMP")):
            if not value:
                raise refusal("bad_key", code, f'Request header "OK-ACCESS-{header}" cannot be empty.')
        try:
            when = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        except ValueError:
            raise refusal("nonce", "50112", "Invalid OK-ACCESS-TIMESTAMP.") from None
        self.core.within(int(when.timestamp() * 1000), 30_000, ahead_ms=30_000)
        account = self.core.account(key)
        if not hmac.compare_digest(passphrase, account.passphrase):
            raise refusal("bad_key", "50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect.')
        path = req.path + (f"?{req.raw_query}" if req.raw_query else "")
        if not hmac.compare_digest(sign, self.signature(account.secret, ts + req.method + path + req.text)):
            raise Refusal("bad_signature", "signature mismatch")
        return account

    @staticmethod
    def signature(secret: str, prehash: str) -> str:
        """Base64(HMAC-SHA256(secret, prehash)): REST requests and the WebSocket login alike."""
        return base64.b64encode(hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()).decode()

    # -- replies ------------------------------------------------------------------------------
    def _code(self, r: Refusal) -> tuple[int, str, str]:
        if r.kind == "rate_limited" and r.limit == "sub_account_orders":
            return 200, "50061", "You've reached the maximum order rate limit for this account."
        status, code, msg = _REFUSALS.get(r.kind, (400, "51000", "Parameter {} error"))
        coded = _CODED.match(r.detail)
        if coded:
            code, msg = coded.groups()
            status = _STATUS_OF.get(code, status)
        elif r.kind == "insufficient_balance" and r.order is not None:
            spec = self.core.markets[r.order.symbol]  # the currency the order spends
            msg = msg.format(spec.base if r.order.side == "sell" else spec.quote)
        elif "{}" in msg:
            msg = msg.format("")
        return status, code, msg

    def refuse(self, refusal: Refusal, req: Req) -> tuple[int, Any, dict[str, str]]:
        status, code, msg = self._code(refusal)
        return status, {"code": code, "msg": msg, "data": []}, {}

    def server_error(self, status: int) -> Any:
        code, msg = _SERVER_ERRORS.get(status, _SERVER_ERRORS[500])
        return {"code": code, "msg": msg, "data": []}

    def _order_failed(self, r: Refusal, cl_ord_id: str, req: Req) -> Reply:
        """A refused order: HTTP 200, code "1", the reason in data[0].sCode/sMsg."""
        _, code, msg = self._code(r)
        row = {"clOrdId": cl_ord_id, "ordId": "", "tag": "", "ts": str(self.now_ms()), "sCode": code, "sMsg": msg}
        return Reply(self._envelope([row], req, code="1", msg="All operations failed"))

    def _envelope(self, data: list[Any], req: Req, code: str = "0", msg: str = "") -> dict[str, Any]:
        """Trade endpoints add the gateway's in/out times (microseconds)."""
        return {"code": code, "msg": msg, "data": data, "inTime": str(req.now // 1000),
                "outTime": str(self.clock() // 1000)}

    def _order_row(self, o: Order) -> dict[str, Any]:
        spec = self.core.markets[o.symbol]
        last = o.fills[-1] if o.fills else None
        return {
            "instType": "SPOT", "instId": spec.venue_symbol, "tgtCcy": o.venue_fields.get("tgtCcy", ""), "ccy": "",
            "ordId": str(o.order_id), "clOrdId": o.client_order_id, "tag": o.venue_fields.get("tag", ""),
            "px": _s(o.price), "pxUsd": "", "pxVol": "", "pxType": "",
            "sz": _s(o.quantity if o.quantity is not None else o.quote_quantity), "pnl": "0",
            "ordType": o.venue_fields.get("ordType", o.order_type), "side": o.side, "posSide": "",
            "tdMode": o.venue_fields.get("tdMode", "cash"), "accFillSz": _s(o.filled),
            "fillPx": _s(last.price) if last else "", "tradeId": str(last.trade_id) if last else "",
            "fillSz": _s(last.quantity) if last else "", "fillTime": _ms(last.ts) if last else "",
            "avgPx": _s(o.average_price) if o.filled else "", "state": _STATE[o.status], "lever": "",
            "feeCcy": spec.base if o.side == "buy" else spec.quote, "fee": _s(-o.fees),
            "rebateCcy": spec.quote if o.side == "buy" else spec.base, "rebate": "0", "source": "",
            "category": "normal", "reduceOnly": "false", "cancelSource": o.venue_fields.get("cancelSource", ""), "cancelSourceReason": "",
            "stpId": "", "stpMode": "cancel_maker", "algoClOrdId": "", "algoId": "", "attachAlgoOrds": [],
            "isTpLimit": "false", "tradeQuoteCcy": spec.quote, "uTime": _ms(o.ts_updated), "cTime": _ms(o.ts_created),
        }

    def _fill_row(self, o: Order, f: Fill) -> dict[str, Any]:
        ms = _ms(f.ts)
        return {"instType": "SPOT", "instId": self.core.markets[o.symbol].venue_symbol, "tradeId": str(f.trade_id),
                "ordId": str(o.order_id), "clOrdId": o.client_order_id, "billId": str(_ORDER_BASE + f.trade_id),
                "subType": "1" if o.side == "buy" else "2", "tag": o.venue_fields.get("tag", ""),
                "fillPx": _s(f.price), "fillSz": _s(f.quantity), "fillIdxPx": "", "fillPnl": "0",
                "side": o.side, "posSide": "net", "execType": "M" if f.is_maker else "T", "feeCcy": f.fee_asset,
                "fee": _s(-f.fee), "feeRate": _s(-self._rate(o, f)), "ts": ms, "fillTime": ms,
                "tradeQuoteCcy": self.core.markets[o.symbol].quote}

    def _rate(self, o: Order, f: Fill) -> Decimal:
        market = self.core.exchange.markets[o.symbol]
        return self.core.fees.maker(market) if f.is_maker else self.core.fees.taker(market)

    # -- parameters ---------------------------------------------------------------------------
    @staticmethod
    def _need(params: dict[str, Any], *names: str) -> None:
        for name in names:
            if params.get(name) in (None, ""):
                raise refusal("bad_request", "50014", f"Parameter {name} can not be empty.")

    def _body(self, req: Req) -> dict[str, Any]:
        if not req.body:
            raise refusal("bad_request", "50000", "Body for POST request cannot be empty.")
        if not req.request.content_type.startswith("application/json"):
            raise refusal("bad_request", "50006", 'Invalid Content-Type. Please use "application/JSON".')
        try:
            body = req.json()
        except Refusal:
            body = None
        if not isinstance(body, dict):
            raise refusal("bad_request", "50002", "JSON syntax error")
        return body

    def _spec(self, params: dict[str, Any]) -> MarketSpec:
        self._need(params, "instId")
        return self.core.spec(str(params["instId"]))

    # -- public routes ------------------------------------------------------------------------
    async def time(self, req: Req) -> Any:
        return {"code": "0", "msg": "", "data": [{"ts": str(self.now_ms())}]}

    async def ticker(self, req: Req) -> Any:
        spec = self._spec(req.query())
        bid, ask = self.core.best(spec.symbol, "buy"), self.core.best(spec.symbol, "sell")
        tape = self._tape[spec.symbol]
        prices = [f.price for f in tape] or ([bid[0]] if bid else [])
        first, last = (prices[0], prices[-1]) if prices else (None, None)
        return {"code": "0", "msg": "", "data": [{
            "instType": "SPOT", "instId": spec.venue_symbol, "last": _s(last), "lastSz": _s(tape[-1].quantity) if tape else "0",
            "askPx": _s(ask[0]) if ask else "", "askSz": _s(ask[1]) if ask else "",
            "bidPx": _s(bid[0]) if bid else "", "bidSz": _s(bid[1]) if bid else "",
            "open24h": _s(first), "high24h": _s(max(prices, default=None)), "low24h": _s(min(prices, default=None)),
            "volCcy24h": _s(sum((f.quote_quantity for f in tape), Decimal(0))),
            "vol24h": _s(sum((f.quantity for f in tape), Decimal(0))),
            "ts": str(self.now_ms()), "sodUtc0": _s(first), "sodUtc8": _s(first)}]}

    async def books(self, req: Req) -> Any:
        q = req.query()
        spec = self._spec(q)
        try:
            depth = int(q.get("sz") or 1)
        except ValueError:
            depth = 0
        if not 1 <= depth <= 400:
            raise refusal("bad_request", "51000", "Parameter sz error")
        rows = lambda side: [[_s(p), _s(n), "0", "1"] for p, n in self.core.levels(spec.symbol, side, depth)]  # noqa: E731
        return {"code": "0", "msg": "", "data": [{"asks": rows("sell"), "bids": rows("buy"), "ts": str(self.now_ms())}]}

    async def instruments(self, req: Req) -> Any:
        q = req.query()
        self._need(q, "instType")
        if q["instType"] not in ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"):
            raise refusal("bad_request", "51000", "Parameter instType error")
        rows = [{"alias": "", "baseCcy": m.base, "category": "1", "ctMult": "", "ctType": "", "ctVal": "", "ctValCcy": "",
                 "expTime": "", "instFamily": "", "instId": m.venue_symbol, "instType": "SPOT", "lever": "", "listTime": "",
                 "lotSz": _s(m.lot), "maxIcebergSz": "9999999999", "maxLmtSz": "9999999999", "maxMktSz": "1000000",
                 "maxStopSz": "1000000", "maxTriggerSz": "9999999999", "maxTwapSz": "9999999999", "minSz": _s(m.min_quantity),
                 "optType": "", "quoteCcy": m.quote, "ruleType": "normal", "settleCcy": "", "state": "live", "stk": "",
                 "tickSz": _s(m.tick), "uly": ""}
                for m in self.MARKETS if q["instType"] == "SPOT" and q.get("instId") in (None, "", m.venue_symbol)]
        return {"code": "0", "msg": "", "data": rows}

    # -- trading routes -------------------------------------------------------------------------
    async def place(self, req: Req) -> Any:
        body = self._body(req)
        self._need(body, "instId", "tdMode", "side", "ordType", "sz")
        cl_ord_id = str(body.get("clOrdId") or "")
        try:
            spec = self.core.spec(str(body["instId"]))
            if str(body["tdMode"]) != "cash":
                raise refusal("bad_request", "51010", "Request unsupported under current account mode")
            side, ord_type = str(body["side"]), str(body["ordType"])
            if side not in ("buy", "sell"):
                raise refusal("bad_request", "51000", "Parameter side error")
            if ord_type not in _ORD_TYPES:
                raise refusal("bad_request", "51000", "Parameter ordType error")
            if cl_ord_id and not _CLORDID.match(cl_ord_id):
                raise refusal("bad_request", "51000", "Parameter clOrdId error")
            kind, tif, post_only = _ORD_TYPES[ord_type]
            size = _number(body, "sz")
            price = None if kind == "market" else _number(body, "px") if body.get("px") not in (None, "") else None
            if kind == "limit" and price is None:
                raise refusal("bad_request", "51000", "Parameter px error")
            # spot market orders: sz in quote currency for buys, base for sells, unless tgtCcy says otherwise
            tgt = str(body.get("tgtCcy") or ("quote_ccy" if side == "buy" else "base_ccy")) if kind == "market" else ""
            if tgt not in ("", "base_ccy", "quote_ccy"):
                raise refusal("bad_request", "51000", "Parameter tgtCcy error")
            by_quote = tgt == "quote_ccy"
            order = Order(order_id=str(_ORDER_BASE + self.core.next_id()), client_order_id=cl_ord_id,
                          account=req.account.name, symbol=spec.symbol, side=side, order_type=kind,  # type: ignore[union-attr]
                          time_in_force=tif, post_only=post_only, price=price,  # type: ignore[arg-type]
                          quantity=None if by_quote else size, quote_quantity=size if by_quote else None,
                          venue_fields={"ordType": ord_type, "tdMode": "cash", "tgtCcy": tgt, "tag": str(body.get("tag") or "")})
            self.core.place(order)
        except Refusal as r:
            if r.order is None:  # refused while reading the request, before the core saw it
                self.core.record_refusal(req.account.name, cl_ord_id, r)  # type: ignore[union-attr]
            return self._order_failed(r, cl_ord_id, req)
        if order.status == "canceled":  # a post_only order that would have taken liquidity
            order.venue_fields["cancelSource"] = "31"
            self._push_private(order, None, "canceled")  # the core reports no update of it
        row = {"clOrdId": cl_ord_id, "ordId": str(order.order_id), "tag": order.venue_fields["tag"],
               "ts": str(self.now_ms()), "sCode": "0", "sMsg": "Order placed"}
        return self._envelope([row], req)

    def _find(self, req: Req, params: dict[str, Any]) -> Order:
        spec = self._spec(params)
        ord_id, cl_ord_id = str(params.get("ordId") or ""), str(params.get("clOrdId") or "")
        if not ord_id and not cl_ord_id:
            raise refusal("bad_request", "51003", "Either client order ID or order ID is required.")
        # "if both are passed, ordId will be used"; by clOrdId "only the latest one will be returned"
        order = self.core.find(req.account, order_id=ord_id or None, client_order_id=None if ord_id else cl_ord_id)  # type: ignore[arg-type]
        if order.symbol != spec.symbol:
            raise Refusal("unknown_order", "the order is on another instrument")
        return order

    async def cancel(self, req: Req) -> Any:
        body = self._body(req)
        cl_ord_id = str(body.get("clOrdId") or "")
        try:
            order = self._find(req, body)
            self.core.cancel(order)
        except Refusal as r:
            if r.kind in ("unknown_order", "order_closed"):
                return self._order_failed(Refusal("order_closed"), cl_ord_id, req)
            if r.kind == "unknown_symbol":
                return self._order_failed(r, cl_ord_id, req)
            raise
        row = {"clOrdId": order.client_order_id, "ordId": str(order.order_id), "ts": str(self.now_ms()),
               "sCode": "0", "sMsg": ""}
        return self._envelope([row], req)

    async def order(self, req: Req) -> Any:
        return {"code": "0", "msg": "", "data": [self._order_row(self._find(req, req.query()))]}

    async def pending(self, req: Req) -> Any:
        q = req.query()
        spec = self.core.spec(q["instId"]) if q.get("instId") else None
        orders = [o for o in self.core.open_orders(req.account, spec.symbol if spec else None)  # type: ignore[arg-type]
                  if q.get("instType") in (None, "", "SPOT") and q.get("ordType") in (None, "", o.venue_fields.get("ordType"))]
        orders.sort(key=lambda o: int(o.order_id), reverse=True)  # newest first
        return {"code": "0", "msg": "", "data": [self._order_row(o) for o in orders[:_limit(q)]]}

    async def balance(self, req: Req) -> Any:
        wallet = self.core.wallet(req.account)  # type: ignore[arg-type]
        wanted = {c.strip() for c in req.query().get("ccy", "").split(",") if c.strip()}
        now = str(self.now_ms())
        details = []
        for ccy in wallet.assets():
            if wanted and ccy not in wanted:
                continue
            free, locked = wallet.available(ccy), wallet.locked.get(ccy, Decimal(0))
            details.append({"ccy": ccy, "eq": _s(free + locked), "cashBal": _s(free + locked), "availBal": _s(free),
                            "availEq": _s(free), "frozenBal": _s(locked), "ordFrozen": _s(locked), "eqUsd": "",
                            "upl": "0", "uTime": now})
        return {"code": "0", "msg": "", "data": [{"adjEq": "", "details": details, "imr": "", "isoEq": "", "mgnRatio": "",
                                                  "mmr": "", "notionalUsd": "", "ordFroz": "", "totalEq": "", "uTime": now}]}

    async def fills(self, req: Req) -> Any:
        q = req.query()
        spec = self.core.spec(q["instId"]) if q.get("instId") else None
        try:
            begin, end = int(q.get("begin") or 0), int(q.get("end") or 0)
        except ValueError:
            raise refusal("bad_request", "51000", "Parameter begin error") from None
        rows = [(o, f) for o, f in self.core.fills(req.account, spec.symbol if spec else None, begin * 1_000_000)  # type: ignore[arg-type]
                if (not end or f.ts // 1_000_000 <= end) and q.get("ordId") in (None, "", str(o.order_id))]
        return {"code": "0", "msg": "", "data": [self._fill_row(o, f) for o, f in reversed(rows)][:_limit(q)]}


def _limit(q: dict[str, str]) -> int:
    try:
        return max(1, min(100, int(q.get("limit") or 100)))
    except ValueError:
        raise refusal("bad_request", "51000", "Parameter limit error") from None


DIALECT = OkxDialect
