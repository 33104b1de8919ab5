"""Binance spot WebSocket market streams (combined-stream format).

https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams
Streams: ``<sym>@aggTrade`` (``@trade`` parsed too), ``@ticker``, ``@depth@100ms`` (diffs with
``U``/``u`` update ids, synced to a REST ``/api/v3/depth`` snapshot), ``@bookTicker``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar, Sequence
from urllib.parse import parse_qs, urlsplit

import msgspec

from schemas.market import BBO, Ticker, Trade
from services.venues.wsbase import (
    BookUpdate, Channel, KeepAlive, Level, Subscription, VenueNotice, WsAdapter, WsEvent, ms_to_ns,
)

STREAM_OF: dict[str, str] = {"trade": "aggTrade", "ticker": "ticker", "book": "depth@100ms", "bbo": "bookTicker"}
"""aggTrade rather than trade: its ids are those of GET /api/v3/aggTrades, which backfills a disconnect."""
REST = "https://api.binance.com"
QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "GBP", "AUD", "JPY")
"""Quote assets used to split a Binance symbol (``NKNUSDT``) when reading recordings."""


class Envelope(msgspec.Struct):
    """Combined-stream wrapper; control replies have ``id`` and ``result``/``error``;
    on a raw ``/ws`` connection the payload itself (``e`` its event type)."""

    stream: str = ""
    data: msgspec.Raw = msgspec.Raw(b"null")
    id: int | None = None
    error: dict | None = None
    e: str = ""
    u: int | None = None


RAW_KIND = {"depthUpdate": "depth", "aggTrade": "aggTrade", "trade": "trade", "24hrTicker": "ticker"}
"""Event type of a raw payload -> its stream kind."""


class DepthUpdate(msgspec.Struct):
    E: int
    s: str
    U: int
    u: int
    b: list[Level]
    a: list[Level]


class TradeMsg(msgspec.Struct):
    s: str
    t: int
    p: Decimal
    q: Decimal
    T: int
    m: bool  # buyer is the maker: the taker sold


class AggTradeMsg(msgspec.Struct):
    s: str
    a: int
    p: Decimal
    q: Decimal
    T: int
    m: bool


class AggTradeRest(msgspec.Struct):
    """An entry of GET /api/v3/aggTrades."""

    a: int
    p: Decimal
    q: Decimal
    T: int
    m: bool


class BookTickerMsg(msgspec.Struct):
    u: int
    s: str
    b: Decimal
    B: Decimal
    a: Decimal
    A: Decimal


class TickerMsg(msgspec.Struct):
    E: int
    s: str
    c: Decimal
    b: Decimal
    B: Decimal
    a: Decimal
    A: Decimal
    o: Decimal
    h: Decimal
    l: Decimal  # noqa: E741 - Binance's field name
    v: Decimal
    q: Decimal


_envelope = msgspec.json.Decoder(Envelope)
_depth = msgspec.json.Decoder(DepthUpdate)
_trade = msgspec.json.Decoder(TradeMsg)
_agg = msgspec.json.Decoder(AggTradeMsg)
_agg_rest = msgspec.json.Decoder(list[AggTradeRest])
_book_ticker = msgspec.json.Decoder(BookTickerMsg)
_ticker = msgspec.json.Decoder(TickerMsg)


class BinanceWs(WsAdapter):
    venue = "binance"
    url = "wss://stream.binance.com:9443/stream"
    keepalive = KeepAlive(interval_s=20.0)  # the server pings every 20 s; websockets answers
    max_streams_per_connection = 1000  # limit 1024
    subscribe_interval_s = 0.25  # limit: 5 incoming messages per second
    stale_after_s = 60.0
    book_rule = "update_id"
    resync = "rest"
    snapshot_depth = 1000  # weight 10 (5000 costs 50)
    snapshot_on_subscribe = False  # the diff stream has no snapshot: REST only
    snapshot_requests_per_s = 2.0  # 20 weight/s of the IP's 6000/min
    bbo_from_book = False
    params_per_message: ClassVar[int] = 100

    def reset(self) -> None:
        self._request_id = 0

    def venue_symbol(self, symbol: str) -> str:
        return symbol.replace("-", "")

    def _messages(self, method: str, channels: Sequence[Channel], symbols: Sequence[str]) -> list[str | bytes]:
        params = [f"{self.venue_symbol(s).lower()}@{STREAM_OF[c]}" for s in symbols for c in channels]
        out: list[str | bytes] = []
        for i in range(0, len(params), self.params_per_message):
            self._request_id += 1
            out.append(msgspec.json.encode(
                {"method": method, "params": params[i:i + self.params_per_message], "id": self._request_id}
            ).decode())
        return out

    def subscribe_messages(self, channels: Sequence[Channel], symbols: Sequence[str]) -> list[str | bytes]:
        return self._messages("SUBSCRIBE", channels, symbols)

    def unsubscribe_messages(self, channels: Sequence[Channel], symbols: Sequence[str]) -> list[str | bytes]:
        return self._messages("UNSUBSCRIBE", channels, symbols)

    def parse_frame(self, data: str | bytes, ts_recv: int) -> list[WsEvent]:
        env = _envelope.decode(data)
        if env.error is not None:
            return [VenueNotice("error", f"request {env.id}: {env.error.get('msg', env.error)}")]
        stream = env.stream
        if stream:
            kind, payload = stream[stream.index("@") + 1:], env.data
        elif env.id is not None:
            return []  # {"result": null, "id": n}: a subscription acknowledged
        else:  # a raw payload (/ws endpoint): bookTicker is the one without an event type
            kind = RAW_KIND.get(env.e, "bookTicker" if not env.e and env.u is not None else env.e)
            payload = msgspec.Raw(data.encode() if isinstance(data, str) else data)
        if kind.startswith("depth"):
            return self._depth(_depth.decode(payload), ts_recv)
        if kind == "trade":
            t = _trade.decode(payload)
            return self._trade(t.s, str(t.t), t.p, t.q, t.T, t.m, ts_recv)
        if kind == "aggTrade":
            g = _agg.decode(payload)
            return self._trade(g.s, str(g.a), g.p, g.q, g.T, g.m, ts_recv)
        if kind == "bookTicker":
            return self._bbo(_book_ticker.decode(payload), ts_recv)
        if kind == "ticker":
            return self._ticker(_ticker.decode(payload), ts_recv)
        return []  # streams exbus does not publish (kline_1m in the recordings)

    def _depth(self, d: DepthUpdate, ts_recv: int) -> list[WsEvent]:
        symbol = self.symbol_of(d.s)
        if symbol is None:
            return []
        return [BookUpdate(
            symbol=symbol, snapshot=False, bids=d.b, asks=d.a, ts_event=ms_to_ns(d.E), ts_recv=ts_recv,
            sequence=d.u, first_sequence=d.U,
        )]

    def _trade(self, s: str, trade_id: str, price: Decimal, qty: Decimal, ts_ms: int, buyer_maker: bool,
               ts_recv: int) -> list[WsEvent]:
        symbol = self.symbol_of(s)
        if symbol is None:
            return []
        return [Trade(
            venue="binance", symbol=symbol, ts_event=ms_to_ns(ts_ms), ts_recv=ts_recv, trade_id=trade_id,
            price=price, quantity=qty, side="sell" if buyer_maker else "buy",
        )]

    def _bbo(self, b: BookTickerMsg, ts_recv: int) -> list[WsEvent]:
        symbol = self.symbol_of(b.s)
        if symbol is None:
            return []
        # spot bookTicker carries no event time
        return [BBO(venue="binance", symbol=symbol, ts_event=ts_recv, ts_recv=ts_recv,
                    bid=b.b, bid_size=b.B, ask=b.a, ask_size=b.A)]

    def _ticker(self, t: TickerMsg, ts_recv: int) -> list[WsEvent]:
        symbol = self.symbol_of(t.s)
        if symbol is None:
            return []
        return [Ticker(
            venue="binance", symbol=symbol, ts_event=ms_to_ns(t.E), ts_recv=ts_recv,
            bid=t.b, bid_size=t.B, ask=t.a, ask_size=t.A, last=t.c, open_24h=t.o, high_24h=t.h,
            low_24h=t.l, volume_24h=t.v, quote_volume_24h=t.q,
        )]

    trades_page_limit = 1000

    def trades_backfill_url(self, symbol: str, since_ns: int, until_ns: int) -> str | None:
        # startTime..endTime may span at most one hour: a longer outage is backfilled for its first hour
        start = since_ns // 1_000_000
        end = min(until_ns // 1_000_000, start + 3_600_000 - 1)
        return (f"{REST}/api/v3/aggTrades?symbol={self.venue_symbol(symbol)}"
                f"&startTime={start}&endTime={end}&limit={self.trades_page_limit}")

    def parse_trades_backfill(self, symbol: str, body: bytes, ts_recv: int) -> list[Trade]:
        return [Trade(venue="binance", symbol=symbol, ts_event=ms_to_ns(g.T), ts_recv=ts_recv, trade_id=str(g.a),
                      price=g.p, quantity=g.q, side="sell" if g.m else "buy")
                for g in _agg_rest.decode(body)]

    def recorded_subscriptions(self, url: str, sent: Sequence[str]) -> list[Subscription]:
        streams = parse_qs(urlsplit(url).query).get("streams", [""])[0].split("/")
        for message in sent:
            streams += msgspec.json.decode(message).get("params", [])
        channel_of = {v: k for k, v in STREAM_OF.items()} | {"trade": "trade", "depth": "book"}
        subs = set()
        for stream in filter(None, streams):
            name, _, kind = stream.partition("@")
            channel = channel_of.get(kind)
            symbol = split_symbol(name.upper())
            if channel and symbol:
                subs.add(Subscription(channel, symbol))  # type: ignore[arg-type]
        return sorted(subs)


def split_symbol(venue_symbol: str) -> str | None:
    """``NKNUSDT`` -> ``NKN-USDT`` by its quote asset, or None when none matches."""
    for quote in QUOTES:
        if venue_symbol.endswith(quote) and len(venue_symbol) > len(quote):
            return f"{venue_symbol[:-len(quote)]}-{quote}"
    return None


ADAPTER = BinanceWs
