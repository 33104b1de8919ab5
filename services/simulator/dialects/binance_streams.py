"""Binance's market streams, as the simulator speaks them: ``/ws`` and ``/stream?streams=``
replayed from BINANCE.ws.1.0 (ids continue across passes, times are now), and the rolling
statistics behind /api/v3/ticker/24hr (web-socket-streams.md). The user data stream is on
the WebSocket API (:mod:`services.simulator.dialects.binance_private`); listenKeys are gone.

A mixin of :class:`services.simulator.dialects.binance.BinanceDialect`; it reads the
dialect's core, hub, clock and recording.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec
from aiohttp import web

from services.simulator.matching import QUANTUM, ZERO, Fill, Order
from services.simulator.recorded import Frame
from services.simulator.replay import replay_forever
from services.simulator.streams import StreamClient
from services.simulator.venue import encode

STATUS = {"new": "NEW", "partially_filled": "PARTIALLY_FILLED", "filled": "FILLED",
          "canceled": "CANCELED", "expired": "EXPIRED"}


def fmt(d: Decimal) -> str:
    """Binance's 8-decimal strings ("0.35210000")."""
    return f"{d.quantize(QUANTUM):f}"


@dataclass(slots=True)
class TickerStats:
    """Rolling statistics behind /api/v3/ticker/24hr, fed by the replayed trades and kline."""

    open: Decimal = ZERO
    high: Decimal = ZERO
    low: Decimal = ZERO
    last: Decimal = ZERO
    last_qty: Decimal = ZERO
    volume: Decimal = ZERO
    quote_volume: Decimal = ZERO
    count: int = 0
    first_id: int = -1
    last_id: int = -1
    open_time: int = 0

    def trade(self, price: Decimal, qty: Decimal, trade_id: int, ts_ms: int) -> None:
        if not self.count and not self.open:
            self.open, self.high, self.low, self.open_time = price, price, price, ts_ms
        self.high = max(self.high, price)
        self.low = min(self.low, price) if self.low else price
        self.last, self.last_qty = price, qty
        self.volume += qty
        self.quote_volume += price * qty
        self.count += 1
        self.first_id = trade_id if self.first_id < 0 else self.first_id
        self.last_id = trade_id


class BinanceStreams:
    """Market stream routes and replay of the simulated Binance."""

    def init_streams(self) -> None:
        self.stats: dict[str, TickerStats] = {}
        self._spans = _replay_spans(self.recording.frames)
        self._seed_stats(self.recording.frames)
        self.core.listeners.append(self._on_update)

    def add_market_routes(self, app: web.Application) -> None:
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/ws/{streams:.*}", self._ws)
        app.router.add_get("/stream", self._ws)

    def _on_update(self, order: Order, fill: Fill | None, kind: str) -> None:
        """Engine event: the taker side's trade, for the 24 h statistics."""
        if fill is not None and not fill.is_maker:
            self.stats.setdefault(order.symbol, TickerStats()).trade(fill.price, fill.quantity, fill.trade_id,
                                                                    fill.ts // 1_000_000)

    # -- WebSocket streams ----------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        """``/ws/<stream>[/<stream>...]`` (raw payloads), ``/stream?streams=a/b`` (wrapped)."""
        combined = request.path == "/stream"
        names = (request.query.get("streams", "") if combined else request.match_info.get("streams", "")).split("/")
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        alias: dict[str, str] = {}  # topic -> the name the client subscribed with

        def render(topic: str, event: Any) -> str:
            if combined:
                return encode({"stream": alias.get(topic, topic), "data": event}).decode()
            return encode(event).decode()

        client = StreamClient(ws, render)
        for name in filter(None, names):
            self._subscribe(client, name, alias)
        self.hub.add(client)
        try:
            await ws.prepare(request)
            await self.hub.serve(client, lambda c, data: self._ws_message(c, data, alias))
        finally:
            self.hub.clients.discard(client)
        return ws

    def _subscribe(self, client: StreamClient, name: str, alias: dict[str, str]) -> None:
        topic = name.lower()
        alias[topic] = name  # stream names match case-insensitively; frames carry the client's spelling
        client.topics.add(topic)

    def _ws_message(self, client: StreamClient, data: str | bytes, alias: dict[str, str]) -> None:
        """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS (web-socket-streams.md)."""
        try:
            msg = msgspec.json.decode(data)
            method, params, req_id = msg["method"], msg.get("params", []), msg.get("id")
        except (msgspec.DecodeError, KeyError, TypeError):
            client.send(encode({"error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}}).decode())
            return
        if method == "SUBSCRIBE":
            for name in params:
                self._subscribe(client, name, alias)
            self.hub.touched()
            client.send(encode({"result": None, "id": req_id}).decode())
        elif method == "UNSUBSCRIBE":
            for name in params:
                topic = name.lower()
                client.topics.discard(topic)
                alias.pop(topic, None)
            client.send(encode({"result": None, "id": req_id}).decode())
        elif method == "LIST_SUBSCRIPTIONS":
            client.send(encode({"result": sorted(alias.get(t, t) for t in client.topics), "id": req_id}).decode())
        else:
            client.send(encode({"error": {"code": 1, "msg": f"Unknown property '{method}'"}, "id": req_id}).decode())

    # -- replay ---------------------------------------------------------------------------

    def start_replay(self, speed: float) -> None:
        self._tasks.append(asyncio.create_task(replay_forever(self.recording.frames, speed, self._emit)))

    def _seed_stats(self, frames: list[Frame]) -> None:
        for frame in frames:
            d = frame.payload["data"]
            if d.get("e") == "kline" and d["s"] not in self.stats:
                k = d["k"]
                self.stats[d["s"]] = TickerStats(
                    open=Decimal(k["o"]), high=Decimal(k["h"]), low=Decimal(k["l"]), last=Decimal(k["c"]),
                    volume=Decimal(k["v"]), quote_volume=Decimal(k["q"]), count=k["n"],
                    first_id=k["f"], last_id=k["L"], open_time=k["t"])

    def _emit(self, frame: Frame, n: int) -> None:
        """One recorded frame, pass ``n``: ids continue across passes, times are now."""
        stream, data = frame.payload["stream"], dict(frame.payload["data"])
        symbol = data["s"]
        now_ms = self.now_ms()
        shift = now_ms - data.get("E", now_ms)
        event = data.get("e")
        depth_span, trade_span, agg_span = self._spans.get(symbol, (0, 0, 0))
        if event == "depthUpdate":
            data["U"] += n * depth_span
            data["u"] += n * depth_span
            if data["u"] > self.core.exchange.books[symbol].update_id:
                self.core.exchange.apply_depth(symbol, _levels(data["b"]), _levels(data["a"]), update_id=data["u"])
        elif event == "aggTrade":
            data["a"] += n * agg_span
            data["f"] += n * trade_span
            data["l"] += n * trade_span
            data["T"] += shift
            price, qty = Decimal(data["p"]), Decimal(data["q"])
            self.stats.setdefault(symbol, TickerStats()).trade(price, qty, data["l"], data["T"])
            self.core.exchange.apply_trade(symbol, price, qty, "sell" if data["m"] else "buy")
        elif event == "kline":
            k = dict(data["k"])
            minute_shift = shift - shift % 60_000
            k["t"] += minute_shift
            k["T"] += minute_shift
            k["f"] += n * trade_span
            k["L"] += n * trade_span
            data["k"] = k
        elif "u" in data:  # bookTicker
            data["u"] += n * depth_span
        if "E" in data:
            data["E"] = now_ms
        self.hub.publish(stream.lower(), data)


def _levels(levels: list[list[str]]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(p), Decimal(q)) for p, q in levels]


def _replay_spans(frames: list[Frame]) -> dict[str, tuple[int, int, int]]:
    """Per symbol: how far depth update ids, trade ids and aggregate trade ids move per pass."""
    lo: dict[tuple[str, str], int] = {}
    hi: dict[tuple[str, str], int] = {}

    def seen(symbol: str, kind: str, first: int, last: int) -> None:
        lo[(symbol, kind)] = min(lo.get((symbol, kind), first), first)
        hi[(symbol, kind)] = max(hi.get((symbol, kind), last), last)

    for frame in frames:
        d = frame.payload["data"]
        if d.get("e") == "depthUpdate":
            seen(d["s"], "depth", d["U"], d["u"])
        elif d.get("e") == "aggTrade":
            seen(d["s"], "trade", d["f"], d["l"])
            seen(d["s"], "agg", d["a"], d["a"])
        elif d.get("e") == "kline":
            seen(d["s"], "trade", d["k"]["f"], d["k"]["L"])
    symbols = {s for s, _ in lo}
    span = lambda s, k: hi[(s, k)] - lo[(s, k)] + 1 if (s, k) in lo else 1  # noqa: E731
    return {s: (span(s, "depth"), span(s, "trade"), span(s, "agg")) for s in symbols}
