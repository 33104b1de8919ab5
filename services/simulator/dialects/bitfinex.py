"""Bitfinex v2 as the simulator speaks it, on the simulator core.

Followed: docs.bitfinex.com "REST Auth" (headers ``bfx-apikey``/``bfx-nonce``/``bfx-signature``,
signature = hex HMAC-SHA384(secret, "/api/" + path + nonce + raw body), nonce strictly
increasing per key and at most 9007199254740991), "Submit Order" (EXCHANGE types, signed
amount, ``cid`` int45 unique per UTC day but not enforced, flag 4096 post-only, the
``on-req`` notification), "Cancel Order" (``id``, or ``cid`` + ``cid_date``), "Retrieve
Orders" (``/auth/r/orders[/{symbol}]``, active only, ``id`` filter), "Orders History"
(closed and canceled, ``id``/``limit`` filters), "Wallets", "Trades" (``/auth/r/trades
[/{symbol}]/hist``), public "Ticker", "Book" (P0, ``len``), "Configs" (pair list), the
"Abbreviation Glossary" error codes (10020 params, 10100 auth, 10114 nonce), "Price
Precision" (5 significant digits, longer prices truncated) and "Requirements and
Limitations" (per-endpoint limits per IP, 10-90/min; blocked 60 s). Error replies and
texts as ccxt's bitfinex maps them (``["error", code, text]``, HTTP 500; 429 for limits).

Where the simulator differs: only exchange-wallet order types (no margin, stop, trailing,
OCO, TIF); no order groups or ``meta``; one ``exchange`` wallet per currency; minimum sizes
are not recorded (see MARKETS); a post-only order that would match is refused instead of
being accepted and canceled as "POSTONLY CANCELED"; order history is unbounded in time.
The authenticated WebSocket (``auth``, account channel 0) is services.simulator.dialects.bitfinex_private;
public WebSocket channels are not served.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone
from decimal import ROUND_DOWN, Decimal
from typing import Any

from aiohttp import web

from services.simulator.config import Account
from services.simulator.core import MarketSpec, Refusal
from services.simulator.dialect import Dialect, Limit, Req, Route
from services.simulator.dialects.bitfinex_private import BitfinexPrivate
from services.simulator.matching import Fill, Order

_BALANCES = {a: Decimal(n) for a, n in {"USD": "10000000", "TESTUSD": "10000000", "TESTBTC": "100", "BTC": "100", "ETH": "1000",
                                          "DOG": "1000", "ODE": "10000000", "IOT": "1000000", "MNA": "10000000",
                                          "BFT": "10000000", "SNG": "10000000"}.items()}
_ASSET = {"USDT": "UST"}  # exbus asset -> Bitfinex currency
_PAIR_ORDER_TYPES = {"EXCHANGE LIMIT": ("limit", "gtc"), "EXCHANGE MARKET": ("market", "gtc"),
                     "EXCHANGE IOC": ("limit", "ioc"), "EXCHANGE FOK": ("limit", "fok")}
POST_ONLY, MAX_NONCE, MAX_CID = 4096, 9007199254740991, 2**45
E8 = Decimal("0.00000001")


def _market(symbol: str, venue_symbol: str, min_size: str) -> MarketSpec:
    # prices: 5 significant digits, at most 8 decimals (checked in place); amounts: 8 decimals
    return MarketSpec(symbol, venue_symbol, tick=E8, lot=E8, min_quantity=Decimal(min_size))


def _five_digits(price: Decimal) -> Decimal:
    """docs "Price Precision": the API truncates a price to 5 significant digits."""
    if not price:
        return price
    exponent = price.adjusted() - 4
    return price.quantize(Decimal(1).scaleb(exponent), ROUND_DOWN) if exponent < 0 else \
        (price.scaleb(-exponent).to_integral_value(ROUND_DOWN)).scaleb(exponent)


def _number(text: str) -> str:
    """Decimal text as in Bitfinex status strings (``60408.0``, ``-0.01``)."""
    s = format(Decimal(text).normalize(), "f")
    return s if "." in s else s + ".0"


class BitfinexDialect(BitfinexPrivate, Dialect):
    name = "bitfinex"
    WEBSOCKET = True  # the authenticated account channel on /ws/2 (dialects.bitfinex_private)
    DECIMALS_AS_NUMBERS = True  # Bitfinex arrays carry JSON numbers
    CLIENT_IDS = "none"  # "cid: should be unique in the day (UTC) (not enforced)"
    MAKER_FEE, TAKER_FEE = Decimal("0.001"), Decimal("0.002")  # bitfinex.com/fees, base tier
    FEE_IN_QUOTE = False  # exchange-trade fees come out of the currency received
    ROUTES = [
        Route("GET", "/v2/ticker/{symbol}", "ticker", limits=("ticker",)),
        Route("GET", "/v2/book/{symbol}/{precision}", "book", limits=("book",)),
        Route("GET", "/v2/conf/pub:list:pair:exchange", "pairs", limits=("conf",)),
        Route("POST", "/v2/auth/w/order/submit", "submit", signed=True, limits=("submit",), kind="place"),
        Route("POST", "/v2/auth/w/order/cancel", "cancel", signed=True, limits=("cancel",), kind="cancel"),
        Route("POST", "/v2/auth/r/orders", "active", signed=True, limits=("orders",)),
        Route("POST", "/v2/auth/r/orders/hist", "closed", signed=True, limits=("orders_hist",)),
        Route("POST", "/v2/auth/r/orders/{symbol}", "active", signed=True, limits=("orders",)),
        Route("POST", "/v2/auth/r/orders/{symbol}/hist", "closed", signed=True, limits=("orders_hist",)),
        Route("POST", "/v2/auth/r/wallets", "wallets", signed=True, limits=("wallets",)),
        Route("POST", "/v2/auth/r/trades/hist", "trades", signed=True, limits=("trades",)),
        Route("POST", "/v2/auth/r/trades/{symbol}/hist", "trades", signed=True, limits=("trades",)),
    ]
    # per endpoint, per IP ("Rate Limit: N reqs/min" on each reference page; ccxt cost 2.7 @ 250 ms = 90/min)
    LIMITS = {name: Limit(n, 60, "ip") for name, n in {
        "ticker": 90, "book": 240, "conf": 90, "submit": 90, "cancel": 90, "orders": 90, "orders_hist": 90,
        "wallets": 90, "trades": 90}.items()}
    # The books of ../shared/data/recorded/BITFINEX.ws.11.0. Minimum sizes (pub:info:pair) are not
    # recorded: BTC-like pairs take Bitfinex's 0.00004 BTC (the error text in ccxt's tests); the
    # others about USD 5 worth at the recorded prices (assumption).
    MARKETS = [
        _market("TESTBTC-TESTUSD", "tTESTBTC:TESTUSD", "0.00004"),
        _market("DOG-USD", "tDOGUSD", "0.00002"),
        _market("ODE-USD", "tODEUSD", "250"),
        _market("IOT-ETH", "tIOTETH", "2"),
        _market("MNA-BTC", "tMNABTC", "4"),
        _market("BFT-USD", "tBFTUSD", "70"),
        _market("SNG-USD", "tSNGUSD", "130"),
    ]
    DEFAULT_ACCOUNTS = [
        Account(name="demo", api_key="sim-bitfinex-demo-key", secret="sim-bitfinex-demo-secret-0000000000000000000000000000000000000000", balances=_BALANCES),
        Account(name="taker", api_key="sim-bitfinex-taker-key", secret="sim-bitfinex-taker-secret-000000000000000000000000000000000000000", balances=_BALANCES),
    ]
    """Paper accounts of the simulator (not anyone's secrets): ``demo`` for strategies and
    the demo, ``taker`` for the other side of the market in tests."""

    # -- authentication and refusals ------------------------------------------------------

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.init_private()

    def add_ws_routes(self, app: web.Application) -> None:
        self.add_private_route(app)

    async def authenticate(self, req: Req) -> Account:
        headers = req.request.headers
        nonce = headers.get("bfx-nonce", "")
        signed = f"/api/{req.path.lstrip('/')}{nonce}".encode() + req.body
        return self.verify(headers.get("bfx-apikey", ""), signed, headers.get("bfx-signature", ""), nonce)

    def verify(self, api_key: str, signed: bytes, signature: str, nonce: str) -> Account:
        """The account whose secret signed ``signed`` (hex HMAC-SHA384), with a valid, increasing
        nonce: REST requests and the WebSocket ``auth`` event alike."""
        account = self.core.account(api_key)
        expected = hmac.new(account.secret.encode(), signed, hashlib.sha384).hexdigest()
        if not signature.isascii() or not hmac.compare_digest(expected, signature.lower()):
            raise Refusal("bad_signature", "apikey: digest invalid")
        if not nonce.isdigit() or int(nonce) > MAX_NONCE:
            raise Refusal("nonce", "nonce: invalid")
        self.core.increasing_nonce(account, int(nonce))
        return account

    def refuse(self, refusal: Refusal, req: Req) -> tuple[int, Any, dict[str, str]]:
        if refusal.kind in ("rate_limited", "banned"):  # no Retry-After: the IP is blocked for 60 s
            return 429, ["error", 11010, "ratelimit: error"], {}
        return 500, ["error", *self.refusal_code(refusal)], {}

    @staticmethod
    def refusal_code(refusal: Refusal) -> tuple[int, str]:
        """Bitfinex's (code, text) for a refusal (the "Abbreviation Glossary" codes)."""
        kind, detail = refusal.kind, refusal.detail
        return {
            "bad_key": (10100, "apikey: invalid"),
            "bad_signature": (10100, "apikey: digest invalid"),
            "expired": (10114, "nonce: small"),
            "nonce": (10114, detail if detail.startswith("nonce:") else "nonce: small"),
            "insufficient_balance": (10001, f"Invalid order: not enough exchange balance for {detail}"),
            "unknown_order": (10001, "Order not found."),
            "order_closed": (10001, "Order not found."),
            "unknown_symbol": (10020, "symbol: invalid"),
            "tick_size": (10020, "price: invalid"),
            "lot_size": (10020, "amount: invalid"),
            "min_quantity": (10001, f"Invalid order: minimum size for {detail}"),
            "min_notional": (10001, f"Invalid order: minimum size for {detail}"),
            "would_take": (10001, "Invalid order: post only order would be filled immediately"),
            "duplicate_order": (10001, "Invalid order: duplicate cid"),
            "maintenance": (20060, "maintenance"),
        }.get(kind, (10020, detail or "request: invalid"))

    def server_error(self, status: int) -> Any:
        if status == 429:
            return ["error", 11010, "ratelimit: error"]
        if status == 503:  # the body ccxt's bitfinex quotes for 503
            return {"code": 503, "error": "temporarily_unavailable",
                    "error_description": "Sorry, the service is temporarily unavailable. See https://www.bitfinex.com/ for more info."}
        return ["error", 10000, "ERR_UNK"]

    # -- public ------------------------------------------------------------------------------

    async def ticker(self, req: Req) -> Any:
        spec = self.core.spec(req.match["symbol"])
        bid, ask = self.core.best(spec.symbol, "buy"), self.core.best(spec.symbol, "sell")
        fills = [f for o in self.core.orders.values() if o.symbol == spec.symbol for f in o.fills]
        last = max(fills, key=lambda f: f.ts).price if fills else (bid[0] if bid else None)
        volume = sum((f.quantity for f in fills), Decimal(0)) / 2  # each trade has two sides here
        prices = [f.price for f in fills] or [last]
        return [bid[0] if bid else None, bid[1] if bid else None, ask[0] if ask else None, ask[1] if ask else None,
                0, 0, last, volume, max(p for p in prices if p is not None) if last else None,
                min(p for p in prices if p is not None) if last else None]

    async def book(self, req: Req) -> Any:
        spec = self.core.spec(req.match["symbol"])
        if req.match["precision"] != "P0":
            raise Refusal("bad_request", "prec: invalid")  # P1-P4/R0 aggregate differently
        length = req.query().get("len", "25")
        if length not in ("1", "25", "100"):
            raise Refusal("bad_request", "len: invalid")
        depth = int(length)
        bids = [[p, 1, q] for p, q in self.core.levels(spec.symbol, "buy", depth)]
        asks = [[p, 1, -q] for p, q in self.core.levels(spec.symbol, "sell", depth)]
        return bids + asks

    async def pairs(self, req: Req) -> Any:
        return [[m.venue_symbol[1:] for m in self.MARKETS]]

    # -- orders --------------------------------------------------------------------------------

    async def submit(self, req: Req) -> Any:
        body = self._body(req)
        kind = body.get("type")
        if kind not in _PAIR_ORDER_TYPES:
            raise Refusal("bad_request", "type: invalid")
        spec = self.core.spec(str(body.get("symbol", "")))
        amount = _decimal(body.get("amount"), "amount")
        if not amount:
            raise Refusal("bad_request", "amount: invalid")
        order_type, tif = _PAIR_ORDER_TYPES[kind]
        price = None
        if order_type == "limit":
            price = _five_digits(_decimal(body.get("price"), "price"))
            if price <= 0:
                raise Refusal("bad_request", "price: invalid")
        cid, flags = _integer(body.get("cid", 0), "cid"), _integer(body.get("flags", 0), "flags")
        if not 0 <= cid < MAX_CID:
            raise Refusal("bad_request", "cid: invalid")
        side = "buy" if amount > 0 else "sell"
        order = Order(order_id=self.core.next_id(), client_order_id=str(cid) if cid else "", account=req.account.name,  # type: ignore[union-attr]
                      symbol=spec.symbol, side=side, order_type=order_type, time_in_force=tif,  # type: ignore[arg-type]
                      post_only=bool(flags & POST_ONLY), price=price, quantity=abs(amount),
                      venue_fields={"type": kind, "flags": flags, "cid": cid or None})
        pair = f"{spec.base}/{spec.quote}"
        try:
            self.core.place(order)
        except Refusal as r:
            if r.kind == "insufficient_balance":
                raise Refusal(r.kind, f"{_number(str(amount))} {spec.base}{spec.quote} at {price or 'market'}") from None
            if r.kind in ("min_quantity", "min_notional"):
                raise Refusal(r.kind, f"{pair} is {_number(str(spec.min_quantity))}") from None
            raise
        return [self.now_ms(), "on-req", None, None, [self._row(order)], None, "SUCCESS", "Submitting 1 orders."]

    async def cancel(self, req: Req) -> Any:
        body = self._body(req)
        if "id" in body:
            order = self.core.find(req.account, order_id=_integer(body["id"], "id"), open_only=True)  # type: ignore[arg-type]
        elif "cid" in body and "cid_date" in body:
            cid = str(_integer(body["cid"], "cid"))
            day = str(body["cid_date"])
            order = next((o for o in self.core.open_orders(req.account)  # type: ignore[arg-type]
                          if o.client_order_id == cid and _day(o.ts_created) == day), None)
            if order is None:
                raise Refusal("unknown_order", f"no open order with cid {cid} created on {day}")
        else:
            raise Refusal("bad_request", "id: invalid")
        self.core.cancel(order)
        return [self.now_ms(), "oc-req", None, None, self._row(order), None, "SUCCESS",
                f"Submitted for cancellation; waiting for confirmation (ID: {order.order_id})."]

    async def active(self, req: Req) -> Any:
        ids = self._ids(req)
        symbol = self.core.spec(req.match["symbol"]).symbol if "symbol" in req.match else None
        orders = [o for o in self.core.open_orders(req.account, symbol) if ids is None or int(o.order_id) in ids]  # type: ignore[arg-type]
        return [self._row(o) for o in sorted(orders, key=lambda o: int(o.order_id), reverse=True)]

    async def closed(self, req: Req) -> Any:
        body, ids = self._body(req), self._ids(req)
        symbol = self.core.spec(req.match["symbol"]).symbol if "symbol" in req.match else None
        start, end = _integer(body.get("start", 0), "start"), _integer(body.get("end", 2**62), "end")
        limit = min(_integer(body.get("limit", 25), "limit"), 2500)
        orders = [o for o in self.core.account_orders(req.account, symbol)  # type: ignore[arg-type]
                  if not o.is_open and (ids is None or int(o.order_id) in ids)
                  and start <= o.ts_updated // 1_000_000 <= end]
        return [self._row(o) for o in sorted(orders, key=lambda o: o.ts_updated, reverse=True)[:limit]]

    async def wallets(self, req: Req) -> Any:
        wallet = self.core.wallet(req.account)  # type: ignore[arg-type]
        rows = []
        for asset in wallet.assets():
            free, locked = wallet.available(asset), wallet.locked.get(asset, Decimal(0))
            rows.append(["exchange", _ASSET.get(asset, asset), free + locked, 0, free, None, None])
        return rows

    async def trades(self, req: Req) -> Any:
        body = self._body(req)
        symbol = self.core.spec(req.match["symbol"]).symbol if "symbol" in req.match else None
        start, end = _integer(body.get("start", 0), "start"), _integer(body.get("end", 2**62), "end")
        limit = min(_integer(body.get("limit", 25), "limit"), 2500)
        fills = [(o, f) for o, f in self.core.fills(req.account, symbol) if start <= f.ts // 1_000_000 <= end]  # type: ignore[arg-type]
        return [self._trade_row(o, f) for o, f in sorted(fills, key=lambda of: of[1].ts, reverse=True)[:limit]]

    # -- rendering -----------------------------------------------------------------------------

    def _row(self, o: Order) -> list[Any]:
        """An order array (docs "Retrieve Orders": ID, GID, CID, SYMBOL, MTS_CREATE, ... META)."""
        sign = 1 if o.side == "buy" else -1
        fill = f"@ {_number(str(o.average_price))}({_number(str(sign * o.filled))})"
        status = {"new": "ACTIVE", "partially_filled": f"PARTIALLY FILLED {fill}", "filled": f"EXECUTED {fill}"}.get(
            o.status, f"CANCELED was: PARTIALLY FILLED {fill}" if o.filled else "CANCELED")
        row: list[Any] = [None] * 32
        row[0:9] = [o.order_id, None, o.venue_fields.get("cid"), self.core.markets[o.symbol].venue_symbol,
                    o.ts_created // 1_000_000, o.ts_updated // 1_000_000, sign * o.remaining, sign * (o.quantity or 0),
                    o.venue_fields.get("type", "EXCHANGE LIMIT")]
        row[12], row[13], row[16], row[17] = o.venue_fields.get("flags", 0), status, o.price or o.average_price, o.average_price
        row[23], row[24], row[28], row[31] = 0, 0, "API>BFX", {"$F7": 1 if o.post_only else 0}
        return row

    def _trade_row(self, o: Order, f: Fill) -> list[Any]:
        """A trade array (docs "Trades": ID, SYMBOL, MTS, ORDER_ID, EXEC_AMOUNT, EXEC_PRICE,
        ORDER_TYPE, ORDER_PRICE, MAKER, FEE, FEE_CURRENCY, CID); FEE negative = charged."""
        sign = 1 if o.side == "buy" else -1
        return [f.trade_id, self.core.markets[o.symbol].venue_symbol, f.ts // 1_000_000, o.order_id, sign * f.quantity,
                f.price, o.venue_fields.get("type", "EXCHANGE LIMIT"), o.price or f.price, 1 if f.is_maker else -1,
                -f.fee, _ASSET.get(f.fee_asset, f.fee_asset), o.venue_fields.get("cid")]

    @staticmethod
    def _body(req: Req) -> dict[str, Any]:
        body = req.json()
        if not isinstance(body, dict):
            raise Refusal("bad_request", "request: invalid")
        return body

    def _ids(self, req: Req) -> set[int] | None:
        ids = self._body(req).get("id")
        if ids is None:
            return None
        if not isinstance(ids, list):
            raise Refusal("bad_request", "id: invalid")
        return {_integer(i, "id") for i in ids}


def _decimal(value: Any, name: str) -> Decimal:
    try:
        number = Decimal(str(value)) if isinstance(value, (str, int, Decimal)) and not isinstance(value, bool) else None
    except ArithmeticError:
        number = None
    if number is None or not number.is_finite():
        raise Refusal("bad_request", f"{name}: invalid")
    return number


def _integer(value: Any, name: str) -> int:
    number = _decimal(value, name)
    if number != number.to_integral_value():
        raise Refusal("bad_request", f"{name}: invalid")
    return int(number)


def _day(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%d")


DIALECT = BitfinexDialect
