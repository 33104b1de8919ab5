"""Coinbase Advanced Trade WebSocket (wss://advanced-trade-ws.coinbase.com;
docs.cdp.coinbase.com "Advanced Trade WebSocket Channels").

One subscribe message per channel (level2, market_trades, ticker) plus ``heartbeats``,
which keeps quiet channels open. ``sequence_num`` counts every message of the
connection: a gap means any book or trade stream of it may have lost a message, so it
is handed to the feed as a :class:`StreamSequence`. level2 sends a snapshot on
subscribe, then updates with absolute ``new_quantity`` ("0" removes); a book that lost
sync is resubscribed. market_trades' ``side`` is the maker's side (cryptofeed
exchanges/coinbase.py inverts it), so the taker side is the opposite.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Sequence

import msgspec

from schemas.market import Ticker, Trade
from services.venues.wsbase import (
    BookUpdate, Channel, KeepAlive, StreamSequence, VenueNotice, WsAdapter, WsEvent,
)

CHANNEL_OF: dict[str, str] = {"trade": "market_trades", "ticker": "ticker", "book": "level2", "bbo": "level2"}


def rfc3339_ns(text: str) -> int:
    """``2023-02-09T20:32:50.714964855Z`` -> integer ns since the epoch, exactly."""
    head, _, frac = text.rstrip("Z").partition(".")
    seconds = int(datetime.fromisoformat(head).replace(tzinfo=timezone.utc).timestamp())
    return seconds * 1_000_000_000 + int((frac + "000000000")[:9])


class Update(msgspec.Struct):
    side: str
    price_level: Decimal
    new_quantity: Decimal
    event_time: str = ""


class TradeMsg(msgspec.Struct):
    trade_id: str
    product_id: str
    price: Decimal
    size: Decimal
    side: str
    time: str


class TickerMsg(msgspec.Struct):
    product_id: str
    price: Decimal
    volume_24_h: Decimal
    low_24_h: Decimal
    high_24_h: Decimal
    best_bid: Decimal | None = None
    best_bid_quantity: Decimal | None = None
    best_ask: Decimal | None = None
    best_ask_quantity: Decimal | None = None


class Event(msgspec.Struct):
    type: str = ""
    product_id: str = ""
    updates: list[Update] = []
    trades: list[TradeMsg] = []
    tickers: list[TickerMsg] = []


class Message(msgspec.Struct):
    channel: str = ""
    timestamp: str = ""
    sequence_num: int | None = None
    events: list[Event] = []
    type: str = ""
    message: str = ""


_message = msgspec.json.Decoder(Message)


class CoinbaseWs(WsAdapter):
    venue = "coinbase"
    url = "wss://advanced-trade-ws.coinbase.com"
    keepalive = KeepAlive(interval_s=20.0)
    book_rule = "none"
    resync = "resubscribe"
    max_streams_per_connection = 100
    stale_after_s = 30.0  # heartbeats arrive every second

    def venue_symbol(self, symbol: str) -> str:
        return symbol  # product ids are BASE-QUOTE already

    def _messages(self, kind: str, channels: Sequence[Channel], syms: Sequence[str]) -> list[str | bytes]:
        names = [self.venue_symbol(s) for s in syms]
        out = [msgspec.json.encode({"type": kind, "product_ids": names, "channel": ch}).decode()
               for ch in sorted({CHANNEL_OF[c] for c in channels})]
        return out

    def subscribe_messages(self, channels: Sequence[Channel], syms: Sequence[str]) -> list[str | bytes]:
        heartbeats = msgspec.json.encode({"type": "subscribe", "channel": "heartbeats"}).decode()
        return [*self._messages("subscribe", channels, syms), heartbeats]

    def unsubscribe_messages(self, channels: Sequence[Channel], syms: Sequence[str]) -> list[str | bytes]:
        return self._messages("unsubscribe", channels, syms)

    def resubscribe_messages(self, symbol: str) -> list[str | bytes]:
        return [*self._messages("unsubscribe", ["book"], [symbol]), *self._messages("subscribe", ["book"], [symbol])]

    def parse_frame(self, data: str | bytes, ts_recv: int) -> list[WsEvent]:
        m = _message.decode(data)
        if m.type == "error":
            return [VenueNotice("error", m.message)]
        out: list[WsEvent] = [] if m.sequence_num is None else [StreamSequence(m.sequence_num)]
        ts_msg = rfc3339_ns(m.timestamp) if m.timestamp else ts_recv
        if m.channel == "l2_data":
            for e in m.events:
                symbol = self.symbol_of(e.product_id)
                if symbol is None:
                    continue
                bids = [(u.price_level, u.new_quantity) for u in e.updates if u.side == "bid"]
                asks = [(u.price_level, u.new_quantity) for u in e.updates if u.side != "bid"]
                out.append(BookUpdate(symbol=symbol, snapshot=e.type == "snapshot", bids=bids, asks=asks,
                                      ts_event=ts_msg, ts_recv=ts_recv))
        elif m.channel == "market_trades":
            for e in m.events:
                for t in e.trades:
                    symbol = self.symbol_of(t.product_id)
                    if symbol is not None:
                        out.append(Trade(venue="coinbase", symbol=symbol, ts_event=rfc3339_ns(t.time), ts_recv=ts_recv,
                                         trade_id=t.trade_id, price=t.price, quantity=t.size,
                                         side="sell" if t.side == "BUY" else "buy"))
        elif m.channel == "ticker":
            for e in m.events:
                for k in e.tickers:
                    symbol = self.symbol_of(k.product_id)
                    if symbol is not None:
                        out.append(Ticker(venue="coinbase", symbol=symbol, ts_event=ts_msg, ts_recv=ts_recv,
                                          last=k.price, volume_24h=k.volume_24_h, low_24h=k.low_24_h,
                                          high_24h=k.high_24_h, bid=k.best_bid, bid_size=k.best_bid_quantity,
                                          ask=k.best_ask, ask_size=k.best_ask_quantity))
        return out


ADAPTER = CoinbaseWs
