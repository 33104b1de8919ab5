"""Korbit public WebSocket v2 (wss://ws-api.korbit.co.kr/v2/public; docs.korbit.co.kr
"WebSocket"). Requests are arrays: ``[{"method":"subscribe","type":"orderbook",
"symbols":["btc_krw"]}]``. Order-book messages carry the whole book (up to 30 levels);
trades carry ``tradeId`` and ``isBuyerTaker``; numbers are strings.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Sequence

import msgspec

from schemas.market import Ticker, Trade
from services.venues import symbols
from services.venues.wsbase import BookUpdate, Channel, KeepAlive, VenueNotice, WsAdapter, WsEvent, ms_to_ns

TYPE_OF: dict[str, str] = {"trade": "trade", "ticker": "ticker", "book": "orderbook", "bbo": "orderbook"}


class Level(msgspec.Struct):
    price: Decimal
    qty: Decimal


class BookData(msgspec.Struct):
    timestamp: int
    bids: list[Level]
    asks: list[Level]


class TradeData(msgspec.Struct):
    timestamp: int
    price: Decimal
    qty: Decimal
    isBuyerTaker: bool
    tradeId: int


class TickerData(msgspec.Struct):
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quoteVolume: Decimal
    bestBidPrice: Decimal | None = None
    bestAskPrice: Decimal | None = None


class Message(msgspec.Struct):
    type: str = ""
    symbol: str = ""
    timestamp: int = 0
    snapshot: bool = False
    data: msgspec.Raw = msgspec.Raw(b"null")
    error: msgspec.Raw | None = None
    message: str = ""


_message = msgspec.json.Decoder(Message)
_book = msgspec.json.Decoder(BookData)
_trades = msgspec.json.Decoder(list[TradeData])
_ticker = msgspec.json.Decoder(TickerData)


class KorbitWs(WsAdapter):
    venue = "korbit"
    url = "wss://ws-api.korbit.co.kr/v2/public"
    keepalive = KeepAlive(interval_s=25.0)
    book_rule = "snapshots"
    resync = "next_snapshot"
    max_streams_per_connection = 200

    def venue_symbol(self, symbol: str) -> str:
        base, quote = symbols.split(symbol)
        return f"{base}_{quote}".lower()

    def _request(self, method: str, channels: Sequence[Channel], syms: Sequence[str]) -> list[str | bytes]:
        names = [self.venue_symbol(s) for s in syms]
        body = [{"method": method, "type": t, "symbols": names} for t in sorted({TYPE_OF[c] for c in channels})]
        return [msgspec.json.encode(body).decode()]

    def subscribe_messages(self, channels: Sequence[Channel], syms: Sequence[str]) -> list[str | bytes]:
        return self._request("subscribe", channels, syms)

    def unsubscribe_messages(self, channels: Sequence[Channel], syms: Sequence[str]) -> list[str | bytes]:
        return self._request("unsubscribe", channels, syms)

    def parse_frame(self, data: str | bytes, ts_recv: int) -> list[WsEvent]:
        m = _message.decode(data)
        if m.error is not None:
            return [VenueNotice("error", f"{bytes(m.error).decode()} {m.message}".strip())]
        symbol = self.symbol_of(m.symbol)
        if symbol is None:
            return []
        if m.type == "orderbook":
            b = _book.decode(m.data)
            return [BookUpdate(symbol=symbol, snapshot=True, ts_event=ms_to_ns(b.timestamp), ts_recv=ts_recv,
                               bids=[(lv.price, lv.qty) for lv in b.bids], asks=[(lv.price, lv.qty) for lv in b.asks])]
        if m.type == "trade":
            return [Trade(venue="korbit", symbol=symbol, ts_event=ms_to_ns(t.timestamp), ts_recv=ts_recv,
                          trade_id=str(t.tradeId), price=t.price, quantity=t.qty,
                          side="buy" if t.isBuyerTaker else "sell") for t in _trades.decode(m.data)]
        if m.type == "ticker":
            t = _ticker.decode(m.data)
            return [Ticker(venue="korbit", symbol=symbol, ts_event=ms_to_ns(m.timestamp), ts_recv=ts_recv,
                           last=t.close, open_24h=t.open, high_24h=t.high, low_24h=t.low, volume_24h=t.volume,
                           quote_volume_24h=t.quoteVolume, bid=t.bestBidPrice, ask=t.bestAskPrice)]
        return []


ADAPTER = KorbitWs
