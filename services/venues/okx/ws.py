"""OKX v5 public WebSocket channels: trades, tickers, books (400 levels), bbo-tbt.

https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-channel
``books`` sends a snapshot then incremental updates chained by ``prevSeqId``/``seqId``;
its CRC32 ``checksum`` (top 25) is being retired and reads 0 when absent. Frames
recorded in 2022 have a checksum and no seqId. Text ``ping`` keeps the connection.
"""

from __future__ import annotations

from decimal import Decimal
from operator import attrgetter
from typing import Sequence

import msgspec

from schemas.market import BBO, Ticker, Trade
from services.venues import checksum
from services.venues.wsbase import (
    BookUpdate, Channel, KeepAlive, Subscribed, Subscription, VenueNotice, WsAdapter, WsEvent, ms_to_ns,
)

CHANNEL_NAME: dict[str, str] = {"trade": "trades", "ticker": "tickers", "book": "books", "bbo": "bbo-tbt"}
CHANNEL_OF: dict[str, Channel] = {v: k for k, v in CHANNEL_NAME.items()}  # type: ignore[misc]


class Arg(msgspec.Struct):
    channel: str
    instId: str = ""


class Push(msgspec.Struct):
    """Every JSON frame: a push (``arg`` + ``data``) or an event (subscribe, error)."""

    arg: Arg | None = None
    data: msgspec.Raw = msgspec.Raw(b"")
    action: str | None = None
    event: str | None = None
    code: str = ""
    msg: str = ""


class Level(msgspec.Struct, array_like=True):
    price: Decimal
    size: Decimal  # [px, sz, liquidated orders (deprecated), number of orders]


class BookData(msgspec.Struct):
    asks: list[Level]
    bids: list[Level]
    ts: str
    checksum: int = 0
    seqId: int | None = None
    prevSeqId: int | None = None


class TradeData(msgspec.Struct):
    instId: str
    tradeId: str
    px: Decimal
    sz: Decimal
    side: str  # taker side
    ts: str


class TickerData(msgspec.Struct):
    instId: str
    ts: str
    last: str = ""
    askPx: str = ""
    askSz: str = ""
    bidPx: str = ""
    bidSz: str = ""
    open24h: str = ""
    high24h: str = ""
    low24h: str = ""
    vol24h: str = ""
    volCcy24h: str = ""


class HistoryTrades(msgspec.Struct):
    """GET /api/v5/market/history-trades."""

    code: str
    msg: str = ""
    data: list[TradeData] = msgspec.field(default_factory=list)


_push = msgspec.json.Decoder(Push)
_history = msgspec.json.Decoder(HistoryTrades)
REST = "https://www.okx.com"
_books = msgspec.json.Decoder(list[BookData])
_trades = msgspec.json.Decoder(list[TradeData])
_tickers = msgspec.json.Decoder(list[TickerData])


def _dec(text: str) -> Decimal | None:
    """OKX writes "" for a field it has no value for (e.g. no asks)."""
    return Decimal(text) if text else None


_price_size = attrgetter("price", "size")


def _levels(entries: list[Level]) -> list[tuple[Decimal, Decimal]]:
    return list(map(_price_size, entries))


class OkxWs(WsAdapter):
    venue = "okx"
    url = "wss://ws.okx.com:8443/ws/v5/public"
    keepalive = KeepAlive(interval_s=15.0, message="ping")  # idle connections close after 30 s
    max_streams_per_connection = 200
    subscribe_interval_s = 0.35  # 3 requests per second per connection
    stale_after_s = 30.0
    book_rule = "prev_sequence"
    resync = "rest"
    book_depth = 400
    snapshot_depth = 400
    snapshot_requests_per_s = 5.0  # market/books: 40 requests per 2 s
    checksum = staticmethod(checksum.okx)
    bbo_from_book = False
    args_per_message = 50

    def venue_symbol(self, symbol: str) -> str:
        return symbol  # OKX spot instId is BASE-QUOTE already

    def _messages(self, op: str, channels: Sequence[Channel], symbols: Sequence[str]) -> list[str | bytes]:
        args = [{"channel": CHANNEL_NAME[c], "instId": self.venue_symbol(s)} for s in symbols for c in channels]
        return [
            msgspec.json.encode({"op": op, "args": args[i:i + self.args_per_message]}).decode()
            for i in range(0, len(args), self.args_per_message)
        ]

    def subscribe_messages(self, channels: Sequence[Channel], symbols: Sequence[str]) -> list[str | bytes]:
        return self._messages("subscribe", channels, symbols)

    def unsubscribe_messages(self, channels: Sequence[Channel], symbols: Sequence[str]) -> list[str | bytes]:
        return self._messages("unsubscribe", channels, symbols)

    def parse_frame(self, data: str | bytes, ts_recv: int) -> list[WsEvent]:
        if data in ("pong", b"pong"):
            return []
        p = _push.decode(data)
        if p.event is not None:
            return self._event(p)
        if p.arg is None or not p.data:
            return []
        symbol = self.symbol_of(p.arg.instId)
        if symbol is None:
            return []
        channel = p.arg.channel
        if channel == "books":
            return [self._book(b, symbol, p.action == "snapshot", ts_recv) for b in _books.decode(p.data)]
        if channel == "trades":
            return [self._trade(t, symbol, ts_recv) for t in _trades.decode(p.data)]
        if channel == "tickers":
            return [self._ticker(t, symbol, ts_recv) for t in _tickers.decode(p.data)]
        if channel == "bbo-tbt":
            return [self._bbo(b, symbol, ts_recv) for b in _books.decode(p.data)]
        return []

    def _event(self, p: Push) -> list[WsEvent]:
        symbol = self.symbol_of(p.arg.instId) if p.arg else None
        if p.event == "error":
            return [VenueNotice("error", f"{p.code} {p.msg}", symbol)]
        if p.event == "subscribe" and p.arg and symbol and p.arg.channel in CHANNEL_OF:
            return [Subscribed(CHANNEL_OF[p.arg.channel], symbol)]
        if p.event == "notice":  # service upgrade: the connection will be closed
            return [VenueNotice("reconnect", f"{p.code} {p.msg}")]
        return []

    @staticmethod
    def _book(b: BookData, symbol: str, snapshot: bool, ts_recv: int) -> BookUpdate:
        return BookUpdate(
            symbol=symbol, snapshot=snapshot, bids=_levels(b.bids), asks=_levels(b.asks),
            ts_event=ms_to_ns(b.ts), ts_recv=ts_recv, sequence=b.seqId,
            prev_sequence=None if snapshot else b.prevSeqId,
            checksum=b.checksum or None,  # 0: checksum retired
        )

    @staticmethod
    def _trade(t: TradeData, symbol: str, ts_recv: int) -> Trade:
        return Trade(
            venue="okx", symbol=symbol, ts_event=ms_to_ns(t.ts), ts_recv=ts_recv, trade_id=t.tradeId,
            price=t.px, quantity=t.sz, side="buy" if t.side == "buy" else "sell",
        )

    @staticmethod
    def _ticker(t: TickerData, symbol: str, ts_recv: int) -> Ticker:
        # spot: vol24h is in the base currency, volCcy24h in the quote currency
        return Ticker(
            venue="okx", symbol=symbol, ts_event=ms_to_ns(t.ts), ts_recv=ts_recv,
            bid=_dec(t.bidPx), bid_size=_dec(t.bidSz), ask=_dec(t.askPx), ask_size=_dec(t.askSz),
            last=_dec(t.last), open_24h=_dec(t.open24h), high_24h=_dec(t.high24h), low_24h=_dec(t.low24h),
            volume_24h=_dec(t.vol24h), quote_volume_24h=_dec(t.volCcy24h),
        )

    @staticmethod
    def _bbo(b: BookData, symbol: str, ts_recv: int) -> BBO:
        bid = b.bids[0] if b.bids else None
        ask = b.asks[0] if b.asks else None
        return BBO(
            venue="okx", symbol=symbol, ts_event=ms_to_ns(b.ts), ts_recv=ts_recv,
            bid=bid.price if bid else None, bid_size=bid.size if bid else None,
            ask=ask.price if ask else None, ask_size=ask.size if ask else None,
        )

    trades_page_limit = 100

    def trades_backfill_url(self, symbol: str, since_ns: int, until_ns: int) -> str | None:
        # type=2 pages by time: ``after`` returns the newest trades before that ms timestamp
        # https://www.okx.com/docs-v5/en/#order-book-trading-market-data-get-trades-history
        return (f"{REST}/api/v5/market/history-trades?instId={self.venue_symbol(symbol)}&type=2"
                f"&after={until_ns // 1_000_000 + 1}&limit={self.trades_page_limit}")

    def parse_trades_backfill(self, symbol: str, body: bytes, ts_recv: int) -> list[Trade]:
        response = _history.decode(body)
        if response.code != "0":
            raise ValueError(f"okx history-trades: {response.code} {response.msg}")
        return [self._trade(t, symbol, ts_recv) for t in reversed(response.data)]  # newest first on the wire

    def recorded_subscriptions(self, url: str, sent: Sequence[str]) -> list[Subscription]:
        subs = set()
        for message in sent:
            for arg in msgspec.json.decode(message).get("args", []):
                channel = CHANNEL_OF.get(arg.get("channel", ""))
                inst = arg.get("instId", "")
                if channel and inst.count("-") == 1:  # spot only: BTC-USD-SWAP etc. are derivatives
                    subs.add(Subscription(channel, inst))
        return sorted(subs)


ADAPTER = OkxWs
