"""Kraken spot WebSocket API v1 public feeds: trade, ticker, spread (BBO), book.

https://docs.kraken.com/api/docs/websocket-v1/book (and trade, ticker, spread).
Data frames are arrays ``[channelID, payload..., channelName, pair]``; book updates
carry a CRC32 ``c`` of the top 10 levels, valid only on a book truncated to the
subscribed depth. Pairs use Kraken's WS names (``XBT/USD``).
"""

from __future__ import annotations

from decimal import Decimal
from itertools import chain
from typing import Sequence, Union

import msgspec

from schemas.market import BBO, Ticker, Trade
from services.venues import checksum
from services.venues.wsbase import (
    BookUpdate, Channel, KeepAlive, Subscribed, Subscription, VenueNotice, WsAdapter, WsEvent, seconds_to_ns,
)

SUBSCRIPTION_OF: dict[str, str] = {"trade": "trade", "ticker": "ticker", "book": "book", "bbo": "spread"}
CHANNEL_OF: dict[str, Channel] = {"trade": "trade", "ticker": "ticker", "book": "book", "spread": "bbo"}
ASSET_ALIASES = {"BTC": "XBT", "DOGE": "XDG"}
"""exbus asset -> Kraken WS asset."""
_EXBUS_ASSET = {v: k for k, v in ASSET_ALIASES.items()}


class Event(msgspec.Struct):
    """Object frames: heartbeat, systemStatus, subscriptionStatus, pong, error."""

    event: str
    status: str = ""
    pair: str = ""
    channelName: str = ""
    errorMessage: str = ""


class Level(msgspec.Struct, array_like=True, gc=False):
    price: Decimal
    volume: Decimal
    timestamp: str


class BookPayload(msgspec.Struct, gc=False):
    # tuples: an absent side is the shared empty tuple, not a new list per frame
    snapshot_asks: tuple[Level, ...] = msgspec.field(default=(), name="as")
    snapshot_bids: tuple[Level, ...] = msgspec.field(default=(), name="bs")
    a: tuple[Level, ...] = ()
    b: tuple[Level, ...] = ()
    c: str | None = None


class TradeEntry(msgspec.Struct, array_like=True):
    price: Decimal
    volume: Decimal
    time: str
    side: str  # "b" buy / "s" sell (taker)
    order_type: str
    misc: str


class TickerPayload(msgspec.Struct):
    a: tuple[Decimal, int, Decimal]  # best ask: price, whole lot volume, lot volume
    b: tuple[Decimal, int, Decimal]
    c: tuple[Decimal, Decimal]  # last trade: price, lot volume
    v: tuple[Decimal, Decimal]  # volume: today, last 24 hours
    h: tuple[Decimal, Decimal]
    l: tuple[Decimal, Decimal]  # noqa: E741 - Kraken's field name
    o: tuple[Decimal, Decimal]


class SpreadEntry(msgspec.Struct, array_like=True):
    bid: Decimal
    ask: Decimal
    timestamp: str
    bid_volume: Decimal
    ask_volume: Decimal


class TradesResponse(msgspec.Struct):
    """GET /0/public/Trades: ``result`` maps the pair's REST name to its trades, plus ``last``."""

    error: list[str]
    result: dict[str, msgspec.Raw] = msgspec.field(default_factory=dict)


class TradeRow(msgspec.Struct, array_like=True):
    price: Decimal
    volume: Decimal
    time: Decimal  # seconds, a JSON number
    side: str
    order_type: str
    misc: str
    trade_id: int | None = None


_event = msgspec.json.Decoder(Event)
_book_frame = msgspec.json.Decoder(list[Union[int, str, BookPayload]])
_BOOK_MARK, _BOOK_MARK_BYTES = '"book-', b'"book-'
_parts = msgspec.json.Decoder(list[msgspec.Raw])
_name = msgspec.json.Decoder(str)
_trades = msgspec.json.Decoder(list[TradeEntry])
_ticker = msgspec.json.Decoder(TickerPayload)
_spread = msgspec.json.Decoder(SpreadEntry)
_trades_response = msgspec.json.Decoder(TradesResponse)
_trade_rows = msgspec.json.Decoder(list[TradeRow])
REST = "https://api.kraken.com"


class KrakenWs(WsAdapter):
    venue = "kraken"
    url = "wss://ws.kraken.com"
    keepalive = KeepAlive(interval_s=30.0, message='{"event":"ping"}')
    max_streams_per_connection = 200
    stale_after_s = 10.0  # Kraken sends a heartbeat every second on an idle connection
    book_rule = "none"
    resync = "resubscribe"
    book_depth = 100
    checksum = staticmethod(checksum.kraken)
    checksum_depth = 10
    bbo_from_book = False

    def venue_symbol(self, symbol: str) -> str:
        base, quote = symbol.split("-")
        return f"{ASSET_ALIASES.get(base, base)}/{ASSET_ALIASES.get(quote, quote)}"

    def _subscription(self, channel: Channel) -> dict:
        name = SUBSCRIPTION_OF[channel]
        return {"name": name, "depth": self.book_depth} if name == "book" else {"name": name}

    def _messages(self, event: str, channels: Sequence[Channel], symbols: Sequence[str]) -> list[str | bytes]:
        pairs = [self.venue_symbol(s) for s in symbols]
        return [
            msgspec.json.encode({"event": event, "pair": pairs, "subscription": self._subscription(c)}).decode()
            for c in channels
        ]

    def subscribe_messages(self, channels: Sequence[Channel], symbols: Sequence[str]) -> list[str | bytes]:
        return self._messages("subscribe", channels, symbols)

    def unsubscribe_messages(self, channels: Sequence[Channel], symbols: Sequence[str]) -> list[str | bytes]:
        return self._messages("unsubscribe", channels, symbols)

    def parse_frame(self, data: str | bytes, ts_recv: int) -> list[WsEvent]:
        if data[:1] in ("{", b"{"):
            return self._event(_event.decode(data))
        if (_BOOK_MARK if type(data) is str else _BOOK_MARK_BYTES) in data:  # channel "book-<depth>": one decode
            frame = _book_frame.decode(data)  # [channelID, payload, (payload,) "book-N", pair]
            symbol = self.symbol_of(frame[-1])  # type: ignore[arg-type]
            if symbol is None or not frame[-2].startswith("book"):  # type: ignore[union-attr]
                return []
            return [self._book(frame, symbol, ts_recv)]
        parts = _parts.decode(data)
        symbol = self.symbol_of(_name.decode(parts[-1]))
        if symbol is None:
            return []
        name = _name.decode(parts[-2])
        if name == "trade":
            return [self._trade(t, symbol, i, ts_recv) for i, t in enumerate(_trades.decode(parts[1]))]
        if name == "ticker":
            return [self._ticker(_ticker.decode(parts[1]), symbol, ts_recv)]
        if name == "spread":
            s = _spread.decode(parts[1])
            return [BBO(venue="kraken", symbol=symbol, ts_event=seconds_to_ns(s.timestamp), ts_recv=ts_recv,
                        bid=s.bid, bid_size=s.bid_volume, ask=s.ask, ask_size=s.ask_volume)]
        return []

    def _event(self, e: Event) -> list[WsEvent]:
        if e.event == "subscriptionStatus":
            symbol = self.symbol_of(e.pair)
            if e.status == "error":
                return [VenueNotice("error", e.errorMessage, symbol)]
            channel = CHANNEL_OF.get(e.channelName.split("-")[0])
            if e.status == "subscribed" and symbol and channel:
                return [Subscribed(channel, symbol)]
        elif e.event == "systemStatus" and e.status not in ("", "online"):
            return [VenueNotice("reconnect", f"system status {e.status}")]
        elif e.event == "error":
            return [VenueNotice("error", e.errorMessage)]
        return []  # heartbeat, pong

    def _book(self, frame: list, symbol: str, ts_recv: int) -> BookUpdate:
        """``frame``: ``[channelID, payload, (payload,) "book-N", pair]``."""
        p: BookPayload = frame[1]
        if type(p) is not BookPayload:
            raise ValueError("book frame without a payload")
        if len(frame) > 4:
            # an update has one payload per side that changed ({"a": ...} and/or {"b": ...}); "c" on the last
            payloads: list[BookPayload] = frame[1:-2]
            if not all(type(q) is BookPayload for q in payloads):
                raise ValueError("book frame with a stray value among its payloads")
            asks: Sequence[Level] = [lvl for q in payloads for lvl in q.a]
            bids: Sequence[Level] = [lvl for q in payloads for lvl in q.b]
            snapshot, crc = False, payloads[-1].c
        elif p.snapshot_asks or p.snapshot_bids:
            asks, bids, snapshot, crc = p.snapshot_asks, p.snapshot_bids, True, None
        else:
            asks, bids, snapshot, crc = p.a, p.b, False, p.c
        if len(asks) + len(bids) == 1:  # the usual update: one level
            lvl = (asks or bids)[0]
            ts_event = seconds_to_ns(lvl.timestamp)
            one = [(lvl.price, lvl.volume)]
            bid_levels, ask_levels = (one, []) if bids else ([], one)
        else:
            # Unix seconds with ten whole digits (2001-2286) sort as text in time order
            ts_event = seconds_to_ns(max([lvl.timestamp for lvl in chain(bids, asks)])) if asks or bids else ts_recv
            bid_levels = [(lvl.price, lvl.volume) for lvl in bids]
            ask_levels = [(lvl.price, lvl.volume) for lvl in asks]
        return BookUpdate(
            symbol=symbol, snapshot=snapshot, ts_event=ts_event, ts_recv=ts_recv, bids=bid_levels, asks=ask_levels,
            checksum=int(crc) if crc is not None else None,
        )

    @staticmethod
    def _trade(t: TradeEntry, symbol: str, index: int, ts_recv: int) -> Trade:
        # v1 trades carry no id: the trade time (µs) plus its place in the frame is unique
        return Trade(
            venue="kraken", symbol=symbol, ts_event=seconds_to_ns(t.time), ts_recv=ts_recv,
            trade_id=f"{t.time}-{index}", price=t.price, quantity=t.volume, side="buy" if t.side == "b" else "sell",
        )

    @staticmethod
    def _ticker(t: TickerPayload, symbol: str, ts_recv: int) -> Ticker:
        return Ticker(
            venue="kraken", symbol=symbol, ts_event=ts_recv, ts_recv=ts_recv,
            bid=t.b[0], bid_size=t.b[2], ask=t.a[0], ask_size=t.a[2], last=t.c[0],
            open_24h=t.o[1], high_24h=t.h[1], low_24h=t.l[1], volume_24h=t.v[1],
        )

    trades_page_limit = 1000

    def trades_backfill_url(self, symbol: str, since_ns: int, until_ns: int) -> str | None:
        # https://docs.kraken.com/api/docs/rest-api/get-recent-trades: up to 1000 trades since a time
        return f"{REST}/0/public/Trades?pair={self.venue_symbol(symbol).replace('/', '')}&since={since_ns // 1_000_000_000}"

    def parse_trades_backfill(self, symbol: str, body: bytes, ts_recv: int) -> list[Trade]:
        response = _trades_response.decode(body)
        if response.error:
            raise ValueError(f"kraken Trades: {', '.join(response.error)}")
        rows = [row for key, raw in response.result.items() if key != "last" for row in _trade_rows.decode(raw)]
        return [
            Trade(venue="kraken", symbol=symbol, ts_event=int(r.time * 1_000_000_000), ts_recv=ts_recv,
                  trade_id=str(r.trade_id) if r.trade_id is not None else f"{r.time}-{i}",
                  price=r.price, quantity=r.volume, side="buy" if r.side == "b" else "sell")
            for i, r in enumerate(rows)
        ]

    def recorded_subscriptions(self, url: str, sent: Sequence[str]) -> list[Subscription]:
        subs = set()
        for message in sent:
            m = msgspec.json.decode(message)
            if m.get("event") != "subscribe":
                continue
            sub = m.get("subscription", {})
            channel = CHANNEL_OF.get(sub.get("name", ""))
            if channel == "book" and "depth" in sub:
                self.book_depth = int(sub["depth"])  # type: ignore[misc]  # the recorded depth
            for pair in m.get("pair", []):
                symbol = exbus_symbol(pair)
                if channel and symbol:
                    subs.add(Subscription(channel, symbol))
        return sorted(subs)


def exbus_symbol(pair: str) -> str | None:
    """``XBT/USD`` -> ``BTC-USD``."""
    base, sep, quote = pair.partition("/")
    if not sep:
        return None
    return f"{_EXBUS_ASSET.get(base, base)}-{_EXBUS_ASSET.get(quote, quote)}"


ADAPTER = KrakenWs
