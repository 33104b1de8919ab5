"""Bithumb private WebSocket v2 (``myOrder``): what differs from Upbit's, which it is modeled on.

Sources (apidocs.bithumb.com, read 2026-12): "기본 정보" (Private v2 endpoint
``wss://ws-api.bithumb.com/websocket/v2/private``, streams myOrder and myAsset; 10
connection requests per second per IP, beyond that 429), "요청 방법 및 포맷" (the JWT of
"인증 헤더 만들기", ``access_key``/``nonce``/``timestamp``, as ``Authorization: Bearer`` in the
handshake; request ``[{"ticket"}, {"type": "myOrder", "codes"}]``), "연결 관리" (idle timeout
about 120 s; PING frames, or the text PING answered ``{"status":"UP"}``), "내 주문 및 체결
(MyOrder)" (Private v2: ``order_id``, ``client_order_id`` (omitted when the order has
none), ``side`` buy/sell, ``order_type`` limit/price/market/best, ``state``
wait/trade/done/cancel, ``order_price``/``order_quantity`` (0 for market orders),
``order_amount``, ``remaining_quantity``, ``executed_quantity``, ``executed_amount``; on a
fill ``trade_id``, ``trade_price``, ``trade_quantity``, ``trade_amount``; ``paid_fee``,
``trade_timestamp``, ``order_timestamp``, ``timestamp``; "fields without a value are
omitted"), "Private v2 마이그레이션 가이드" (v1 -> v2 names; v1 ``/websocket/v1/private`` ends
2026-10-30) and the 2026-06-30 changelog (``time_in_force``, ``best``). ccxt pro 4.5.90
bithumb.py still connects to ``/websocket/v1/private`` and reads v1 names, so it is no
reference for v2.

The message has no fee of the fill, only ``paid_fee``, the order's total so far (in KRW, the
quote currency): it is reported as ``fees_total`` and the fill's fee is its increase. It
has no average price either: it is ``executed_amount / executed_quantity``.

Guessed where the docs are silent: refused handshakes are answered like REST requests (HTTP
401 ``{"error": {"name", "message"}}``); request errors in a frame use Upbit's shape;
``{"status":"UP"}`` after the first PING comes again every 10 s ("연결 관리") and each is
read as "ready" (harmless: the subscription holds).
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from services.venues.privatews import OrderUpdate, positive
from services.venues.upbitlike_private import MS, UpbitLikePrivateStream, order_state, quote_of, symbol_of

PRIVATE_PATH = "/websocket/v2/private"


class MyOrderV2(msgspec.Struct):
    """A Private v2 ``myOrder`` message (DEFAULT format) as exbus reads it; Double numbers
    read as exact decimals from their text."""

    code: str
    order_id: str
    side: str
    order_type: str
    state: str
    timestamp: int
    client_order_id: str | None = None
    order_price: Decimal | None = None
    order_quantity: Decimal | None = None
    remaining_quantity: Decimal | None = None
    executed_quantity: Decimal = Decimal(0)
    executed_amount: Decimal | None = None
    paid_fee: Decimal | None = None
    trade_id: str | None = None
    trade_price: Decimal | None = None
    trade_quantity: Decimal | None = None
    trade_timestamp: int | None = None


_my_order = msgspec.json.Decoder(MyOrderV2)


class BithumbPrivateStream(UpbitLikePrivateStream):
    venue = "bithumb"
    path = PRIVATE_PATH
    url = "wss://ws-api.bithumb.com" + PRIVATE_PATH

    def order_update(self, data: str | bytes) -> OrderUpdate:
        return order_update(_my_order.decode(data))


def order_update(m: MyOrderV2) -> OrderUpdate:
    """One v2 myOrder message as an OrderUpdate: a ``trade`` with a trade id is one fill."""
    if m.side not in ("buy", "sell"):
        raise ValueError(f"bithumb myOrder with side {m.side[:10]!r}")
    fill = m.state == "trade" and bool(m.trade_id) and (m.trade_quantity or 0) > 0
    executed = m.executed_quantity
    amount = positive(m.executed_amount)
    limit = m.order_type == "limit"
    return OrderUpdate(
        venue="bithumb", client_order_id=m.client_order_id or None, venue_order_id=m.order_id,
        state=order_state(m.state, executed, m.remaining_quantity, m.order_type), filled_quantity=executed,
        ts_event=(m.trade_timestamp if fill and m.trade_timestamp else m.timestamp) * MS, symbol=symbol_of(m.code),
        side=m.side,  # type: ignore[arg-type]
        order_type="limit" if limit else "market",
        price=positive(m.order_price) if limit else None, quantity=positive(m.order_quantity),
        average_price=amount / executed if amount is not None and executed > 0 else None,
        last_fill_price=m.trade_price if fill else None, last_fill_quantity=m.trade_quantity if fill else None,
        fee_asset=quote_of(m.code) if fill else None, trade_id=m.trade_id if fill else None,
        fees_total=m.paid_fee,
    )


ADAPTER = BithumbPrivateStream
