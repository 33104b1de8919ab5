"""Upbit Open API v1 as the simulator speaks it, on the simulator core.

REST under ``/v1`` (docs.upbit.com reference: paths, parameters, JSON shapes, error
names); the public WebSocket stream and replay are in
:mod:`services.simulator.dialects.upbit_streams`, the private stream (myOrder, myAsset) in
:mod:`services.simulator.dialects.upbit_private`.

Requests are authenticated as the docs define it (:mod:`services.simulator.jwt_query`,
shared with Bithumb): ``Authorization: Bearer <JWT>`` signed HS256 or HS512 with the
secret key; payload ``access_key``, ``nonce`` (never reused), and when there are
parameters ``query_hash`` = hex SHA512 of the query string (for a JSON body: its keys and
values as ``k=v&...``, lists as ``k[]=v``), ``query_hash_alg`` = SHA512.

Rate limits are Remaining-Req groups per second: quotation groups per IP, exchange groups
per account. Where the docs name no error (a repeated ``identifier``, 429/418 bodies) the
simulator's choice is stated at the constant that holds it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from services.simulator.clock import Clock
from services.simulator.config import DEFAULT_RECORDED_DIR, Account, BanPolicy, UpbitSettings, VenueSettings
from services.simulator.core import MarketSpec, Refusal
from services.simulator.dialect import Dialect, Limit, Reply, Req, Route
from services.simulator.dialects.upbit_private import UpbitPrivate
from services.simulator.dialects.upbit_streams import MarketStats, UpbitStreams
from services.simulator.jwt_query import JwtRefusal, JwtRules, verify_jwt_request
from services.simulator.ledger import Ledger
from services.simulator.matching import ZERO, FeeModel, Order
from services.simulator.recorded import load_upbit
from services.simulator.venue import parse_decimal

KST = timezone(timedelta(hours=9))
DUPLICATE_IDENTIFIER = "duplicate_identifier"
"""Upbit documents that a used ``identifier`` is refused even after a failed order, but not
the error name; the simulator answers 400 with this name."""
REMAINING_REQ_MIN = 1800
"""The deprecated ``min`` field of Remaining-Req, a fixed value per the docs."""
STATE = {"new": "wait", "partially_filled": "wait", "filled": "done", "canceled": "cancel", "expired": "cancel"}
KRW_TICKS = tuple((Decimal(lowest), Decimal(tick)) for lowest, tick in (
    ("2000000", "1000"), ("1000000", "500"), ("500000", "100"), ("100000", "50"), ("10000", "10"), ("1000", "1"),
    ("100", "0.1"), ("10", "0.01"), ("1", "0.001"), ("0.1", "0.0001"), ("0.01", "0.00001"), ("0.001", "0.000001"),
    ("0.0001", "0.0000001"), ("0", "0.00000001")))
"""KRW market ticks by price (docs.upbit.com 원화 마켓 호가 단위). Where the table has
changed over time the finer tick of the band is kept, so a price the venue accepts is never
refused here; other quotes: 8 decimals."""
JWT_RULES = JwtRules(hash_algs=("SHA512", "SHA256", "SHA384"))
JWT_ERRORS = {  # jwt_query reason -> (status, name, message)
    "no_token": (401, "no_authorization_token", "Authorization token does not exist."),
    "unknown_key": (401, "invalid_access_key", "Invalid access key."),
    "query_hash": (401, "invalid_query_payload", "The Jwt query payload does not match the request."),
    "nonce_used": (401, "nonce_used", "The nonce has already been used."),
}


class UpbitError(Refusal):
    """An error answer: HTTP status and {"error": {"name": ..., "message": ...}}."""

    def __init__(self, status: int, name: str | int, message: str) -> None:
        super().__init__("bad_request", message)
        self.status, self.name, self.message = status, name, message


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


def _quotation(path: str, handler: str, group: str) -> Route:
    """A public route: its group's limit per IP; decimals as JSON numbers, as Upbit quotes them."""
    return Route("GET", path, handler, limits=(group,), decimals_as_numbers=True)


def _exchange(method: str, path: str, handler: str, group: str = "default", kind: Any = None) -> Route:
    return Route(method, path, handler, signed=True, limits=(group,), kind=kind)


class UpbitDialect(UpbitPrivate, UpbitStreams, Dialect):
    """The simulated Upbit: markets from the recorded /v1/market/all, books and statistics
    from the recorded WebSocket frames."""

    name = "upbit"
    ROUTES = [
        _quotation("/v1/market/all", "market_all", "market"),
        _quotation("/v1/ticker", "ticker", "ticker"),
        _quotation("/v1/orderbook", "orderbook", "orderbook"),
        _exchange("GET", "/v1/accounts", "accounts_list"),
        _exchange("POST", "/v1/orders", "new_order", "order", kind="place"),
        _exchange("DELETE", "/v1/order", "cancel_order", kind="cancel"),
        _exchange("GET", "/v1/order", "get_order"),
        _exchange("GET", "/v1/orders/open", "open_orders"),
        _exchange("GET", "/v1/orders/closed", "closed_orders"),
    ]
    LIMITS = {  # requests per second by Remaining-Req group; UpbitSettings.rate_limits overrides
        "market": Limit(10, 1, "ip"), "ticker": Limit(10, 1, "ip"), "orderbook": Limit(10, 1, "ip"),
        "default": Limit(30, 1, "account"), "order": Limit(30, 1, "account"),
    }
    DEFAULT_ACCOUNTS: list[Account] = []
    CLIENT_IDS = "forever"
    WEBSOCKET = True
    READS_RECORDED = True

    def __init__(self, settings: UpbitSettings, clock: Clock, ledger: Ledger, ban: BanPolicy,
                 recorded: Path | None = None) -> None:
        self.upbit = settings
        self.recording = load_upbit(recorded or DEFAULT_RECORDED_DIR)
        self.market_list = self.recording.markets
        self.MARKETS = []
        for m in self.market_list:
            quote, base = m["market"].split("-", 1)
            self.MARKETS.append(MarketSpec(
                m["market"], m["market"], Decimal("0.00000001"), ZERO, min_notional=settings.min_total.get(quote, ZERO),
                base_asset=base, quote_asset=quote, tick_table=KRW_TICKS if quote == "KRW" else ()))
        super().__init__(VenueSettings(accounts=settings.accounts, rate_limits=settings.rate_limits), clock, ledger, ban)
        self.core.post_only_taking = "cancel"  # post_only at a taker price: canceled, nothing executes
        self.core.describe = self._ledger_error
        self.init_streams()
        self.init_upbitlike_private()

    def fee_model(self, settings: VenueSettings) -> FeeModel:
        rate = lambda m: self.upbit.fees.get(m.quote, Decimal("0.0025"))  # noqa: E731 - maker = taker, by quote
        return FeeModel(maker=rate, taker=rate, in_quote=True)

    def initial_books(self) -> dict[str, Any]:
        return {}  # the recorded frames, applied by init_streams

    # -- authentication, errors, Remaining-Req ------------------------------------------------

    async def authenticate(self, req: Req) -> Account:
        verified = verify_jwt_request(self.core, req, JWT_RULES)
        req.params = verified.params
        return verified.account

    def _error(self, r: Refusal, quotation: bool = False) -> tuple[int, str | int, str]:
        if isinstance(r, UpbitError):
            return r.status, r.name, r.message
        if isinstance(r, JwtRefusal):
            if r.reason == "body":
                return 400, "validation_error", "The request body is not JSON." if "not JSON" in r.detail else \
                    "The request body must be a JSON object."
            return JWT_ERRORS.get(r.reason, (401, "jwt_verification", "Failed to verify Jwt token."))
        side = "bid" if r.order is not None and r.order.side == "buy" else "ask"
        if r.kind == "banned":
            return 418, 418 if quotation else "too_many_requests", \
                f"Your requests are blocked for {r.retry_after} seconds after repeated rate limit violations."
        if r.kind == "rate_limited":
            return 429, 429 if quotation else "too_many_requests", "Too many API requests."
        if r.kind == "tick_size":
            return 400, f"invalid_price_{side}", "주문가격 단위를 잘못 입력하셨습니다. 확인 후 시도해주세요."
        if r.kind == "min_notional" and r.order is not None:
            minimum = self.core.markets[r.order.symbol].min_notional
            return 400, f"under_min_total_{side}", f"The order total must be at least {minimum}."
        return {
            "duplicate_order": (400, DUPLICATE_IDENTIFIER, "The identifier has already been used."),
            "insufficient_balance": (400, f"insufficient_funds_{side}", "Insufficient balance for the order."),
            "unknown_order": (404, "order_not_found", "Order not found."),
        }.get(r.kind, (400, "validation_error", str(r)))

    def _ledger_error(self, refusal: Refusal) -> tuple[str, str]:
        _, name, message = self._error(refusal)
        return str(name), message

    def refuse(self, refusal: Refusal, req: Req) -> tuple[int, Any, dict[str, str]]:
        status, name, message = self._error(refusal, quotation=req.route is not None and not req.route.signed)
        headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after is not None else {}
        return status, {"error": {"name": name, "message": message}}, headers

    def server_error(self, status: int) -> Any:
        return {"error": {"name": "server_error", "message": "Internal server error."}}

    def usage_headers(self, req: Req, windows: list[Any]) -> dict[str, str]:
        if not windows:
            return {}
        _, w = windows[-1]
        return {"Remaining-Req": f"group={w.name}; min={REMAINING_REQ_MIN}; sec={max(0, w.limit - w.current(req.now))}"}

    # -- quotation --------------------------------------------------------------------------

    def _markets_param(self, req: Req) -> list[str]:
        text = req.request.query.get("markets", "")
        if not text:
            raise UpbitError(400, 400, "markets is missing.")
        names = [m.strip() for m in text.split(",") if m.strip()]
        if any(m not in self.core.markets for m in names):
            raise UpbitError(404, 404, "Code not found")
        return names

    async def market_all(self, req: Req) -> Any:
        if req.request.query.get("is_details") == "true":
            return [m | {"market_warning": "NONE"} for m in self.market_list]
        return self.market_list

    async def orderbook(self, req: Req) -> Any:
        out = []
        for market in self._markets_param(req):
            asks, bids = self.core.levels(market, "sell", 15), self.core.levels(market, "buy", 15)
            units = [{"ask_price": a[0] if a else ZERO, "bid_price": b[0] if b else ZERO,
                      "ask_size": a[1] if a else ZERO, "bid_size": b[1] if b else ZERO}
                     for a, b in zip(asks + [None] * (15 - len(asks)), bids + [None] * (15 - len(bids)))
                     if a or b]
            out.append({"market": market, "timestamp": self.now_ms(),
                        "total_ask_size": sum((q for _, q in asks), ZERO),
                        "total_bid_size": sum((q for _, q in bids), ZERO),
                        "orderbook_units": units, "level": 0})
        return out

    async def ticker(self, req: Req) -> Any:
        out = []
        for market in self._markets_param(req):
            st = self.stats.get(market, MarketStats())
            change = st.last - st.prev_close if st.prev_close else ZERO
            rate = (change / st.prev_close).quantize(Decimal("0.00000001")) if st.prev_close else ZERO
            ts = datetime.fromtimestamp(st.trade_ts / 1000, timezone.utc) if st.trade_ts else None
            day = (lambda f: ts.strftime(f) if ts else None)  # noqa: E731
            out.append({
                "market": market, "trade_date": day("%Y%m%d"), "trade_time": day("%H%M%S"),
                "trade_date_kst": ts.astimezone(KST).strftime("%Y%m%d") if ts else None,
                "trade_time_kst": ts.astimezone(KST).strftime("%H%M%S") if ts else None,
                "trade_timestamp": st.trade_ts, "opening_price": st.opening, "high_price": st.high,
                "low_price": st.low, "trade_price": st.last, "prev_closing_price": st.prev_close,
                "change": "RISE" if change > 0 else "FALL" if change < 0 else "EVEN",
                "change_price": abs(change), "change_rate": abs(rate),
                "signed_change_price": change, "signed_change_rate": rate, "trade_volume": st.last_volume,
                "acc_trade_price": st.acc_price, "acc_trade_price_24h": st.acc_price,
                "acc_trade_volume": st.acc_volume, "acc_trade_volume_24h": st.acc_volume,
                "highest_52_week_price": st.high, "highest_52_week_date": day("%Y-%m-%d"),
                "lowest_52_week_price": st.low, "lowest_52_week_date": day("%Y-%m-%d"),
                "timestamp": self.now_ms(),
            })
        return out

    # -- exchange ---------------------------------------------------------------------------

    async def accounts_list(self, req: Req) -> Any:
        wallet = self.core.wallet(req.account)  # type: ignore[arg-type]
        return [{"currency": a, "balance": num(wallet.available(a)), "locked": num(wallet.locked.get(a, ZERO)),
                 "avg_buy_price": "0", "avg_buy_price_modified": False, "unit_currency": "KRW"}
                for a in wallet.assets() if wallet.available(a) or wallet.locked.get(a)]

    @staticmethod
    def _number(params: dict[str, Any], name: str) -> Decimal | None:
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
        if market not in self.core.markets:
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
            best = self.core.best(market, "sell" if order.side == "buy" else "buy")
            order.price = best[0] if best else None
        return order

    async def new_order(self, req: Req) -> Any:
        account, identifier = req.account, str(req.params.get("identifier") or "")
        try:
            if identifier:  # used up even if the order then fails
                self.core.claim_client_id(account, identifier)  # type: ignore[arg-type]
            order = self._parse_order(account, req.params)  # type: ignore[arg-type]
        except Refusal as r:
            self.core.record_refusal(account.name, identifier, r)  # type: ignore[union-attr]
            raise
        self.core.place(order)  # min_total, post_only, balance
        return Reply(self._order_json(order), 201)

    def _find(self, req: Req) -> Order:
        order_uuid, identifier = req.params.get("uuid"), req.params.get("identifier")
        if not order_uuid and not identifier:
            raise validation_error("uuid or identifier is required")
        if order_uuid:
            return self.core.find(req.account, order_id=order_uuid)  # type: ignore[arg-type]
        return self.core.find(req.account, client_order_id=identifier)  # type: ignore[arg-type]

    async def cancel_order(self, req: Req) -> Any:
        order = self._find(req)
        if not order.is_open:
            raise UpbitError(404, "order_not_found", "Order not found.")
        before = self._order_json(order)  # the venue answers with the order as it was (cancel is asynchronous)
        self.core.exchange.cancel(order)
        return before

    async def get_order(self, req: Req) -> Any:
        return self._order_json(self._find(req), trades=True)

    def _list(self, req: Req, open_: bool) -> list[dict[str, Any]]:
        params = req.params
        states = params.get("states") or ([params["state"]] if params.get("state") else None)
        limit = int(params.get("limit") or 100)
        if not 1 <= limit <= 1000:
            raise validation_error("limit does not have a valid value")
        out = [o for o in self.core.account_orders(req.account, params.get("market") or None)  # type: ignore[arg-type]
               if o.is_open == open_ and (not states or STATE[o.status] in states)]
        out.sort(key=lambda o: o.ts_created, reverse=params.get("order_by", "desc") == "desc")
        return [self._order_json(o) for o in out[:limit]]

    async def open_orders(self, req: Req) -> Any:
        return self._list(req, True)

    async def closed_orders(self, req: Req) -> Any:
        return self._list(req, False)

    def _order_json(self, o: Order, *, trades: bool = False) -> dict[str, Any]:
        remaining_fee = ZERO
        if o.side == "buy" and o.is_open and o.price is not None and o.quantity is not None:
            rate = self.upbit.fees.get(self.core.markets[o.symbol].quote, Decimal("0.0025"))
            remaining_fee = (o.remaining * o.price * rate).quantize(Decimal("0.00000001"))
        out: dict[str, Any] = {
            "uuid": o.order_id, "side": "bid" if o.side == "buy" else "ask", "ord_type": o.venue_fields["ord_type"],
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


DIALECT = UpbitDialect
