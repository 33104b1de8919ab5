"""Coinone public WebSocket (wss://stream.coinone.co.kr; docs.coinone.co.kr "Public
WebSocket"; message shapes as quoted in ccxt 4.5.90 pro/coinone.py).

One SUBSCRIBE per channel and market; every ORDERBOOK message carries the whole book
(snapshot rule); ``id`` grows but is not contiguous. Keep-alive is application-level:
``{"request_type":"PING"}`` answered by ``{"response_type":"PONG"}``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Sequence

import msgspec

from schemas.market import Ticker, Trade
from services.venues import symbols
from services.venues.wsbase import BookUpdate, Channel, KeepAlive, VenueNotice, WsAdapter, WsEvent, ms_to_ns

CHANNEL_OF: dict[str, str] = {"trade": "TRADE", "ticker": "TICKER", "book": "ORDERBOOK", "bbo": "ORDERBOOK"}


class Level(msgspec.Struct):
    price: Decimal
    qty: Decimal


class Data(msgspec.Struct):
    quote_currency: str
    target_currency: str
    timestamp: int
    id: str = ""
    # ORDERBOOK
    asks: list[Level] = []
    bids: list[Level] = []
    # TRADE
    price: Decimal | None = None
    qty: Decimal | None = None
    is_seller_maker: bool | None = None
    # TICKER
    last: Decimal | None = None
    first: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    target_volume: Decimal | None = None
    quote_volume: Decimal | None = None
    ask_best_price: Decimal | None = None
    ask_best_qty: Decimal | None = None
    bid_best_price: Decimal | None = None
    bid_best_qty: Decimal | None = None


class Message(msgspec.Struct):
    response_type: str
    channel: str = ""
    data: Data | None = None
    error_code: int | None = None
    message: str = ""


_message = msgspec.json.Decoder(Message)


class CoinoneWs(WsAdapter):
    venue = "coinone"
    url = "wss://stream.coinone.co.kr"
    keepalive = KeepAlive(interval_s=20.0, message='{"request_type":"PING"}')
    book_rule = "snapshots"
    resync = "next_snapshot"
    max_streams_per_connection = 100

    def venue_symbol(self, symbol: str) -> str:
        base, quote = symbols.split(symbol)
        return f"{quote}/{base}"

    def _requests(self, kind: str, channels: Sequence[Channel], syms: Sequence[str]) -> list[str | bytes]:
        out: list[str | bytes] = []
        for s in syms:
            base, quote = symbols.split(s)
            for ch in sorted({CHANNEL_OF[c] for c in channels}):
                out.append(msgspec.json.encode({"request_type": kind, "channel": ch,
                                                "topic": {"quote_currency": quote, "target_currency": base}}).decode())
        return out

    def subscribe_messages(self, channels: Sequence[Channel], syms: Sequence[str]) -> list[str | bytes]:
        return self._requests("SUBSCRIBE", channels, syms)

    def unsubscribe_messages(self, channels: Sequence[Channel], syms: Sequence[str]) -> list[str | bytes]:
        return self._requests("UNSUBSCRIBE", channels, syms)

    def parse_frame(self, data: str | bytes, ts_recv: int) -> list[WsEvent]:
        m = _message.decode(data)
        if m.response_type == "ERROR":
            return [VenueNotice("error", f"{m.error_code}: {m.message}")]
        if m.response_type != "DATA" or m.data is None:
            return []  # PONG, CONNECTED, SUBSCRIBED
        d = m.data
        symbol = self.symbol_of(f"{d.quote_currency.upper()}/{d.target_currency.upper()}")
        if symbol is None:
            return []
        ts = ms_to_ns(d.timestamp)
        if m.channel == "ORDERBOOK":
            return [BookUpdate(symbol=symbol, snapshot=True, ts_event=ts, ts_recv=ts_recv, sequence=int(d.id or 0),
                               bids=[(lv.price, lv.qty) for lv in d.bids], asks=[(lv.price, lv.qty) for lv in d.asks])]
        if m.channel == "TRADE" and d.price is not None and d.qty is not None:
            return [Trade(venue="coinone", symbol=symbol, ts_event=ts, ts_recv=ts_recv, trade_id=d.id, price=d.price,
                          quantity=d.qty, side="buy" if d.is_seller_maker else "sell")]
        if m.channel == "TICKER":
            return [Ticker(venue="coinone", symbol=symbol, ts_event=ts, ts_recv=ts_recv, last=d.last, open_24h=d.first,
                           high_24h=d.high, low_24h=d.low, volume_24h=d.target_volume, quote_volume_24h=d.quote_volume,
                           bid=d.bid_best_price, bid_size=d.bid_best_qty, ask=d.ask_best_price, ask_size=d.ask_best_qty)]
        return []


ADAPTER = CoinoneWs
