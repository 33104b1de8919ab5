"""Kraken spot REST as the simulator speaks it, on the simulator core.

Followed: docs.kraken.com spot REST reference (AddOrder, CancelOrder, QueryOrders,
OpenOrders, ClosedOrders, Balance, BalanceEx, TradesHistory, GetWebSocketsToken, Ticker,
Depth, AssetPairs),
guides "Spot REST Authentication" (API-Sign = base64(HMAC-SHA512(base64decode(secret),
uri_path + SHA256(nonce + postdata))), strictly increasing nonce per key), "Spot Client
Order Identifiers" (cl_ord_id: UUID or free text of at most 18 characters, unique among
open orders), "Spot REST rate limits" and "Error messages"; ccxt 4.5.90 ``kraken.py``
(error map, request shapes). Every reply is HTTP 200 with ``{"error": [...], "result": ...}``.
The private WebSocket (``/v2``, ``executions``) is services.simulator.dialects.kraken_private.
Market rules come from the AssetPairs reply recorded in ``shared/data/recorded/KRAKEN.0``
(pair_decimals -> tick, lot_decimals -> lot, ordermin; that recording has no costmin).

Where the simulator differs from Kraken:
- the REST counter (Starter tier: max 15, decays 0.33/s; TradesHistory costs 2, AddOrder and
  CancelOrder are not counted) is a fixed window of 15 per 45 s per account; the trading
  engine's per-pair order threshold (Starter 60, decays 1/s) is 60 AddOrder/CancelOrder
  per 60 s per account; public calls (about 1/s per IP) are 15 per 15 s per IP;
- only limit and market orders (timeinforce GTC/IOC, oflags post); no validate, no
  margin, no GTD, no batch calls; pagination (ofs) is honoured, closetime is not;
- the duplicate-cl_ord_id error text is not documented: ``EOrder:Duplicate cl_ord_id``
  here; an unknown well-formed txid in QueryOrders answers ``EOrder:Unknown order``; a
  post-only order that would take is accepted, then canceled (reason "Post only order");
- fees are a flat maker 0.25 % / taker 0.40 % (Starter tier of today's schedule) in quote.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from services.simulator.config import Account
from services.simulator.core import MarketSpec, Refusal
from services.simulator.dialect import Dialect, Limit, Req, Route
from services.simulator.dialects.kraken_private import KrakenPrivate
from services.simulator.matching import Fill, Order

_BALANCES = {a: Decimal(n) for a, n in {"USD": "10000000", "EUR": "10000000", "CHF": "10000000", "BTC": "100", "ETH": "1000", "XMR": "10000", "ADA": "10000000", "SC": "100000000", "WAVES": "100000", "OMG": "100000", "KSM": "10000", "OCEAN": "1000000", "GRT": "1000000"}.items()}

ASSET = {"BTC": "XXBT", "ETH": "XETH", "XMR": "XXMR", "USD": "ZUSD", "EUR": "ZEUR"}
"""exbus asset -> Kraken's asset code in replies (others are spelled alike: CHF, ADA, SC)."""

D = Decimal
# exbus symbol, altname, AssetPairs key, pair_decimals, ordermin (KRAKEN.0, AssetPairs reply)
_PAIRS = [
    ("ADA-BTC", "ADAXBT", "ADAXBT", 8, "25"), ("BTC-CHF", "XBTCHF", "XBTCHF", 1, "0.0002"),
    ("OMG-USD", "OMGUSD", "OMGUSD", 6, "2"), ("OCEAN-BTC", "OCEANXBT", "OCEANXBT", 8, "10"),
    ("ETH-CHF", "ETHCHF", "ETHCHF", 2, "0.005"), ("SC-EUR", "SCEUR", "SCEUR", 5, "1500"),
    ("GRT-ETH", "GRTETH", "GRTETH", 7, "20"), ("KSM-BTC", "KSMXBT", "KSMXBT", 6, "0.1"),
    ("XMR-USD", "XMRUSD", "XXMRZUSD", 2, "0.05"), ("WAVES-EUR", "WAVESEUR", "WAVESEUR", 4, "2"),
]
KEY = {alt: key for _, alt, key, _, _ in _PAIRS}
"""altname -> the pair's AssetPairs key (the name Kraken gives it in result objects)."""
_TXID = re.compile(r"^[A-Z0-9]{6}-[A-Z0-9]{5}-[A-Z0-9]{6}$")
_CL_ORD_ID = re.compile(r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32}|[ -~]{1,18})$")
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
ERROR_OF = {
    "bad_request": "EGeneral:Invalid arguments", "unknown_symbol": "EQuery:Unknown asset pair",
    "bad_key": "EAPI:Invalid key", "bad_signature": "EAPI:Invalid signature", "expired": "EAPI:Invalid nonce",
    "nonce": "EAPI:Invalid nonce", "insufficient_balance": "EOrder:Insufficient funds",
    "unknown_order": "EOrder:Unknown order", "order_closed": "EOrder:Unknown order",
    "duplicate_order": "EOrder:Duplicate cl_ord_id", "lot_size": "EGeneral:Invalid arguments:volume",
    "min_quantity": "EOrder:Order minimum not met", "min_notional": "EOrder:Cost minimum not met",
    "would_take": "EOrder:Post only order", "banned": "EGeneral:Temporary lockout",
    "maintenance": "EService:Unavailable",
}


def kraken_id(prefix: str, n: int) -> str:
    """A txid in Kraken's shape (``OCNNCT-MEB2I-2XGM7L``), unique per number."""
    chars = "".join(_B32[(n >> (5 * i)) & 31] for i in range(16))[::-1]
    return f"{prefix}{chars[:5]}-{chars[5:10]}-{chars[10:]}"


def text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


class KrakenDialect(KrakenPrivate, Dialect):
    name = "kraken"
    WEBSOCKET = True
    LIMITS = {"counter": Limit(15, 45, "account", counts="weight"), "trading": Limit(60, 60, "account"), "public": Limit(15, 15, "ip")}
    ROUTES = [
        *(Route(m, f"/0/public/{p}", h, limits=("public",)) for p, h in
          (("Ticker", "ticker"), ("Depth", "depth"), ("AssetPairs", "asset_pairs")) for m in ("GET", "POST")),
        Route("POST", "/0/private/AddOrder", "add_order", signed=True, limits=("trading",), kind="place"),
        Route("POST", "/0/private/CancelOrder", "cancel_order", signed=True, limits=("trading",), kind="cancel"),
        Route("POST", "/0/private/QueryOrders", "query_orders", signed=True, limits=("counter",)),
        Route("POST", "/0/private/OpenOrders", "open_orders", signed=True, limits=("counter",)),
        Route("POST", "/0/private/ClosedOrders", "closed_orders", signed=True, limits=("counter",)),
        Route("POST", "/0/private/Balance", "balance", signed=True, limits=("counter",)),
        Route("POST", "/0/private/BalanceEx", "balance_ex", signed=True, limits=("counter",)),
        Route("POST", "/0/private/TradesHistory", "trades_history", signed=True, limits=("counter",), weight=2),
        Route("POST", "/0/private/GetWebSocketsToken", "ws_token", signed=True, limits=("counter",)),
    ]
    MARKETS = [MarketSpec(s, alt, D(1).scaleb(-dec), D("0.00000001"), D(omin)) for s, alt, _, dec, omin in _PAIRS]
    MAKER_FEE = D("0.0025")
    TAKER_FEE = D("0.004")
    FEE_IN_QUOTE = True
    CLIENT_IDS = "open"
    DEFAULT_ACCOUNTS = [
        Account(name="demo", api_key="sim-kraken-demo-key", secret="c2ltLWtyYWtlbi1kZW1vLXNlY3JldC0wMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMA==", balances=_BALANCES),
        Account(name="taker", api_key="sim-kraken-taker-key", secret="c2ltLWtyYWtlbi10YWtlci1zZWNyZXQtMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMA==", balances=_BALANCES),
    ]
    """Paper accounts of the simulator (not anyone's secrets): ``demo`` for strategies and
    the demo, ``taker`` for the other side of the market in tests."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.core.post_only_taking = "cancel"  # AddOrder accepts it; the engine cancels it ("Post only order")
        self.core.describe = lambda r: (self.error_text(r), r.detail)
        self.init_tokens()
        self.init_private()

    def add_ws_routes(self, app: web.Application) -> None:
        self.add_private_route(app)

    # -- authentication and refusals -----------------------------------------------------

    async def authenticate(self, req: Req) -> Account:
        """API-Key names the account; API-Sign must be the documented HMAC over the URI
        path and SHA256(nonce + POST body); then the nonce must exceed the key's last one."""
        account = self.core.account(req.request.headers.get("API-Key", ""))
        form = req.form()
        nonce = form.get("nonce", "")
        try:
            secret = base64.b64decode(account.secret)
            given = base64.b64decode(req.request.headers.get("API-Sign", ""), validate=True)
        except (binascii.Error, ValueError):
            raise Refusal("bad_signature", "API-Sign is not base64") from None
        digest = hashlib.sha256((nonce + req.text).encode()).digest()
        expected = hmac.new(secret, req.path.encode() + digest, hashlib.sha512).digest()
        if not hmac.compare_digest(given, expected):
            raise Refusal("bad_signature", "API-Sign does not match")
        if not nonce.isdigit() or int(nonce) >= 2**64:
            raise Refusal("nonce", "nonce missing or not an unsigned 64-bit integer")
        self.core.increasing_nonce(account, int(nonce))
        return account

    def error_text(self, refusal: Refusal) -> str:
        """Kraken's error string for a refusal (docs "Error messages", ccxt's kraken map)."""
        kind = refusal.kind
        if kind == "rate_limited":
            return {"trading": "EOrder:Rate limit exceeded", "public": "EGeneral:Too many requests"}.get(
                refusal.limit or "", "EAPI:Rate limit exceeded")
        if kind == "bad_request":
            return "EGeneral:Invalid arguments" + (f":{refusal.detail}" if refusal.detail else "")
        if kind == "tick_size":
            spec = self.core.markets.get(refusal.detail)
            decimals = -spec.tick.as_tuple().exponent if spec else 0  # type: ignore[operator]
            return f"EOrder:Invalid price:{spec.venue_symbol if spec else ''} price can only be specified up to {decimals} decimals."
        return ERROR_OF[kind]

    def refuse(self, refusal: Refusal, req: Req) -> tuple[int, Any, dict[str, str]]:
        return 200, {"error": [self.error_text(refusal)], "result": {}}, {}  # Kraken sends no Retry-After

    def server_error(self, status: int) -> Any:
        error = {500: "EGeneral:Internal error", 503: "EService:Unavailable", 429: "EGeneral:Too many requests"}
        return {"error": [error.get(status, "EService:Busy")], "result": {}}

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    def params(req: Req) -> dict[str, str]:
        return req.query() if req.method == "GET" else {**req.query(), **req.form()}

    def pair(self, name: str) -> MarketSpec:
        for alt, key in KEY.items():
            if name in (alt, key, f"{alt[:-3]}/{alt[-3:]}"):
                return self.core.spec(alt)
        raise Refusal("unknown_symbol", name)

    def pairs(self, p: dict[str, str]) -> list[MarketSpec]:
        return [self.pair(n) for n in p["pair"].split(",")] if p.get("pair") else list(self.core.markets.values())

    @staticmethod
    def decimal(p: dict[str, str], name: str) -> Decimal:
        try:
            value = Decimal(p[name])
        except (KeyError, InvalidOperation):
            raise Refusal("bad_request", name) from None
        if not value.is_finite() or value <= 0:
            raise Refusal("bad_request", name)
        return value

    def order_info(self, o: Order, trades: bool = False) -> dict[str, Any]:
        spec = self.core.markets[o.symbol]
        status = {"new": "open", "partially_filled": "open", "filled": "closed"}.get(o.status, o.status)
        price = text(o.price) if o.price is not None else "0"
        vol = text(o.quantity or D(0))
        info: dict[str, Any] = {
            "refid": None, "userref": o.venue_fields.get("userref", 0), "cl_ord_id": o.client_order_id or None,
            "status": status, "opentm": o.ts_created / 1e9, "starttm": 0, "expiretm": 0,
            "descr": {"pair": spec.venue_symbol, "type": o.side, "ordertype": o.order_type, "price": price,
                      "price2": "0", "leverage": "none", "order": self.describe(o), "close": ""},
            "vol": vol, "vol_exec": text(o.filled), "cost": text(o.filled_quote), "fee": text(o.fees),
            "price": text(o.average_price), "stopprice": "0", "limitprice": "0", "misc": "",
            "oflags": "fciq,post" if o.post_only else "fciq",
        }
        if not o.is_open:
            info["closetm"] = o.ts_updated / 1e9
            info["reason"] = ("User requested" if o.venue_fields.get("user_canceled") else "Post only order"
                              if o.status == "canceled" else None)
        if trades:
            info["trades"] = [self.trade_txid(f) for f in o.fills]
        return info

    def describe(self, o: Order) -> str:
        spec = self.core.markets[o.symbol]
        at = f"limit {text(o.price)}" if o.price is not None else "market"
        return f"{o.side} {text(o.quantity or D(0))} {spec.venue_symbol} @ {at}"

    def mine(self, req: Req, p: dict[str, str], open_: bool) -> list[Order]:
        orders = self.core.open_orders(req.account) if open_ else [  # type: ignore[arg-type]
            o for o in self.core.account_orders(req.account) if not o.is_open]  # type: ignore[arg-type]
        if p.get("cl_ord_id"):
            orders = [o for o in orders if o.client_order_id == p["cl_ord_id"]]
        if p.get("userref"):
            orders = [o for o in orders if str(o.venue_fields.get("userref", 0)) == p["userref"]]
        return orders

    # -- market data ------------------------------------------------------------------------

    async def ticker(self, req: Req) -> Any:
        result = {}
        for spec in self.pairs(self.params(req)):
            bid, ask = self.core.best(spec.symbol, "buy"), self.core.best(spec.symbol, "sell")
            fills = [f for o, f in sum(self.core.trades.values(), []) if o.symbol == spec.symbol]
            last = fills[-1].price if fills else (bid[0] if bid else ask[0] if ask else D(0))
            volume = text(sum((f.quantity for f in fills), D(0)))
            lv = lambda lvl: [text(lvl[0]), str(int(lvl[1])), text(lvl[1])] if lvl else ["0", "0", "0"]  # noqa: E731
            result[KEY[spec.venue_symbol]] = {
                "a": lv(ask), "b": lv(bid), "c": [text(last), text(fills[-1].quantity) if fills else "0"],
                "v": [volume, volume], "p": [text(last), text(last)], "t": [len(fills), len(fills)],
                "l": [text(last), text(last)], "h": [text(last), text(last)], "o": text(last)}
        return {"error": [], "result": result}

    async def depth(self, req: Req) -> Any:
        p = self.params(req)
        if not p.get("pair"):
            raise Refusal("bad_request", "pair")
        spec = self.pair(p["pair"])
        count = int(p["count"]) if p.get("count", "").isdigit() else 100
        count = min(count or 500, 500)
        ts = req.now // 1_000_000_000
        side = lambda s: [[text(px), text(q), ts] for px, q in self.core.levels(spec.symbol, s, count)]  # noqa: E731
        return {"error": [], "result": {KEY[spec.venue_symbol]: {"asks": side("sell"), "bids": side("buy")}}}

    async def asset_pairs(self, req: Req) -> Any:
        result = {}
        for spec in self.pairs(self.params(req)):
            decimals = -spec.tick.as_tuple().exponent  # type: ignore[operator]
            result[KEY[spec.venue_symbol]] = {
                "altname": spec.venue_symbol, "wsname": f"{spec.venue_symbol[:-3]}/{spec.venue_symbol[-3:]}",
                "aclass_base": "currency", "base": ASSET.get(spec.base, spec.base), "aclass_quote": "currency",
                "quote": ASSET.get(spec.quote, spec.quote), "lot": "unit", "cost_decimals": decimals,
                "pair_decimals": decimals, "lot_decimals": 8, "lot_multiplier": 1, "leverage_buy": [],
                "leverage_sell": [], "fees": [[0, float(self.TAKER_FEE * 100)]],
                "fees_maker": [[0, float(self.MAKER_FEE * 100)]], "fee_volume_currency": "ZUSD", "margin_call": 80,
                "margin_stop": 40, "ordermin": text(spec.min_quantity), "costmin": text(spec.min_notional),
                "tick_size": text(spec.tick), "status": "online"}
        return {"error": [], "result": result}

    # -- trading ---------------------------------------------------------------------------

    async def add_order(self, req: Req) -> Any:
        p = self.params(req)
        for name in ("pair", "type", "ordertype"):
            if not p.get(name):
                raise Refusal("bad_request", name)
        if p["type"] not in ("buy", "sell"):
            raise Refusal("bad_request", "type")
        if p["ordertype"] not in ("limit", "market"):
            raise Refusal("bad_request", "ordertype")
        spec = self.pair(p["pair"])
        volume = self.decimal(p, "volume")
        price = self.decimal(p, "price") if p["ordertype"] == "limit" else None
        tif = p.get("timeinforce", "GTC").upper()
        if tif not in ("GTC", "IOC"):
            raise Refusal("bad_request", "timeinforce")
        cl_ord_id = p.get("cl_ord_id", "")
        if cl_ord_id and not _CL_ORD_ID.match(cl_ord_id):
            raise Refusal("bad_request", "cl_ord_id")
        userref = p.get("userref", "")
        if userref and (cl_ord_id or not re.fullmatch(r"-?\d{1,10}", userref)):  # exclusive with cl_ord_id
            raise Refusal("bad_request", "userref")
        if price is not None and price % spec.tick:
            raise Refusal("tick_size", spec.symbol)
        order = Order(order_id=kraken_id("O", self.core.next_id()), client_order_id=cl_ord_id,
                      account=req.account.name, symbol=spec.symbol, side=p["type"],  # type: ignore[union-attr, arg-type]
                      order_type=p["ordertype"], time_in_force=tif.lower(),  # type: ignore[arg-type]
                      post_only="post" in p.get("oflags", "").split(","), price=price, quantity=volume,
                      ts_created=req.now, venue_fields={"userref": int(userref)} if userref else {})
        self.core.place(order)
        if order.status == "canceled":  # a post-only order that would take: the core reports no update of it
            self._push_private(order, None, "new")
            self._push_private(order, None, "canceled")
        return {"error": [], "result": {"descr": {"order": self.describe(order)}, "txid": [order.order_id]}}

    async def cancel_order(self, req: Req) -> Any:
        p = self.params(req)
        ref = p.get("cl_ord_id") or p.get("txid", "")
        if not ref:
            raise Refusal("bad_request", "txid")
        account = req.account
        if p.get("cl_ord_id") or not (_TXID.match(ref) or re.fullmatch(r"-?\d+", ref)):
            targets = [self.core.find(account, client_order_id=ref, open_only=True)]  # type: ignore[arg-type]
        elif _TXID.match(ref):
            targets = [self.core.find(account, order_id=ref)]  # type: ignore[arg-type]
        else:  # a userref cancels every open order carrying it
            targets = [o for o in self.core.open_orders(account) if str(o.venue_fields.get("userref")) == ref]  # type: ignore[arg-type]
            if not targets:
                raise Refusal("unknown_order", ref)
        for order in targets:
            if order.is_open:  # before the cancel: its push names the reason ("User requested")
                order.venue_fields["user_canceled"] = True
            self.core.cancel(order)
        return {"error": [], "result": {"count": len(targets), "pending": False}}

    # -- account data ----------------------------------------------------------------------

    async def query_orders(self, req: Req) -> Any:
        p = self.params(req)
        txids = [t for t in p.get("txid", "").split(",") if t]
        if not txids or len(txids) > 50:
            raise Refusal("bad_request", "txid")
        result = {}
        for txid in txids:
            if not _TXID.match(txid):
                raise Refusal("bad_request", "txid")
            order = self.core.find(req.account, order_id=txid)  # type: ignore[arg-type]
            result[txid] = self.order_info(order, p.get("trades") in ("true", "1"))
        return {"error": [], "result": result}

    async def open_orders(self, req: Req) -> Any:
        p = self.params(req)
        orders = self.mine(req, p, open_=True)
        trades = p.get("trades") in ("true", "1")
        return {"error": [], "result": {"open": {str(o.order_id): self.order_info(o, trades) for o in orders}}}

    async def closed_orders(self, req: Req) -> Any:
        p = self.params(req)
        orders = sorted(self.mine(req, p, open_=False), key=lambda o: o.ts_created, reverse=True)
        ofs = int(p["ofs"]) if p.get("ofs", "").isdigit() else 0
        trades = p.get("trades") in ("true", "1")
        page = {str(o.order_id): self.order_info(o, trades) for o in orders[ofs:ofs + 50]}
        return {"error": [], "result": {"closed": page, "count": len(orders)}}

    def holdings(self, req: Req) -> dict[str, tuple[Decimal, Decimal]]:
        wallet = self.core.wallet(req.account)  # type: ignore[arg-type]
        assets = sorted(set(wallet.free) | set(wallet.locked))
        return {ASSET.get(a, a): (wallet.available(a) + wallet.locked.get(a, D(0)), wallet.locked.get(a, D(0)))
                for a in assets}

    async def balance(self, req: Req) -> Any:
        return {"error": [], "result": {a: text(total) for a, (total, _) in self.holdings(req).items()}}

    async def balance_ex(self, req: Req) -> Any:
        return {"error": [], "result": {a: {"balance": text(total), "hold_trade": text(hold)}
                                        for a, (total, hold) in self.holdings(req).items()}}

    async def trades_history(self, req: Req) -> Any:
        p = self.params(req)
        try:
            start = Decimal(p.get("start") or "0")
            end = Decimal(p["end"]) if p.get("end") else None
        except InvalidOperation:
            raise Refusal("bad_request", "start") from None
        fills = [(o, f) for o, f in self.core.fills(req.account)  # type: ignore[arg-type]
                 if Decimal(f.ts) / 10**9 > start and (end is None or Decimal(f.ts) / 10**9 <= end)][::-1]
        ofs = int(p["ofs"]) if p.get("ofs", "").isdigit() else 0
        return {"error": [], "result": {"trades": {self.trade_txid(f): self.trade(o, f)
                                                   for o, f in fills[ofs:ofs + 50]}, "count": len(fills)}}

    @staticmethod
    def trade_txid(f: Fill) -> str:
        """The trade's txid: its TradesHistory key, and ``exec_id`` on the private stream."""
        return kraken_id("T", f.trade_id)

    def trade(self, o: Order, f: Fill) -> dict[str, Any]:
        spec = self.core.markets[o.symbol]
        return {"ordertxid": str(o.order_id), "postxid": kraken_id("P", f.trade_id), "pair": KEY[spec.venue_symbol],
                "time": f.ts / 1e9, "type": o.side, "ordertype": o.order_type, "price": text(f.price),
                "cost": text(f.quote_quantity), "fee": text(f.fee), "vol": text(f.quantity), "margin": "0",
                "leverage": "0", "misc": "", "trade_id": f.trade_id, "maker": f.is_maker}


DIALECT = KrakenDialect
