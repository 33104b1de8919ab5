"""OKX v5 REST (spot, cash mode): what differs from the shared adapter.

Sources: okx.com/docs-v5 "REST Authentication" (OK-ACCESS-SIGN = base64(HMAC-SHA256(secret,
timestamp + METHOD + requestPath[?query] + body)), ISO-8601 ms timestamp, passphrase
header), trade/order, cancel-order, trade/order (GET), orders-pending, account/balance,
trade/fills, public/instruments; error codes (code/sCode) as mapped by ccxt 4.5.90.

Client order ids: ``clOrdId`` allows only 1-32 letters and digits. An exbus id that fits
is sent as is; any other (with ``-`` or ``_``, or longer) is sent as ``x`` + the first 31
hex digits of its SHA-256, deterministically, so status and cancel by client id find it.
Listing open orders cannot map a hashed id back: those orders show client_order_id None.

Order status goes by ``ordId`` once exbus knows it (the docs: "if both are passed, ordId will
be used"; by clOrdId "only the latest one will be returned", and a clOrdId may be used again
once its order is closed), else by ``clOrdId``. A 5xx answer to a place or cancel is
OutcomeUnknown whatever its code: OKX's own 50004 and 51149 say "does not mean that the
request was successful or failed", and a 503 from the gateway cannot tell either. OKX sends
no Retry-After with 50011 / HTTP 429; its limits are counted in 2-second windows, so a
rate-limited call waits one window.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any


from schemas.market import BookSnapshot, PriceLevel, Ticker
from schemas.orders import CancelOrder, PlaceOrder
from schemas.queries import (
    Balance, BalanceQuery, Fill, OpenOrdersQuery, OrderBookQuery, OrderInfo, OrderStatusQuery, TickerQuery,
    TradeHistoryQuery,
)
from schemas.vault import Credentials
from services.venues.base import (
    NON_IDEMPOTENT, CancelAccepted, Endpoint, HttpRequest, Params, RateLimit, RestAdapter, decimal_text,
    percent_encode, retry_after,
)
from services.venues.errors import (
    AuthError, DuplicateOrder, InsufficientBalance, InvalidOrder, OrderNotFound, OutcomeUnknown, RateLimited,
    VenueError, VenueUnavailable,
)
from services.venues.rules import MarketRules
from services.venues.signing import hmac_b64

MS = 1_000_000
_PLAIN_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
STATE = {"live": "open", "partially_filled": "partially_filled", "filled": "filled", "canceled": "canceled",
         "mmp_canceled": "canceled"}

CODES: dict[str, type[VenueError]] = {
    "51008": InsufficientBalance, "51119": InsufficientBalance, "51131": InsufficientBalance,
    "51016": DuplicateOrder,
    "51603": OrderNotFound, "51400": OrderNotFound, "51401": OrderNotFound,
    "50011": RateLimited, "50061": RateLimited, "50040": RateLimited,
    "50004": OutcomeUnknown, "51149": OutcomeUnknown, "51054": OutcomeUnknown,
    "50001": VenueUnavailable, "50013": VenueUnavailable, "50026": VenueUnavailable,
    "50100": AuthError, "50101": AuthError, "50102": AuthError, "50103": AuthError, "50104": AuthError,
    "50105": AuthError, "50106": AuthError, "50107": AuthError, "50111": AuthError, "50112": AuthError,
    "50113": AuthError, "50114": AuthError,
}
WINDOW_S = 2.0
"""The period of OKX's rate limits ("60 requests per 2 seconds"): the wait after a 50011."""


def venue_client_id(client_order_id: str) -> str:
    """exbus client order id -> OKX clOrdId (see the module docstring)."""
    if _PLAIN_ID.match(client_order_id):
        return client_order_id
    return "x" + hashlib.sha256(client_order_id.encode()).hexdigest()[:31]


def iso_ms(time_ms: int) -> str:
    """``2020-12-08T09:08:57.715Z``."""
    t = datetime.fromtimestamp(time_ms // 1000, tz=timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{time_ms % 1000:03d}Z"


def _dec(value: str) -> Decimal | None:
    return Decimal(value) if value not in ("", None) else None


class OkxRest(RestAdapter):
    venue = "okx"
    base_url = "https://www.okx.com"
    rate_limits = (
        RateLimit("order", 60, 2.0, "account"),        # per instrument and user id
        RateLimit("order_query", 60, 2.0, "account"),
        RateLimit("account", 10, 2.0, "account"),
        RateLimit("market", 20, 2.0, "ip"),
    )
    endpoints = {
        "ticker": Endpoint("GET", "/api/v5/market/ticker", False, {"market": 1}),
        "orderbook": Endpoint("GET", "/api/v5/market/books", False, {"market": 1}),
        "instruments": Endpoint("GET", "/api/v5/public/instruments", False, {"market": 1}),
        "place_order": Endpoint("POST", "/api/v5/trade/order", True, {"order": 1}),
        "cancel_order": Endpoint("POST", "/api/v5/trade/cancel-order", True, {"order": 1}),
        "order_status": Endpoint("GET", "/api/v5/trade/order", True, {"order_query": 1}),
        "open_orders": Endpoint("GET", "/api/v5/trade/orders-pending", True, {"order_query": 1}),
        "balance": Endpoint("GET", "/api/v5/account/balance", True, {"account": 1}),
        "trade_history": Endpoint("GET", "/api/v5/trade/fills", True, {"order_query": 1}),
    }

    def venue_client_order_id(self, client_order_id: str) -> str:
        return venue_client_id(client_order_id)

    def sign(self, method: str, path: str, params: Params, creds: Credentials, time_ms: int,
             nonce: str | int | None = None) -> HttpRequest:
        ts = iso_ms(time_ms)
        if method in ("GET", "DELETE"):
            query = percent_encode(params)
            request_path, body = path + (f"?{query}" if query else ""), ""
        else:
            request_path, body = path, json.dumps(dict(params), separators=(",", ":")) if params else ""
        headers = {
            "OK-ACCESS-KEY": creds.api_key,
            "OK-ACCESS-SIGN": hmac_b64(creds.secret, ts + method + request_path + body),
            "OK-ACCESS-TIMESTAMP": ts,
            "OK-ACCESS-PASSPHRASE": creds.passphrase or "",
            "Content-Type": "application/json",
        }
        return HttpRequest(method, f"{self.url}{request_path}", headers, body.encode() if body else None)

    # --- parameters --------------------------------------------------------------------------
    def params_ticker(self, q: TickerQuery) -> Params:
        return [("instId", q.symbol)]

    def params_orderbook(self, q: OrderBookQuery) -> Params:
        return [("instId", q.symbol), ("sz", str(min(q.depth, 400)))]

    def params_instruments(self, _: Any) -> Params:
        return [("instType", "SPOT")]

    def params_place_order(self, o: PlaceOrder) -> Params:
        if o.order_type == "market":
            kind = "market"
        elif o.post_only:
            kind = "post_only"
        else:
            kind = {"gtc": "limit", "ioc": "ioc", "fok": "fok"}[o.time_in_force]
        p: Params = [("instId", o.symbol), ("tdMode", "cash"), ("side", o.side), ("ordType", kind)]
        if o.quote_quantity is not None:
            p += [("sz", decimal_text(o.quote_quantity)), ("tgtCcy", "quote_ccy")]
        else:
            p.append(("sz", decimal_text(o.quantity)))
            if o.order_type == "market":
                p.append(("tgtCcy", "base_ccy"))
        if o.price is not None:
            p.append(("px", decimal_text(o.price)))
        p.append(("clOrdId", venue_client_id(o.client_order_id)))
        return p

    def params_cancel_order(self, c: CancelOrder) -> Params:
        return [("instId", c.symbol), ("clOrdId", venue_client_id(c.client_order_id))]

    def params_order_status(self, q: OrderStatusQuery) -> Params:
        if q.venue_order_id:
            return [("instId", q.symbol), ("ordId", q.venue_order_id)]
        return [("instId", q.symbol), ("clOrdId", venue_client_id(q.client_order_id))]

    def params_open_orders(self, q: OpenOrdersQuery) -> Params:
        return [("instType", "SPOT"), *([("instId", q.symbol)] if q.symbol else [])]

    def params_balance(self, _: BalanceQuery) -> Params:
        return []

    def params_trade_history(self, q: TradeHistoryQuery) -> Params:
        p: Params = [("instType", "SPOT"), ("instId", q.symbol), ("limit", str(min(q.limit, 100)))]
        if q.since is not None:
            p.append(("begin", str(q.since // MS)))
        return p

    # --- parsing ----------------------------------------------------------------------------------
    def parse_ticker(self, payload: Any, q: TickerQuery) -> Ticker:
        t = payload["data"][0]
        ts = int(t["ts"]) * MS
        return Ticker(venue="okx", symbol=q.symbol, ts_event=ts, ts_recv=ts, last=_dec(t["last"]),
                      bid=_dec(t["bidPx"]), bid_size=_dec(t["bidSz"]), ask=_dec(t["askPx"]), ask_size=_dec(t["askSz"]),
                      open_24h=_dec(t["open24h"]), high_24h=_dec(t["high24h"]), low_24h=_dec(t["low24h"]),
                      volume_24h=_dec(t["vol24h"]), quote_volume_24h=_dec(t["volCcy24h"]))

    def parse_orderbook(self, payload: Any, q: OrderBookQuery) -> BookSnapshot:
        b = payload["data"][0]
        side = lambda rows: [PriceLevel(Decimal(px), Decimal(sz)) for px, sz, *_ in rows][: q.depth]  # noqa: E731
        ts = int(b["ts"]) * MS
        seq = b.get("seqId")
        return BookSnapshot(venue="okx", symbol=q.symbol, ts_event=ts, ts_recv=ts, sequence=0,
                            venue_sequence=int(seq) if seq not in (None, "") else None,
                            bids=side(b["bids"]), asks=side(b["asks"]))

    def parse_instruments(self, payload: Any, _: Any) -> dict[str, MarketRules]:
        return {
            i["instId"]: MarketRules(symbol=i["instId"], venue_symbol=i["instId"], tick_size=_dec(i["tickSz"]),
                                     lot_size=_dec(i["lotSz"]), min_quantity=_dec(i["minSz"]),
                                     trading=i.get("state") == "live")
            for i in payload["data"] if i.get("instType", "SPOT") == "SPOT"
        }

    def _order(self, o: dict[str, Any], client_order_id: str | None) -> OrderInfo:
        filled = Decimal(o.get("accFillSz") or "0")
        return OrderInfo(
            symbol=o["instId"], client_order_id=client_order_id or (o.get("clOrdId") or None),
            venue_order_id=o["ordId"], side="buy" if o["side"] == "buy" else "sell",
            order_type="market" if o["ordType"] == "market" else "limit",
            state=STATE.get(o["state"], "open"), quantity=_dec(o["sz"]), filled_quantity=filled, price=_dec(o.get("px", "")),
            average_price=_dec(o.get("avgPx", "")) if filled else None,
            ts_created=int(o["cTime"]) * MS if o.get("cTime") else None,
            ts_updated=int(o["uTime"]) * MS if o.get("uTime") else None,
        )

    def parse_place_order(self, payload: Any, o: PlaceOrder) -> OrderInfo:
        r = payload["data"][0]
        return OrderInfo(symbol=o.symbol, client_order_id=o.client_order_id, venue_order_id=r["ordId"], side=o.side,
                         order_type=o.order_type, state="open", quantity=o.quantity, filled_quantity=Decimal(0),
                         price=o.price)

    def parse_cancel_order(self, payload: Any, c: CancelOrder) -> CancelAccepted:
        return CancelAccepted(client_order_id=c.client_order_id, venue_order_id=payload["data"][0].get("ordId") or None)

    def parse_order_status(self, payload: Any, q: OrderStatusQuery) -> OrderInfo:
        return self._order(payload["data"][0], q.client_order_id)

    def parse_open_orders(self, payload: Any, _: Any) -> list[OrderInfo]:
        return [self._order(o, None) for o in payload["data"]]

    def parse_balance(self, payload: Any, _: Any) -> list[Balance]:
        return [Balance(asset=d["ccy"].upper(), free=Decimal(d.get("availBal") or "0"), locked=Decimal(d.get("frozenBal") or "0"))
                for d in payload["data"][0]["details"]]

    def parse_trade_history(self, payload: Any, q: TradeHistoryQuery) -> list[Fill]:
        fills = [Fill(trade_id=f["tradeId"], venue_order_id=f["ordId"], symbol=q.symbol,
                      side="buy" if f["side"] == "buy" else "sell", price=Decimal(f["fillPx"]), quantity=Decimal(f["fillSz"]),
                      ts_event=int(f["ts"]) * MS, client_order_id=f.get("clOrdId") or None,
                      fee=-Decimal(f["fee"]) if f.get("fee") else None, fee_asset=f.get("feeCcy") or None,
                      liquidity={"M": "maker", "T": "taker"}.get(f.get("execType", "")))
                 for f in payload["data"]]
        return sorted(fills, key=lambda f: f.ts_event)

    # --- errors -----------------------------------------------------------------------------------------
    def error(self, status: int, headers: dict[str, str], payload: Any, op: str) -> VenueError | None:
        if not isinstance(payload, dict) or str(payload.get("code", "0")) == "0":
            return None
        code, msg = str(payload["code"]), str(payload.get("msg", ""))
        data = payload.get("data") or []
        if code in ("1", "2") and data and isinstance(data[0], dict) and data[0].get("sCode") not in (None, "0"):
            code, msg = str(data[0]["sCode"]), str(data[0].get("sMsg", msg))
        text, kw = f"okx {code}: {msg}", {"venue_code": code}
        cls = CODES.get(code)
        if cls is RateLimited or status == 429:
            wait = retry_after(headers)
            return RateLimited(text, retry_after=WINDOW_S if wait is None else wait, **kw)
        if op in NON_IDEMPOTENT and (status >= 500 or cls is OutcomeUnknown):
            return OutcomeUnknown(text, **kw)
        if cls is OutcomeUnknown:
            return VenueUnavailable(text, **kw)
        if cls is not None:
            return cls(text, **kw)
        if status >= 500:
            return None
        return InvalidOrder(text, **kw)


ADAPTER = OkxRest
