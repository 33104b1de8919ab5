"""Private order streams, sans-IO: what every venue's private WebSocket has in common.

A venue's private stream adapter (``binance/userstream.py``, ``upbit/private.py``)
subclasses :class:`PrivateStream` and declares only what differs: the endpoint, whether a
REST call opens and keeps alive a stream session (Binance's listenKey), the connection's
auth headers (Upbit's JWT), the subscribe messages, and the parsing of its order frames
into one normalized :class:`OrderUpdate`. Signing is the venue's REST adapter's, reused.
The executor (services.executor.order_streams) does all I/O.

Frames parse to a list of :class:`OrderUpdate` (an order changed), :class:`StreamReady`
(the venue has processed our subscription: from now on nothing is missed, so a poll now
reconciles what happened before) and ``VenueNotice`` (``reconnect``: the venue ended the
session, e.g. an expired listenKey; ``error``: it refused a request).
"""

from __future__ import annotations

import importlib
from decimal import Decimal
from typing import Any, ClassVar, Literal, Union
from urllib.parse import urlsplit, urlunsplit

import msgspec

from schemas.vault import Credentials
from services.venues.base import HttpRequest, RestAdapter
from services.venues.errors import VenueError
from services.venues.wsbase import KeepAlive, VenueNotice

OrderState = Literal["open", "partially_filled", "filled", "canceled", "expired", "rejected"]
"""The order's state after the change (the vocabulary of schemas.queries.OrderInfo)."""


class OrderUpdate(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One change of one order as a private stream reports it; decimals exact.

    ``filled_quantity`` is cumulative; ``last_fill_*``, ``fee``, ``fee_asset`` and
    ``trade_id`` describe the fill that caused this update (None when it is not a fill).
    ``client_order_id`` is None for orders placed without one (not exbus's)."""

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


class StreamReady(msgspec.Struct, frozen=True):
    """The venue confirmed our subscription is in force."""


PrivateEvent = Union[OrderUpdate, StreamReady, VenueNotice]


class WsOpen(msgspec.Struct, frozen=True):
    """Where to connect and with which headers; both may carry secrets (a listenKey in the
    path, a bearer token), so the repr shows neither."""

    url: str
    headers: dict[str, str]

    def __repr__(self) -> str:
        parts = urlsplit(self.url)
        return f"WsOpen({parts.scheme}://{parts.netloc}, {len(self.headers)} headers)"


_json = msgspec.json.Decoder(float_hook=Decimal)


class PrivateStream:
    """Base of every venue's private order stream adapter (sans-IO).

    Subclasses set ``venue`` and ``url`` and implement ``connection``, ``subscribe_messages``
    and ``parse_frame``; venues whose stream is a REST-opened session (Binance) also
    implement ``open_request`` and ``keepalive_request``."""

    venue: ClassVar[str]
    url: ClassVar[str]
    """The venue's private WebSocket endpoint."""
    keepalive: ClassVar[KeepAlive] = KeepAlive(interval_s=20.0)
    """WebSocket-level keep-alive of the connection."""
    session_keepalive_s: ClassVar[float | None] = None
    """Period of the REST keep-alive of the stream session (None: the venue has none)."""
    rest_cost: ClassVar[dict[str, int]] = {}
    """Rate-limit units each open/keep-alive REST call consumes (the venue's REST limits)."""
    ready_on_connect: ClassVar[bool] = True
    """The subscription holds as soon as the connection is open (it is in the URL); False:
    wait for the :class:`StreamReady` that ``parse_frame`` reports."""

    def __init__(self, rest: RestAdapter, url: str | None = None) -> None:
        self.rest = rest
        """The venue's REST adapter: its base URL, signing and error mapping are reused."""
        self.url = url or stream_url_for(rest, type(self).url)  # type: ignore[misc]

    # --- what a venue implements ------------------------------------------------------
    def open_request(self, creds: Credentials, now_ms: int) -> HttpRequest | None:
        """The REST request that opens a stream session, or None when the venue has none."""
        return None

    def parse_open(self, status: int, headers: dict[str, str], body: bytes) -> str | VenueError:
        """The session token (listenKey) from the answer to ``open_request``."""
        raise NotImplementedError

    def keepalive_request(self, token: str, creds: Credentials, now_ms: int) -> HttpRequest | None:
        """The REST request that keeps the session ``token`` alive, or None."""
        return None

    def connection(self, token: str | None, creds: Credentials, now_ms: int) -> WsOpen:
        """The URL and headers of the connection (``token`` from ``parse_open``)."""
        raise NotImplementedError

    def subscribe_messages(self) -> list[str | bytes]:
        """Messages to send right after connecting."""
        return []

    def parse_frame(self, data: str | bytes, ts_recv: int) -> list[PrivateEvent]:
        """Events in one received frame; raises msgspec/ValueError on a frame it cannot read."""
        raise NotImplementedError

    # --- shared machinery -------------------------------------------------------------
    def rest_result(self, op: str, status: int, headers: dict[str, str], body: bytes) -> Any:
        """The decoded JSON of a 2xx answer to one of the stream's REST calls, else the
        VenueError the venue's REST adapter maps it to."""
        return self.rest.reply_payload(op, status, headers, body)


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
    "binance": "services.venues.binance.userstream",
    "upbit": "services.venues.upbit.private",
}
"""Venues with a private order stream, and the module whose ``ADAPTER`` speaks it."""


def private_stream(venue: str, rest: RestAdapter, url: str | None = None) -> PrivateStream | None:
    """The private order stream adapter of ``venue`` over its REST adapter ``rest``, or
    None for a venue without one (its orders are polled)."""
    module = PRIVATE_STREAMS.get(venue)
    if module is None:
        return None
    return importlib.import_module(module).ADAPTER(rest, url)


def decode_json(data: str | bytes) -> Any:
    """A frame's JSON with numbers as exact Decimals (never through a float)."""
    return _json.decode(data)


def positive(value: Decimal | None) -> Decimal | None:
    """``value`` when it is above zero (venues write 0 for "none"), else None."""
    return value if value is not None and value > 0 else None


__all__ = [
    "OrderState", "OrderUpdate", "PRIVATE_STREAMS", "PrivateEvent", "PrivateStream", "StreamReady", "WsOpen",
    "decode_json", "positive", "private_stream", "stream_url_for",
]
