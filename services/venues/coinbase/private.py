"""Coinbase Advanced Trade ``user`` channel: what differs from the shared private stream.

Sources (docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis): "WebSocket Overview"
(User Order Data endpoint ``wss://advanced-trade-ws-user.coinbase.com``, ``advanced-trade-ws``
as failover; one subscribe message per channel, ``{"type":"subscribe","channel":...,
"product_ids":[...],"jwt":...}``, sent within 5 s of connecting; "you must generate a different
JWT for each websocket message sent, since the JWTs will expire after 2 minutes"), "WebSocket
Authentication" ("WebSocket JWTs (vs those for REST API) are not built with a request method or
request path"), "WebSocket Channels" ("most channels close within 60-90 seconds if no updates are
sent. Subscribe to heartbeats to keep all subscriptions open"; heartbeats every second; the
``user`` channel's ``snapshot`` of open orders, then ``update`` events, each order with
``order_id``, ``client_order_id``, ``cumulative_quantity``, ``leaves_quantity``, ``avg_price``,
``total_fees``, ``status``, ``product_id``, ``order_side``, ``order_type``), the AsyncAPI
description ``advanced-trade-asyncapi.json`` ("verified against the production feed": no
``client_id``, ``heartbeat_counter`` an integer; "initial open orders are sent in batches of
50"). The official SDK coinbase-advanced-py (``jwt_generator.build_ws_jwt``: the REST JWT
without ``uri``; ``WSBase._build_subscription_message``: a new JWT per subscribe, resubscribing
only after a reconnect; ``types.misc_types.UserOrders``: the order fields) and ccxt pro 4.5.90
``coinbase.py`` (``handle_order``/``parse_ws_order``: ``cumulative_quantity`` filled,
``avg_price``, ``total_fees`` as the fee in the quote currency; ``type: error`` messages end the
subscription) read it the same way; refused authentication is answered
``{"type":"error","message":"authentication failure"}`` (coinbase-advanced-py issues #19, #92).

The channel reports each order's totals and no trade id, so updates carry the cumulative
quantity, average price and ``fees_total``; exbus's fills are the differences
(services.executor.fills). The JWT is the REST adapter's (``rest.cdp_jwt``) without a uri: a
fresh one for each of the two subscribes (``user``, ``heartbeats``), and fresh ones on every
reconnect. The docs require a new JWT per message sent, not a renewed subscription: an open
subscription is not re-sent (neither the SDK, ccxt nor Nautilus do). The first ``snapshot``
event marks the stream ready.

Guessed where the sources are silent: statuses outside the REST adapter's table
(``EDIT_QUEUED`` open; anything else is unreadable); ``order_type`` other than limit/market is
reported as neither; the order's quantity is ``cumulative_quantity + leaves_quantity`` while it
is open or filled (not after a cancel, whose ``leaves_quantity`` may be 0); the fee is in the
product's quote currency; error messages may carry a ``reason`` (as Coinbase Exchange's do).
``sequence_num`` is not checked for gaps: one adapter serves every account's connection and
``parse_frame`` has no per-connection state to keep the last number in.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from schemas.vault import Credentials
from services.venues.coinbase.rest import STATE, cdp_jwt
from services.venues.coinbase.ws import rfc3339_ns
from services.venues.privatews import OrderUpdate, PrivateEvent, PrivateStream, StreamReady
from services.venues.wsbase import KeepAlive, VenueNotice

USER_URL = "wss://advanced-trade-ws-user.coinbase.com"
CHANNELS = ("user", "heartbeats")
"""Subscribed in this order, one message each ("one channel per subscription message")."""
STATES = {**STATE, "EDIT_QUEUED": "open"}
_JWT = re.compile(r"eyJ[\w-]*\.[\w-]*\.[\w-]*")


class Frame(msgspec.Struct):
    """Every message: a channel's (``channel``, ``sequence_num``, ``events``) or an error."""

    channel: str = ""
    type: str = ""
    message: str = ""
    reason: str = ""
    timestamp: str = ""
    sequence_num: int = 0
    events: msgspec.Raw = msgspec.Raw(b"[]")


class UserOrder(msgspec.Struct):
    """The fields of a ``user`` event's order exbus reads (decimal strings)."""

    order_id: str
    status: str
    client_order_id: str = ""
    product_id: str = ""
    order_side: str = ""
    order_type: str = ""
    cumulative_quantity: str = "0"
    leaves_quantity: str = ""
    avg_price: str = ""
    total_fees: str = ""
    limit_price: str = ""
    creation_time: str = ""


class UserEvent(msgspec.Struct):
    type: str
    orders: list[UserOrder] | None = None


_frame = msgspec.json.Decoder(Frame)
_user_events = msgspec.json.Decoder(list[UserEvent])


def subscribe_message(channel: str, creds: Credentials, now_ms: int) -> str:
    """A subscribe to ``channel`` (every product) with its own WebSocket JWT."""
    return msgspec.json.encode({"type": "subscribe", "channel": channel, "jwt": cdp_jwt(creds, now_ms, None)}).decode()


class CoinbasePrivateStream(PrivateStream):
    venue = "coinbase"
    url = USER_URL
    keepalive = KeepAlive(interval_s=20.0)  # WebSocket pings; the heartbeats channel keeps the subscription open
    ready_on_connect = False

    def subscribe_messages(self, creds: Credentials, token: Any, now_ms: int, nonce: int | None = None) -> list[str | bytes]:
        return [subscribe_message(channel, creds, now_ms) for channel in CHANNELS]

    def parse_frame(self, data: str | bytes, ts_recv: int) -> list[PrivateEvent]:
        frame = _frame.decode(data)
        if frame.type == "error":
            return [VenueNotice("error", _text(frame))]
        if frame.channel != "user":
            return []  # heartbeats, subscriptions, and what Coinbase may add ("clients are expected to ignore" it)
        ts_event = _time(frame.timestamp) if frame.timestamp else ts_recv
        out: list[PrivateEvent] = []
        for event in _user_events.decode(frame.events):
            out.extend(order_update(order, ts_event) for order in event.orders or ())
            if event.type == "snapshot":
                out.append(StreamReady())
        return out


def _text(frame: Frame) -> str:
    """The venue's error, without any JWT it might echo."""
    text = f"{frame.message}: {frame.reason}" if frame.reason else frame.message or "error"
    return "coinbase: " + _JWT.sub("<jwt>", text)[:200]


def _time(text: str) -> int:
    try:
        return rfc3339_ns(text)
    except ValueError:
        raise ValueError(f"not a time: {text[:40]!r}") from None


def _dec(text: str) -> Decimal | None:
    if text == "":
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a number: {text[:20]!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"not a quantity: {text[:20]!r}")
    return value


def order_update(order: UserOrder, ts_event: int) -> OrderUpdate:
    """One ``user`` order as an OrderUpdate with the order's totals (no fill of its own)."""
    state = STATES.get(order.status)
    side = order.order_side.lower()
    if state is None or side not in ("buy", "sell"):
        raise ValueError(f"coinbase order with status {order.status[:20]!r}, side {order.order_side[:10]!r}")
    filled = _dec(order.cumulative_quantity) or Decimal(0)
    if state == "open" and filled > 0:
        state = "partially_filled"
    leaves = _dec(order.leaves_quantity)
    kind = order.order_type.lower()
    order_type = kind if kind in ("limit", "market") else None
    quantity = filled + leaves if leaves is not None and order_type == "limit" and state in (
        "open", "partially_filled", "filled") else None
    quote = order.product_id.partition("-")[2] or None
    return OrderUpdate(
        venue="coinbase", client_order_id=order.client_order_id or None, venue_order_id=order.order_id,
        state=state, filled_quantity=filled, ts_event=ts_event, symbol=order.product_id or None,  # type: ignore[arg-type]
        side=side, order_type=order_type, price=_dec(order.limit_price) or None, quantity=quantity,  # type: ignore[arg-type]
        average_price=(_dec(order.avg_price) or None) if filled else None,
        fee_asset=quote if filled else None, fees_total=_dec(order.total_fees),
    )


ADAPTER = CoinbasePrivateStream
