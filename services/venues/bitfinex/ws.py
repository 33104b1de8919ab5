"""Bitfinex ws/2 public channels: trades, ticker, book (P0 aggregated levels).

https://docs.bitfinex.com/docs/ws-general, .../ws-public-books, .../ws-public-trades
Frames are arrays ``[chanId, payload, seq]``: with the ``conf`` flag SEQ_ALL (65536)
every one ends with a per-connection sequence number, and with CHECKSUM (131072)
the book is followed by ``[chanId, "cs", crc32]``. Numbers are JSON numbers (read as
exact Decimals). Book levels are ``[price, count, amount]``: amount > 0 bid, < 0 ask,
count 0 deletes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Sequence

import msgspec

from schemas.market import Ticker, Trade
from services.venues import checksum
from services.venues.wsbase import (
    BookUpdate, Channel, KeepAlive, Level, StreamSequence, Subscribed, Subscription, TradeBackfill, VenueNotice,
    WsAdapter, WsEvent, ms_to_ns,
)

FLAG_SEQ_ALL = 65536
FLAG_CHECKSUM = 131072
CHANNEL_NAME: dict[str, str] = {"trade": "trades", "ticker": "ticker", "book": "book"}
CHANNEL_OF: dict[str, Channel] = {"trades": "trade", "ticker": "ticker", "book": "book"}
ASSET_ALIASES = {"USDT": "UST"}
_EXBUS_ASSET = {v: k for k, v in ASSET_ALIASES.items()}


def trading_symbol(symbol: str) -> str:
    """exbus symbol -> Bitfinex trading pair (``BTC-USDT`` -> ``tBTCUST``, ``AVAX-USD`` -> ``tAVAX:USD``)."""
    base, quote = (ASSET_ALIASES.get(a, a) for a in symbol.split("-"))
    return f"t{base}:{quote}" if len(base) > 3 or len(quote) > 3 else f"t{base}{quote}"


def exbus_asset(currency: str) -> str:
    """Bitfinex currency -> exbus asset (``UST`` -> ``USDT``)."""
    return _EXBUS_ASSET.get(currency, currency)


INFO_RECONNECT = 20051  # "Stop/Restart Websocket Server (please reconnect)"
INFO_MAINTENANCE_END = 20061  # resubscribe after maintenance


class Event(msgspec.Struct):
    event: str
    channel: str = ""
    chanId: int | None = None
    symbol: str = ""
    len: str = ""
    code: int | None = None
    msg: str = ""


class BookLevel(msgspec.Struct, array_like=True, gc=False):
    price: Decimal
    count: int
    amount: Decimal


class TradeEntry(msgspec.Struct, array_like=True):
    id: int
    mts: int
    amount: Decimal
    price: Decimal


class TickerEntry(msgspec.Struct, array_like=True):
    bid: Decimal
    bid_size: Decimal
    ask: Decimal
    ask_size: Decimal
    daily_change: Decimal
    daily_change_relative: Decimal
    last_price: Decimal
    volume: Decimal
    high: Decimal
    low: Decimal


_event = msgspec.json.Decoder(Event)
_parts = msgspec.json.Decoder(list[msgspec.Raw])
_common_frame = msgspec.json.Decoder(tuple[int, BookLevel | str, int])
"""``[chanId, [price, count, amount], seq]`` or ``[chanId, "hb", seq]``."""
_int = msgspec.json.Decoder(int)
_tag = msgspec.json.Decoder(str)
_book_snapshot = msgspec.json.Decoder(list[BookLevel])
_book_level = msgspec.json.Decoder(BookLevel)
_trades = msgspec.json.Decoder(list[TradeEntry])
_trade = msgspec.json.Decoder(TradeEntry)
_ticker = msgspec.json.Decoder(TickerEntry)
_ZERO = Decimal(0)


def _side_level(lv: BookLevel) -> tuple[bool, Level]:
    """(a bid?, (price, size)); count 0 deletes the level: amount 1 a bid, -1 an ask."""
    amount = lv.amount
    bid = amount > _ZERO
    return bid, (lv.price, _ZERO if lv.count == 0 else amount if bid else amount.copy_negate())


def _split(levels: list[BookLevel]) -> tuple[list[Level], list[Level]]:
    bids: list[Level] = []
    asks: list[Level] = []
    for lv in levels:
        bid, level = _side_level(lv)
        (bids if bid else asks).append(level)
    return bids, asks


class BitfinexWs(WsAdapter):
    venue = "bitfinex"
    url = "wss://api-pub.bitfinex.com/ws/2"
    keepalive = KeepAlive(interval_s=20.0)  # the venue sends "hb" every 15 s per channel
    max_streams_per_connection = 25  # public channels per connection
    stale_after_s = 30.0
    book_rule = "none"
    resync = "resubscribe"
    book_depth = 25
    checksum = staticmethod(checksum.bitfinex)
    bbo_from_book = True
    trades_resent_on_subscribe = True  # the trades channel starts with the last 30 trades

    def reset(self) -> None:
        self._channels: dict[int, tuple[Channel, str]] = {}

    def venue_symbol(self, symbol: str) -> str:
        return trading_symbol(symbol)

    def connect_messages(self) -> list[str | bytes]:
        return [msgspec.json.encode({"event": "conf", "flags": FLAG_SEQ_ALL | FLAG_CHECKSUM}).decode()]

    def _subscribe(self, channel: Channel, symbol: str) -> str:
        msg: dict = {"event": "subscribe", "channel": CHANNEL_NAME[channel], "symbol": self.venue_symbol(symbol)}
        if channel == "book":
            msg |= {"prec": "P0", "freq": "F0", "len": str(self.book_depth)}
        return msgspec.json.encode(msg).decode()

    def subscribe_messages(self, channels: Sequence[Channel], symbols: Sequence[str]) -> list[str | bytes]:
        # bbo is derived from the book (bbo_from_book); Bitfinex has no BBO channel
        return [self._subscribe(c, s) for s in symbols for c in channels if c in CHANNEL_NAME]

    def unsubscribe_messages(self, channels: Sequence[Channel], symbols: Sequence[str]) -> list[str | bytes]:
        wanted = {(c, s) for c in channels for s in symbols}
        return [
            msgspec.json.encode({"event": "unsubscribe", "chanId": chan_id}).decode()
            for chan_id, key in self._channels.items() if key in wanted
        ]

    def parse_frame(self, data: str | bytes, ts_recv: int) -> list[WsEvent]:
        # The common frames, a book level or a heartbeat, in one typed decode; any other
        # shape (an event object, a snapshot, "cs", "te", ...) fails it and is read apart.
        try:
            chan_id, body, seq = _common_frame.decode(data)
        except msgspec.DecodeError:
            if data[:1] in ("{", b"{"):
                return self._event(_event.decode(data))
            return self._parse_parts(data, ts_recv)
        stream = self._channels.get(chan_id)
        if stream is not None and stream[0] == "book" and body.__class__ is BookLevel:
            bid, level = _side_level(body)  # type: ignore[arg-type]
            return [StreamSequence(seq), BookUpdate(symbol=stream[1], snapshot=False, bids=[level] if bid else [],
                                                    asks=[] if bid else [level], ts_event=ts_recv, ts_recv=ts_recv)]
        if stream is None or body == "hb":
            return [StreamSequence(seq)]
        return self._parse_parts(data, ts_recv)  # e.g. a ticker: its body also reads as an array_like BookLevel

    def _parse_parts(self, data: str | bytes, ts_recv: int) -> list[WsEvent]:
        """Any data frame, one part at a time."""
        parts = _parts.decode(data)
        events: list[WsEvent] = [StreamSequence(_int.decode(parts[-1]))]
        stream = self._channels.get(_int.decode(parts[0]))
        if stream is None:
            return events
        channel, symbol = stream
        body = parts[1]
        head = memoryview(body)[:2].tobytes()
        if head[:1] == b'"':
            tag = _tag.decode(body)
            if tag == "cs" and channel == "book":
                events.append(BookUpdate(symbol=symbol, snapshot=False, bids=[], asks=[], ts_event=ts_recv,
                                         ts_recv=ts_recv, checksum=_int.decode(parts[2])))
            elif tag == "te":  # "tu" repeats the same trade with more detail: ignored
                events.append(self._trade(_trade.decode(parts[2]), symbol, ts_recv))
            return events  # "hb"
        if channel == "book":
            snapshot = head in (b"[[", b"[]")
            if snapshot:
                bids, asks = _split(_book_snapshot.decode(body))
            else:
                bid, level = _side_level(_book_level.decode(body))
                bids, asks = ([level], []) if bid else ([], [level])
            events.append(BookUpdate(symbol=symbol, snapshot=snapshot, bids=bids, asks=asks,
                                     ts_event=ts_recv, ts_recv=ts_recv))
        elif channel == "trade":
            trades = [self._trade(t, symbol, ts_recv) for t in reversed(_trades.decode(body))]
            events.append(TradeBackfill(symbol, trades))  # the last trades, newest first on the wire
        elif channel == "ticker":
            events.append(self._ticker(_ticker.decode(body), symbol, ts_recv))
        return events

    def _event(self, e: Event) -> list[WsEvent]:
        if e.event == "subscribed" and e.chanId is not None:
            symbol, channel = self.symbol_of(e.symbol), CHANNEL_OF.get(e.channel)
            if symbol and channel:
                self._channels[e.chanId] = (channel, symbol)
                return [Subscribed(channel, symbol)]
        elif e.event == "unsubscribed" and e.chanId is not None:
            self._channels.pop(e.chanId, None)
        elif e.event == "error":
            return [VenueNotice("error", f"{e.code} {e.msg}", self.symbol_of(e.symbol))]
        elif e.event == "info" and e.code == INFO_RECONNECT:
            return [VenueNotice("reconnect", f"{e.code} {e.msg}")]
        elif e.event == "info" and e.code == INFO_MAINTENANCE_END:
            return [VenueNotice("reconnect", f"{e.code} {e.msg}")]  # books must be rebuilt
        return []

    @staticmethod
    def _trade(t: TradeEntry, symbol: str, ts_recv: int) -> Trade:
        return Trade(
            venue="bitfinex", symbol=symbol, ts_event=ms_to_ns(t.mts), ts_recv=ts_recv, trade_id=str(t.id),
            price=t.price, quantity=abs(t.amount), side="buy" if t.amount > 0 else "sell",
        )

    @staticmethod
    def _ticker(t: TickerEntry, symbol: str, ts_recv: int) -> Ticker:
        return Ticker(
            venue="bitfinex", symbol=symbol, ts_event=ts_recv, ts_recv=ts_recv,
            bid=t.bid, bid_size=t.bid_size, ask=t.ask, ask_size=t.ask_size, last=t.last_price,
            open_24h=t.last_price - t.daily_change, high_24h=t.high, low_24h=t.low, volume_24h=t.volume,
        )

    def recorded_subscriptions(self, url: str, sent: Sequence[str]) -> list[Subscription]:
        subs = set()
        for message in sent:
            m = msgspec.json.decode(message)
            channel = CHANNEL_OF.get(m.get("channel", ""))
            symbol = exbus_symbol(m.get("symbol", ""))
            if m.get("event") == "subscribe" and channel and symbol:
                subs.add(Subscription(channel, symbol))
                if channel == "book" and "len" in m:
                    self.book_depth = int(m["len"])  # type: ignore[misc]  # the recorded length
        return sorted(subs)


def exbus_symbol(venue_symbol: str) -> str | None:
    """``tBTCUSD`` -> ``BTC-USD``, ``tTESTBTC:TESTUSD`` -> ``TESTBTC-TESTUSD``; None for funding."""
    if not venue_symbol.startswith("t"):
        return None
    pair = venue_symbol[1:]
    base, sep, quote = pair.partition(":")
    if not sep:
        if len(pair) != 6:
            return None
        base, quote = pair[:3], pair[3:]
    return f"{_EXBUS_ASSET.get(base, base)}-{_EXBUS_ASSET.get(quote, quote)}"


ADAPTER = BitfinexWs
