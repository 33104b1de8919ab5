"""Upbit private WebSocket (``myOrder``): what differs from the shared private stream.

Sources: docs.upbit.com "WebSocket 사용 및 에러 안내" (``wss://api.upbit.com/websocket/v1/private``
needs ``Authorization: Bearer <JWT>`` made as for REST; errors as {"error": {"name",
"message"}}; text ``PING`` is answered {"status": "UP"}) and "내 주문 및 체결 (MyOrder)"
(request [{"ticket"}, {"type": "myOrder"}, {"format"}], no codes = every market; fields
``uuid``, ``identifier``, ``state`` wait/watch/trade/done/cancel/prevented, ``price`` and
``volume`` of the fill when state is trade, ``executed_volume`` cumulative,
``remaining_volume``, ``avg_price``, ``trade_fee``, ``trade_uuid``, ``trade_timestamp``;
numbers are JSON numbers, read here as exact decimals from their text).

What Upbit and Bithumb share (handshake JWT, request, PING/{"status":"UP"} marking the
stream ready, errors) is services.venues.upbitlike_private. A fill arrives as ``trade``
with its own fee (``trade_fee``); the order's end follows as ``done`` or ``cancel``.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from services.venues.privatews import OrderUpdate
from services.venues.upbitlike_private import MS, UpbitLikePrivateStream, order_state, quote_of, symbol_of

PRIVATE_PATH = "/websocket/v1/private"


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


_my_order = msgspec.json.Decoder(MyOrder)  # typed: JSON numbers become exact Decimals


class UpbitPrivateStream(UpbitLikePrivateStream):
    venue = "upbit"
    path = PRIVATE_PATH
    url = "wss://api.upbit.com" + PRIVATE_PATH

    def order_update(self, data: str | bytes) -> OrderUpdate:
        return order_update(_my_order.decode(data))


def order_update(m: MyOrder) -> OrderUpdate:
    """One myOrder message as an OrderUpdate; the fee is in the market's quote currency."""
    fill = m.state == "trade"
    quantity = m.executed_volume + m.remaining_volume if m.remaining_volume is not None else None
    return OrderUpdate(
        venue="upbit", client_order_id=m.identifier or None, venue_order_id=m.uuid,
        state=order_state(m.state, m.executed_volume, m.remaining_volume, m.order_type),
        filled_quantity=m.executed_volume,
        ts_event=(m.trade_timestamp if fill and m.trade_timestamp else m.timestamp) * MS, symbol=symbol_of(m.code),
        side="buy" if m.ask_bid == "BID" else "sell", order_type="limit" if m.order_type == "limit" else "market",
        price=m.price if not fill and m.order_type == "limit" else None,
        quantity=quantity if m.order_type != "price" else None, average_price=m.avg_price or None,
        last_fill_price=m.price if fill else None, last_fill_quantity=m.volume if fill else None,
        fee=m.trade_fee if fill else None, fee_asset=quote_of(m.code) if fill else None,
        trade_id=m.trade_uuid if fill else None,
    )


ADAPTER = UpbitPrivateStream
