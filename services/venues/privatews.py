"""Private order streams, sans-IO: what every venue's private WebSocket has in common.

A venue's private stream adapter (``services/venues/<venue>/private.py``) subclasses
:class:`PrivateStream` and declares only what differs: the endpoint, whether a REST call
opens the session (Kraken's WebSocket token), the connection's auth headers (Upbit's JWT,
Coinone's signed payload), the messages sent after connecting (a signed subscribe or
login), its keep-alive, and the parsing of its frames into normalized
:class:`OrderUpdate` s. Signing is the venue's REST adapter's, reused. The executor
(services.executor.order_streams) does all I/O; turning updates into fills, once each, is
services.executor.fills, the same for every venue.

Frames parse to a list of :class:`OrderUpdate` (an order changed, or one fill of it),
:class:`StreamReady` (the venue has processed our subscription: from now on nothing is
missed, so a poll now reconciles what happened before), :class:`Send` (a message to send
now: OKX's subscribe once its login is confirmed) and ``VenueNotice`` (``reconnect``: the
venue ends the session; ``error``: it refused a request, which also ends the session).
"""

from __future__ import annotations

import importlib
from decimal import Decimal
from typing import Any, ClassVar, Literal, Union
from urllib.parse import urlsplit, urlunsplit

import msgspec

from schemas.vault import Credentials
from services.venues.base import RestAdapter
from services.venues.wsbase import KeepAlive, VenueNotice

OrderState = Literal["open", "partially_filled", "filled", "canceled", "expired", "rejected"]
"""The order's state after the change (the vocabulary of schemas.queries.OrderInfo)."""


class OrderUpdate(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One change of one order as a private stream reports it; decimals exact.

    ``filled_quantity`` is cumulative (``cumulative=False``: the venue's message reports
    only this fill, not the order's total: Coinone, Korbit ``myTrade``, Bitfinex ``tu``);
    ``last_fill_*``, ``fee``, ``fee_asset`` and ``trade_id`` describe the fill that caused
    this update (None when it is not a fill). ``fees_total`` is the order's cumulative fee
    where the venue reports that instead of the fill's (Coinbase ``total_fees``, Bithumb
    ``paid_fee``). ``fills_follow``: the venue reports this order's fills in messages of
    their own (Bitfinex ``tu``, Korbit ``myTrade``), so a cumulative quantity ahead of
    them waits briefly for them. ``client_order_id`` is None for orders placed without one,
    and for fills that name only the venue's order id (Korbit ``myTrade``)."""

    venue: str
    client_order_id: str | None
    venue_order_id: str
    state: OrderState
    filled_quantity: Decimal
    ts_event: int
    """Venue time of the change, ns."""
    symbol: str | None = None
    """exbus symbol, when the venue's could be mapped."""
    side: Literal["buy", "sell"] | None = None
    order_type: Literal["limit", "market"] | None = None
    price: Decimal | None = None
    quantity: Decimal | None = None
    average_price: Decimal | None = None
    last_fill_price: Decimal | None = None
    last_fill_quantity: Decimal | None = None
    fee: Decimal | None = None
    fee_asset: str | None = None
    trade_id: str | None = None
    cumulative: bool = True
    fees_total: Decimal | None = None
    fills_follow: bool = False


class StreamReady(msgspec.Struct, frozen=True):
    """The venue confirmed our subscription is in force."""


class Send(msgspec.Struct, frozen=True):
    """A message the session must send now (a subscribe that waits for the login's answer)."""

    message: str | bytes


PrivateEvent = Union[OrderUpdate, StreamReady, Send, VenueNotice]


class WsOpen(msgspec.Struct, frozen=True):
    """Where to connect and with which headers; both may carry secrets (a token in the
    query, a bearer JWT), so the repr shows neither."""

    url: str
    headers: dict[str, str]

    def __repr__(self) -> str:
        parts = urlsplit(self.url)
        return f"WsOpen({parts.scheme}://{parts.netloc}, {len(self.headers)} headers)"


_json = msgspec.json.Decoder(float_hook=Decimal)


class PrivateStream:
    """Base of every venue's private order stream adapter (sans-IO).

    Subclasses set ``venue`` and ``url`` and implement ``parse_frame``, plus ``connection``
    (auth in the handshake) or ``subscribe_messages`` (auth in a message), or both."""

    venue: ClassVar[str]
    url: ClassVar[str]
    """The venue's private WebSocket endpoint."""
    keepalive: ClassVar[KeepAlive] = KeepAlive(interval_s=20.0)
    """Keep-alive of the connection: WebSocket pings, or the venue's ping text
    (``KeepAlive.message``) every ``interval_s``; ``parse_frame`` swallows its answer."""
    max_session_s: ClassVar[float | None] = None
    """The venue closes a connection after this long (Binance: 24 h); the session
    reconnects a little before."""
    open_op: ClassVar[str | None] = None
    """A REST operation of the venue's adapter whose result the connection needs (Kraken:
    ``ws_token``, a WebSocket token); the executor makes it under the fleet's limits."""
    ready_on_connect: ClassVar[bool] = True
    """The subscription holds as soon as the connection is open (it is in the URL); False:
    wait for the :class:`StreamReady` that ``parse_frame`` reports."""

    def __init__(self, rest: RestAdapter, url: str | None = None) -> None:
        self.rest = rest
        """The venue's REST adapter: its base URL, signing and error mapping are reused."""
        self.url = url or stream_url_for(rest, type(self).url)  # type: ignore[misc]

    # --- what a venue implements ------------------------------------------------------
    def connection(self, token: Any, creds: Credentials, now_ms: int) -> WsOpen:
        """The URL and headers of the connection (``token``: the result of ``open_op``)."""
        return WsOpen(self.url, {})

    def subscribe_messages(self, creds: Credentials, token: Any, now_ms: int, nonce: int | None = None) -> list[str | bytes]:
        """Messages to send right after connecting (signed where the venue authenticates
        in a message: Binance's subscribe, OKX's login, Bitfinex's auth; ``nonce`` from the
        key's shared sequence where the REST adapter has ``shared_nonce``)."""
        return []

    def parse_frame(self, data: str | bytes, ts_recv: int) -> list[PrivateEvent]:
        """Events in one received frame; raises msgspec/ValueError on a frame it cannot read."""
        raise NotImplementedError


def stream_url_for(rest: RestAdapter, default: str) -> str:
    """The private stream endpoint: the venue's own, unless the REST adapter points
    elsewhere (the simulator serves REST and WebSocket on one port): then the same host
    with a ws scheme and the venue's path."""
    if rest.url == type(rest).base_url.rstrip("/"):
        return default
    parts = urlsplit(rest.url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, urlsplit(default).path, "", ""))


PRIVATE_STREAMS: dict[str, str] = {
    venue: f"services.venues.{venue}.private"
    for venue in ("binance", "coinbase", "kraken", "bitfinex", "okx", "upbit", "bithumb", "korbit", "coinone")
}
"""Venues with a private order stream, and the module whose ``ADAPTER`` speaks it."""


def private_stream(venue: str, rest: RestAdapter, url: str | None = None) -> PrivateStream | None:
    """The private order stream adapter of ``venue`` over its REST adapter ``rest``, or
    None for a venue without one (its orders are polled)."""
    module = PRIVATE_STREAMS.get(venue)
    if module is None:
        return None
    try:
        adapter = importlib.import_module(module).ADAPTER
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        return None
    return adapter(rest, url)


def decode_json(data: str | bytes) -> Any:
    """A frame's JSON with numbers as exact Decimals (never through a float)."""
    return _json.decode(data)


def positive(value: Decimal | None) -> Decimal | None:
    """``value`` when it is above zero (venues write 0 for "none"), else None."""
    return value if value is not None and value > 0 else None


__all__ = [
    "OrderState", "OrderUpdate", "PRIVATE_STREAMS", "PrivateEvent", "PrivateStream", "Send", "StreamReady", "WsOpen",
    "decode_json", "positive", "private_stream", "stream_url_for",
]
