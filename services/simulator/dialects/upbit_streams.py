"""Upbit's public WebSocket, as the simulator speaks it: ``/websocket/v1`` replayed from
UPBIT.ws.62.0 (trade, orderbook; DEFAULT or SIMPLE format, binary frames), and the market
statistics behind /v1/ticker (docs.upbit.com websocket guide and type references). The
request format is the one Upbit and Bithumb share (services.simulator.dialects.upbitlike);
the private ``/websocket/v1/private`` is services.simulator.dialects.upbit_private.

A mixin of :class:`services.simulator.dialects.upbit.UpbitDialect`; it reads the dialect's
core, hub, clock and recording.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from aiohttp import web

from services.simulator.dialects.upbitlike import PING, STATUS_UP, RequestError, Subscription, read_request, render
from services.simulator.matching import ZERO, Fill, Order
from services.simulator.recorded import Frame
from services.simulator.replay import replay_forever
from services.simulator.streams import StreamClient

SIMPLE = {
    "type": "ty", "code": "cd", "timestamp": "tms", "trade_date": "td", "trade_time": "ttm",
    "trade_timestamp": "ttms", "trade_price": "tp", "trade_volume": "tv", "ask_bid": "ab",
    "prev_closing_price": "pcp", "change": "c", "change_price": "cp", "sequential_id": "sid",
    "stream_type": "st", "total_ask_size": "tas", "total_bid_size": "tbs", "orderbook_units": "obu",
    "ask_price": "ap", "bid_price": "bp", "ask_size": "as", "bid_size": "bs", "level": "lv",
}
"""trade and orderbook: DEFAULT field name -> SIMPLE abbreviation (docs.upbit.com websocket
type references)."""
DEFAULT = {v: k for k, v in SIMPLE.items()}
"""SIMPLE -> DEFAULT for the recorded frames."""
PUBLIC_TYPES = {"trade", "orderbook"}


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


class UpbitStreams:
    """Public WebSocket route, market replay and statistics of the simulated Upbit."""

    def init_streams(self) -> None:
        self.trade_uuids: dict[int, str] = {}
        self.stats: dict[str, MarketStats] = {}
        for frame in self.recording.frames:  # books and statistics as of the end of the recording
            self._apply(frame.payload)
        self.core.listeners.append(self._on_update)

    def add_ws_routes(self, app: web.Application) -> None:
        app.router.add_get("/websocket/v1", self._ws)
        self.add_private_route(app)  # /websocket/v1/private (UpbitPrivate)

    def _trade_uuid(self, fill: Fill) -> str:
        return self.trade_uuids.setdefault(fill.trade_id, str(uuid.uuid4()))

    def _on_update(self, order: Order, fill: Fill | None, kind: str) -> None:
        if fill is not None:
            self.stats.setdefault(order.symbol, MarketStats()).trade(fill.price, fill.quantity, fill.ts // 1_000_000)

    # -- WebSocket --------------------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        sub = Subscription()

        def render_public(topic: str, event: Any) -> bytes | None:
            kind, code, payload = event
            if not sub.wants(kind, code):
                return None
            if kind == "orderbook" and code in sub.units:
                payload = payload | {"orderbook_units": payload["orderbook_units"][: sub.units[code]]}
            return render(payload, sub.fmt, SIMPLE)

        client = StreamClient(ws, render_public)
        await self.hub.serve(client, lambda c, data: self._ws_request(c, data, sub))
        return ws

    def _ws_request(self, client: StreamClient, data: str | bytes, sub: Subscription) -> None:
        """A request replaces the subscription; snapshots first unless ``isOnlyRealtime``."""
        if data in (PING, PING.encode()):  # the docs' keep-alive message
            return client.send(STATUS_UP)
        try:
            new, types = read_request(data, PUBLIC_TYPES, needs_codes=PUBLIC_TYPES)
        except RequestError as e:
            return client.send(e.frame())
        sub.types, sub.units, sub.fmt = new.types, new.units, new.fmt
        for t in types:
            if not t.get("isOnlyRealtime"):
                for code in sub.types[t["type"]]:
                    snap = self._snapshot(t["type"], code)
                    if snap is not None:
                        client.offer("public", (t["type"], code, snap))
            if t.get("isOnlySnapshot"):
                sub.types.pop(t["type"])
        client.topics = {"public"}
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
