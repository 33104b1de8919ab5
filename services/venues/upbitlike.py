"""The WebSocket protocol Upbit (websocket/v1) and Bithumb (ws-api.bithumb.com/websocket/v1)
share: one subscription message (ticket, one object per type, format), binary JSON frames
in DEFAULT or SIMPLE (abbreviated field names) format, and full order-book snapshots.

Sources: docs.upbit.com "WebSocket 이용 안내" (request format, trade/orderbook/ticker
fields and their SIMPLE abbreviations); apidocs.bithumb.com WebSocket v1 (same fields);
../shared/data/recorded/UPBIT.ws.62.0 (real SIMPLE frames).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any, ClassVar, Literal, Sequence, Union

import msgspec

from schemas.market import Ticker, Trade
from services.venues import symbols
from services.venues.wsbase import (
    BookUpdate, Channel, KeepAlive, Subscription, VenueNotice, WsAdapter, WsEvent, ms_to_ns,
)

TYPE_OF: dict[str, str] = {"trade": "trade", "ticker": "ticker", "book": "orderbook", "bbo": "orderbook"}


class _Kind(msgspec.Struct):
    type: str = ""
    ty: str = ""
    status: str = ""
    error: dict | None = None


class TradeMsg(msgspec.Struct, gc=False, tag_field="type", tag="trade"):
    code: str
    trade_price: Decimal
    trade_volume: Decimal
    ask_bid: str
    trade_timestamp: int
    sequential_id: int


def twin(cls: type, suffix: str, abbreviations: dict[str, str] | None = None, **types: object) -> type:
    """A copy of a Struct named ``<cls><suffix>``: the same fields and JSON names, some
    retyped by ``types``; with ``abbreviations``, the SIMPLE-format names instead (the
    message type, when tagged, in ``ty`` instead of ``type``)."""
    fields = msgspec.structs.fields(cls)
    config = cls.__struct_config__
    if abbreviations is None:
        rename, tag_field = {f.name: f.encode_name for f in fields}, config.tag_field
    else:
        rename, tag_field = abbreviations, "ty"
    return msgspec.defstruct(f"{cls.__name__}{suffix}", [(f.name, types.get(f.name, f.type)) for f in fields],
                             rename=rename, gc=config.gc,
                             **({"tag_field": tag_field, "tag": config.tag} if config.tag else {}))


def simple(cls: type, abbreviations: dict[str, str], **types: object) -> type:
    """The SIMPLE-format twin of a DEFAULT-format Struct: same fields, abbreviated names."""
    return twin(cls, "Simple", abbreviations, **types)


TradeSimple = simple(TradeMsg, {"code": "cd", "trade_price": "tp", "trade_volume": "tv", "ask_bid": "ab",
                                "trade_timestamp": "ttms", "sequential_id": "sid"})


class Unit(msgspec.Struct, gc=False):
    ask_price: Decimal
    bid_price: Decimal
    ask_size: Decimal
    bid_size: Decimal


UnitSimple = simple(Unit, {"ask_price": "ap", "bid_price": "bp", "ask_size": "as", "bid_size": "bs"})


class OrderbookMsg(msgspec.Struct, gc=False, tag_field="type", tag="orderbook"):
    code: str
    timestamp: int
    orderbook_units: list[Unit]


OrderbookSimple = simple(OrderbookMsg, {"code": "cd", "timestamp": "tms", "orderbook_units": "obu"},
                         orderbook_units=list[UnitSimple])  # type: ignore[valid-type]


class TickerMsg(msgspec.Struct, gc=False, tag_field="type", tag="ticker"):
    code: str
    trade_price: Decimal
    opening_price: Decimal
    high_price: Decimal
    low_price: Decimal
    acc_trade_volume_24h: Decimal
    acc_trade_price_24h: Decimal
    timestamp: int


TickerSimple = simple(TickerMsg, {"code": "cd", "trade_price": "tp", "opening_price": "op", "high_price": "hp",
                                  "low_price": "lp", "acc_trade_volume_24h": "atv24h",
                                  "acc_trade_price_24h": "atp24h", "timestamp": "tms"})


class _Numbers(dict):
    """JSON number text -> its Decimal, as ``float_hook``: a full-snapshot venue resends
    mostly the same prices and sizes, and a dict lookup costs a fraction of parsing a
    Decimal. Decimals are immutable and the same text always gives the same Decimal, so
    sharing them is exact. Emptied when it reaches ``limit`` entries (~200 bytes each)."""

    limit = 1 << 15

    def __missing__(self, text: str) -> Decimal:
        if len(self) >= self.limit:
            self.clear()
        value = self[text] = Decimal(text)
        return value


_numbers = _Numbers()

# Book messages are decoded with their unit numbers typed Any: msgspec then hands each
# number with a fraction or exponent to float_hook as text (cached Decimals above), and
# an integer stays an int. Units holding anything but Decimals (an int, a string) are
# decoded again by the typed Struct, which converts or rejects them (_all_decimal).
_ANY_NUMBERS = {name: Any for name in Unit.__struct_fields__}
OrderbookCached = twin(OrderbookMsg, "Cached", orderbook_units=list[twin(Unit, "Cached", **_ANY_NUMBERS)])  # type: ignore[misc]
OrderbookSimpleCached = twin(OrderbookSimple, "Cached",
                             orderbook_units=list[twin(UnitSimple, "Cached", **_ANY_NUMBERS)])  # type: ignore[misc]

# Every other number is read by its Decimal-typed field, exactly from its text, never via float.
_kind = msgspec.json.Decoder(_Kind)
_messages = {  # one decode for a data frame, by its type tag; other frames fail it and go to _kind
    "DEFAULT": msgspec.json.Decoder(Union[TradeMsg, OrderbookCached, TickerMsg], float_hook=_numbers.__getitem__),
    "SIMPLE": msgspec.json.Decoder(Union[TradeSimple, OrderbookSimpleCached, TickerSimple],  # type: ignore[valid-type]
                                   float_hook=_numbers.__getitem__),
}
_KIND_OF: dict[type, str] = {TradeMsg: "trade", TradeSimple: "trade", OrderbookMsg: "orderbook",
                             OrderbookSimple: "orderbook", OrderbookCached: "orderbook",
                             OrderbookSimpleCached: "orderbook", TickerMsg: "ticker", TickerSimple: "ticker"}
_decoders = {
    ("trade", False): msgspec.json.Decoder(TradeMsg, float_hook=Decimal),
    ("trade", True): msgspec.json.Decoder(TradeSimple, float_hook=Decimal),
    ("orderbook", False): msgspec.json.Decoder(OrderbookMsg, float_hook=Decimal),
    ("orderbook", True): msgspec.json.Decoder(OrderbookSimple, float_hook=Decimal),
    ("ticker", False): msgspec.json.Decoder(TickerMsg, float_hook=Decimal),
    ("ticker", True): msgspec.json.Decoder(TickerSimple, float_hook=Decimal),
}
_TYPED_BOOK = {OrderbookCached: _decoders[("orderbook", False)], OrderbookSimpleCached: _decoders[("orderbook", True)]}


def _all_decimal(units: list) -> bool:
    """Whether every number of these book units was read as a Decimal."""
    for u in units:
        if not type(u.ask_price) is type(u.bid_price) is type(u.ask_size) is type(u.bid_size) is Decimal:
            return False
    return True


class UpbitLikeWs(WsAdapter):
    """Shared adapter; a venue sets ``venue``, ``url`` and ``format``."""

    format: ClassVar[Literal["DEFAULT", "SIMPLE"]] = "DEFAULT"
    keepalive = KeepAlive(interval_s=60.0)  # idle connections close after 120 s
    max_streams_per_connection = 300
    book_rule = "snapshots"
    resync = "next_snapshot"
    stale_after_s = 60.0

    def venue_symbol(self, symbol: str) -> str:
        return symbols.quote_first(symbol)

    def subscribe_messages(self, channels: Sequence[Channel], syms: Sequence[str]) -> list[str | bytes]:
        codes = [self.venue_symbol(s) for s in syms]
        types = sorted({TYPE_OF[c] for c in channels})
        request: list[dict] = [{"ticket": str(uuid.uuid4())}]
        request += [{"type": t, "codes": codes} for t in types]
        request.append({"format": self.format})
        return [msgspec.json.encode(request).decode()]

    def unsubscribe_messages(self, channels: Sequence[Channel], syms: Sequence[str]) -> list[str | bytes]:
        return []  # a new subscription message replaces the previous one; books are full snapshots anyway

    def recorded_subscriptions(self, url: str, sent: Sequence[str]) -> list[Subscription]:
        """Subscriptions of a recorded session, from its request messages."""
        channel_of = {"trade": "trade", "orderbook": "book", "ticker": "ticker"}
        subs: set[Subscription] = set()
        for text in sent:
            for part in msgspec.json.decode(text):
                if isinstance(part, dict) and part.get("type") in channel_of:
                    for code in part.get("codes", []):
                        subs.add(Subscription(channel_of[part["type"]], symbols.from_quote_first(code)))  # type: ignore[arg-type]
        return sorted(subs)

    def parse_frame(self, data: str | bytes, ts_recv: int) -> list[WsEvent]:
        try:
            msg = _messages[self.format].decode(data)
        except msgspec.ValidationError:
            msg = self._other_frame(data)
            if msg is None:
                return []
        if type(msg) is VenueNotice:
            return [msg]
        kind = _KIND_OF[type(msg)]
        symbol = self.symbol_of(msg.code)
        if symbol is None:
            return []
        if kind == "trade":
            return [Trade(venue=self.venue, symbol=symbol, ts_event=ms_to_ns(msg.trade_timestamp), ts_recv=ts_recv,
                          trade_id=str(msg.sequential_id), price=msg.trade_price, quantity=msg.trade_volume,
                          side="sell" if msg.ask_bid == "ASK" else "buy")]
        if kind == "orderbook":
            units = msg.orderbook_units
            if not _all_decimal(units):
                units = _TYPED_BOOK[type(msg)].decode(data).orderbook_units
            # units pair the nth ask with the nth bid; a side with fewer levels has size 0 there
            return [BookUpdate(symbol=symbol, snapshot=True, ts_event=ms_to_ns(msg.timestamp), ts_recv=ts_recv,
                               bids=[(u.bid_price, u.bid_size) for u in units if u.bid_size],
                               asks=[(u.ask_price, u.ask_size) for u in units if u.ask_size])]
        return [Ticker(venue=self.venue, symbol=symbol, ts_event=ms_to_ns(msg.timestamp), ts_recv=ts_recv,
                       last=msg.trade_price, open_24h=msg.opening_price, high_24h=msg.high_price,
                       low_24h=msg.low_price, volume_24h=msg.acc_trade_volume_24h,
                       quote_volume_24h=msg.acc_trade_price_24h)]

    @staticmethod
    def _other_frame(data: str | bytes) -> msgspec.Struct | VenueNotice | None:
        """A frame that is not a data message of the subscribed format: an error, a
        keep-alive answer, or a message in the other format (read with its own decoder)."""
        head = _kind.decode(data)
        if head.error is not None:
            return VenueNotice("error", f"{head.error.get('name')}: {head.error.get('message')}")
        kind, simple = (head.ty, True) if head.ty else (head.type, False)
        decoder = _decoders.get((kind, simple))
        return decoder.decode(data) if decoder is not None else None  # None: {"status": "UP"}, other types

