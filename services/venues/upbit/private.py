"""Upbit private WebSocket (``myOrder``): what differs from the shared private stream.

Sources: docs.upbit.com "WebSocket 사용 및 에러 안내" (``wss://api.upbit.com/websocket/v1/private``
needs ``Authorization: Bearer <JWT>`` made as for REST; errors as {"error": {"name",
"message"}}; text ``PING`` is answered {"status": "UP"}) and "내 주문 및 체결 (MyOrder)"
(request [{"ticket"}, {"type": "myOrder"}, {"format"}], no codes = every market; fields
``uuid``, ``identifier``, ``state`` wait/watch/trade/done/cancel/prevented, ``price`` and
``volume`` of the fill when state is trade, ``executed_volume`` cumulative,
``remaining_volume``, ``avg_price``, ``trade_fee``, ``trade_uuid``, ``trade_timestamp``;
numbers are JSON numbers, read here as exact decimals from their text).

Upbit does not acknowledge a subscription; the ``PING`` sent right after it is answered
only once the subscription before it was processed, so its answer marks the stream ready.
A fill arrives as ``trade``; the order's end follows as ``done`` or ``cancel``.
"""

from __future__ import annotations

import uuid
from typing import Any
from decimal import Decimal

import msgspec

from schemas.vault import Credentials
from services.venues import symbols
from services.venues.privatews import OrderUpdate, PrivateEvent, PrivateStream, StreamReady, WsOpen
from services.venues.wsbase import VenueNotice

MS = 1_000_000
PRIVATE_PATH = "/websocket/v1/private"
PING = "PING"


class _Head(msgspec.Struct):
    type: str = ""
    status: str = ""
    error: dict | None = None


class MyOrder(msgspec.Struct):
    """A ``myOrder`` message (DEFAULT format) as exbus reads it."""

    code: str
    uuid: str
    ask_bid: str
    order_type: str
    state: str
    timestamp: int
    price: Decimal | None = None
    volume: Decimal | None = None
    remaining_volume: Decimal | None = None
    executed_volume: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    trade_fee: Decimal | None = None
    trade_uuid: str | None = None
    trade_timestamp: int | None = None
    identifier: str | None = None


_head = msgspec.json.Decoder(_Head)
_my_order = msgspec.json.Decoder(MyOrder)  # typed: JSON numbers become exact Decimals


class UpbitPrivateStream(PrivateStream):
    venue = "upbit"
    url = "wss://api.upbit.com" + PRIVATE_PATH
    ready_on_connect = False

    def connection(self, token: Any, creds: Credentials, now_ms: int) -> WsOpen:
        """The REST adapter's JWT (no parameters, so no query hash) as the bearer token."""
        signed = self.rest.sign("GET", PRIVATE_PATH, [], creds, now_ms, str(uuid.uuid4()))
        return WsOpen(self.url, {"Authorization": signed.headers["Authorization"]})

    def subscribe_messages(self, creds: Credentials, token: Any, now_ms: int, nonce: int | None = None) -> list[str | bytes]:
        request = [{"ticket": str(uuid.uuid4())}, {"type": "myOrder"}, {"format": "DEFAULT"}]
        return [msgspec.json.encode(request).decode(), PING]

    def parse_frame(self, data: str | bytes, ts_recv: int) -> list[PrivateEvent]:
        head = _head.decode(data)
        if head.error is not None:
            return [VenueNotice("error", f"upbit {head.error.get('name')}: {head.error.get('message')}")]
        if head.status == "UP":
            return [StreamReady()]
        if head.type != "myOrder":
            return []
        return [order_update(_my_order.decode(data))]


def order_update(m: MyOrder) -> OrderUpdate:
    """One myOrder message as an OrderUpdate. A ``trade`` that leaves nothing to fill is the
    fill (its ``done`` follows); the fee is in the market's quote currency (KRW-BTC: KRW)."""
    fill = m.state == "trade"
    quantity = m.executed_volume + m.remaining_volume if m.remaining_volume is not None else None
    if m.state == "done":
        state = "filled"
    elif m.state == "cancel":
        state = "canceled"
    elif m.state == "prevented" and m.remaining_volume == 0:
        state = "canceled"
    elif fill and m.remaining_volume == 0 and m.order_type == "limit":
        state = "filled"
    else:
        state = "partially_filled" if m.executed_volume > 0 else "open"
    try:
        symbol: str | None = symbols.from_quote_first(m.code)
    except ValueError:
        symbol = None
    return OrderUpdate(
        venue="upbit", client_order_id=m.identifier or None, venue_order_id=m.uuid, state=state,  # type: ignore[arg-type]
        filled_quantity=m.executed_volume,
        ts_event=(m.trade_timestamp if fill and m.trade_timestamp else m.timestamp) * MS, symbol=symbol,
        side="buy" if m.ask_bid == "BID" else "sell", order_type="limit" if m.order_type == "limit" else "market",
        price=m.price if not fill and m.order_type == "limit" else None,
        quantity=quantity if m.order_type != "price" else None, average_price=m.avg_price or None,
        last_fill_price=m.price if fill else None, last_fill_quantity=m.volume if fill else None,
        fee=m.trade_fee if fill else None, fee_asset=m.code.partition("-")[0] if fill else None,
        trade_id=m.trade_uuid if fill else None,
    )


ADAPTER = UpbitPrivateStream
