"""Upbit's WebSocket side, as the simulator speaks it: public ``/websocket/v1`` replayed
from UPBIT.ws.62.0 (trade, orderbook; DEFAULT or SIMPLE format, binary frames), private
``/websocket/v1/private`` (myOrder, myAsset), and the market statistics behind /v1/ticker
(docs.upbit.com websocket guide and type references).

A mixin of :class:`services.simulator.dialects.upbit.UpbitDialect`; it reads the dialect's
core, hub, clock and recording.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from aiohttp import web

from services.simulator.config import Account
from services.simulator.core import Refusal
from services.simulator.dialect import Req
from services.simulator.matching import ZERO, Fill, Order
from services.simulator.recorded import Frame
from services.simulator.replay import replay_forever
from services.simulator.streams import StreamClient
from services.simulator.venue import encode, json_response

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


class UpbitStreams:
    """WebSocket routes, private events and market replay of the simulated Upbit."""

    def init_streams(self) -> None:
        self.trade_uuids: dict[int, str] = {}
        self.stats: dict[str, MarketStats] = {}
        for frame in self.recording.frames:  # books and statistics as of the end of the recording
            self._apply(frame.payload)
        self.core.listeners.append(self._on_update)
        self.core.balance_listeners.append(self._on_balance)

    def add_ws_routes(self, app: web.Application) -> None:
        app.router.add_get("/websocket/v1", self._ws)
        app.router.add_get("/websocket/v1/private", self._ws_private)

    def _trade_uuid(self, fill: Fill) -> str:
        return self.trade_uuids.setdefault(fill.trade_id, str(uuid.uuid4()))

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
        wallet = self.core.exchange.wallets[account]
        now = self.now_ms()
        self.hub.publish(topic, ("myAsset", "", {
            "type": "myAsset", "asset_uuid": str(uuid.uuid4()),
            "assets": [{"currency": a, "balance": wallet.available(a), "locked": wallet.locked.get(a, ZERO)} for a in assets],
            "asset_timestamp": now, "timestamp": now, "stream_type": "REALTIME"}))

    # -- WebSocket --------------------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve_ws(request, None)

    async def _ws_private(self, request: web.Request) -> web.StreamResponse:
        req = Req(request, request.method, request.path, request.rel_url.raw_query_string, b"", self.clock())
        try:
            account = await self.authenticate(req)
        except Refusal as r:
            status, body, _ = self.refuse(r, req)
            return json_response(body, status)
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
            book = self.core.exchange.books[code] if code in self.core.exchange.books else None
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
        self._tasks.append(asyncio.create_task(replay_forever(self.recording.frames, speed, self._emit)))

    def _apply(self, d: dict[str, Any]) -> None:
        """A recorded (SIMPLE) frame's effect on books, resting orders and statistics."""
        code = d["cd"]
        if code not in self.core.exchange.books:
            return
        if d["ty"] == "orderbook":
            units = d["obu"]
            self.core.exchange.apply_depth(code, [(u["bp"], u["bs"]) for u in units], [(u["ap"], u["as"]) for u in units],
                                      snapshot=True)
        elif d["ty"] == "trade":
            st = self.stats.setdefault(code, MarketStats())
            if not st.prev_close:
                st.prev_close = d["pcp"]
            st.trade(d["tp"], d["tv"], d["ttms"])
            self.core.exchange.apply_trade(code, d["tp"], d["tv"], "buy" if d["ab"] == "BID" else "sell")

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
