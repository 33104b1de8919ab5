"""Coinone private WebSocket (``MYORDER``): what differs from the shared private stream.

Sources: docs.coinone.co.kr "Private 웹소켓" (reference/private-websocket-1:
``wss://stream.coinone.co.kr/v1/private``; authentication in the handshake with the
headers ``X-COINONE-PAYLOAD`` = base64(JSON {access_token, nonce: UUID v4, timestamp in
ms}) and ``X-COINONE-SIGNATURE`` = hex HMAC-SHA512(secret, payload), the Private API's
recipe; at most 20 connections per account, the 21st closed with code 4290; a failed
authentication closes the connection with code 4280; request_type / channel / format in
capitals; the server closes a connection 30 minutes after the last PING; connections may be
closed when the service is updated; requests ``{request_type, channel, topic, format}``; on
connecting ``{"response_type":"CONNECTED","data":{"session_id":...}}``; errors
``{"response_type":"ERROR","error_code":160012,"message":"Invalid Topic"}`` with 160010
Invalid Request, 160011 Invalid Type : {field}, 160012 Invalid Topic), "커넥션 관리 (PING)"
(``{"request_type":"PING"}`` answered ``{"response_type":"PONG"}``) and "내 주문 변동
(MYORDER)" (request, SUBSCRIBED answer and the stream examples for wait, watch, trade,
trade_done, cancel and cancel_post_only; ``executed_qty`` is "체결수량 또는 취소수량": the
fill's quantity, or the quantity a cancel removed; there is no cumulative quantity, average
price or fee currency). ccxt pro coinone.py reads only the public channels (no
``watchOrders``); its ping (``{"request_type":"PING"}``, keepAlive 20 s) and PONG handling
are the same.

Mapping: each ``trade`` / ``trade_done`` message carries one fill (``cumulative=False``,
``fills_follow`` False, the fee of that fill, ``executed_fee`` >= 0 = charged); the docs'
``trade_done`` example repeats the trade id of the ``trade`` before it, so whichever of the
two arrives, the fill counts once by its trade id. ``cancel`` is never a fill. Client order
ids: the REST adapter sends exbus's id unchanged as ``user_order_id`` (it refuses ids outside
Coinone's a-z 0-9 ``-_.``), so ``user_order_id`` is the client order id.

Guessed, where the docs are silent: the subscription names no topic, for every market (as
the MYASSET example does; "전체 거래 종목 또는 특정 거래 종목"); the fee is in the quote
currency (completed_orders' ``fee_currency`` example is "KRW"); timestamps are seconds in
the docs' examples (1761017305) but milliseconds elsewhere in the API, so values below 10^11
are read as seconds, others as milliseconds; a ``trade`` that leaves nothing to fill
(``remain_qty`` 0, or ``remain_amount`` 0 for a market buy) is the order's last fill; the
PING is sent every 20 s (ccxt's keepAlive), far inside the 30 minutes, as private streams
are silent without orders and a third-party probe saw idle sockets closed after 60 s.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from schemas.vault import Credentials
from services.venues.privatews import OrderUpdate, PrivateEvent, PrivateStream, StreamReady, WsOpen
from services.venues.wsbase import KeepAlive, VenueNotice

PRIVATE_PATH = "/v1/private"
SUBSCRIBE = msgspec.json.encode({"request_type": "SUBSCRIBE", "channel": "MYORDER"}).decode()
PING = msgspec.json.encode({"request_type": "PING"}).decode()
SECONDS_BELOW = 10**11
"""Epoch values below this are seconds (10^11 s is the year 5138; 10^11 ms is 1973)."""
STATE = {"wait": "open", "watch": "open", "not_triggered": "open", "trade": "partially_filled",
         "trade_done": "filled", "cancel": "canceled", "cancel_post_only": "canceled"}


class Frame(msgspec.Struct):
    """Every frame (DEFAULT format): a reply (CONNECTED, SUBSCRIBED, PONG, ERROR) or DATA."""

    response_type: str = ""
    channel: str = ""
    data: msgspec.Raw = msgspec.Raw(b"")
    error_code: int | str | None = None
    message: str = ""


class MyOrder(msgspec.Struct):
    """The ``data`` of a MYORDER message as exbus reads it (numbers are strings: exact)."""

    quote_currency: str
    target_currency: str
    order_id: str
    type: str
    status: str
    side: str
    timestamp: int
    order_price: Decimal | None = None
    order_qty: Decimal | None = None
    order_amount: Decimal | None = None
    trade_id: str | None = None
    executed_price: Decimal | None = None
    executed_qty: Decimal | None = None
    executed_fee: Decimal | None = None
    remain_qty: Decimal | None = None
    remain_amount: Decimal | None = None
    user_order_id: str | None = None
    executed_timestamp: int | None = None


_frame = msgspec.json.Decoder(Frame)
_my_order = msgspec.json.Decoder(MyOrder)


class CoinonePrivateStream(PrivateStream):
    venue = "coinone"
    url = "wss://stream.coinone.co.kr" + PRIVATE_PATH
    keepalive = KeepAlive(interval_s=20.0, message=PING)
    ready_on_connect = False

    def connection(self, token: Any, creds: Credentials, now_ms: int) -> WsOpen:
        """The REST adapter's signed payload (access_token, nonce) plus ``timestamp`` in ms."""
        signed = self.rest.sign("POST", PRIVATE_PATH, [("timestamp", now_ms)], creds, now_ms)
        return WsOpen(self.url, {name: signed.headers[name] for name in ("X-COINONE-PAYLOAD", "X-COINONE-SIGNATURE")})

    def subscribe_messages(self, creds: Credentials, token: Any, now_ms: int, nonce: int | None = None) -> list[str | bytes]:
        return [SUBSCRIBE]

    def parse_frame(self, data: str | bytes, ts_recv: int) -> list[PrivateEvent]:
        frame = _frame.decode(data)
        kind = frame.response_type
        if kind == "DATA":
            if frame.channel != "MYORDER" or not len(frame.data):
                return []  # MYASSET
            return [order_update(_my_order.decode(frame.data))]
        if kind == "SUBSCRIBED":
            return [StreamReady()] if frame.channel == "MYORDER" else []
        if kind == "ERROR":
            return [VenueNotice("error", _text(frame))]
        return []  # CONNECTED, PONG, UNSUBSCRIBED, and SHORT-format frames (never asked for)


def _text(frame: Frame) -> str:
    """The venue's code and message, cut before anything a request could have put in it."""
    message = frame.message.split("{", 1)[0].strip()[:100]
    code = frame.error_code if frame.error_code is not None else "error"
    return f"coinone {code}: {message}" if message else f"coinone {code}"


def _finite(value: Decimal | None, name: str) -> Decimal | None:
    if value is not None and not value.is_finite():
        raise ValueError(f"coinone MYORDER {name} is not a number")
    return value


def ts_ns(value: int) -> int:
    """A Coinone epoch time (seconds in the MYORDER examples, else milliseconds) in ns."""
    return value * 1_000_000_000 if value < SECONDS_BELOW else value * 1_000_000


def order_update(m: MyOrder) -> OrderUpdate:
    """One MYORDER message as an OrderUpdate: one fill (``trade`` / ``trade_done`` with a
    trade id) or a change of state, never the order's total."""
    state = STATE.get(m.status)
    if state is None or m.side not in ("BID", "ASK") or m.type not in ("LIMIT", "MARKET"):
        raise ValueError(f"coinone MYORDER status {m.status[:20]!r}, side {m.side[:10]!r}, type {m.type[:10]!r}")
    for name in ("order_price", "order_qty", "order_amount", "executed_price", "executed_qty", "executed_fee",
                 "remain_qty", "remain_amount"):
        _finite(getattr(m, name), name)
    by_amount = m.type == "MARKET" and m.side == "BID"  # a market buy is sized in the quote currency
    fill = m.status in ("trade", "trade_done") and bool(m.trade_id) and (m.executed_qty or 0) > 0
    if m.status == "trade":
        remaining = m.remain_amount if by_amount else m.remain_qty
        state = "filled" if remaining is not None and remaining == 0 else "partially_filled"
    when = m.executed_timestamp if fill and m.executed_timestamp else m.timestamp
    return OrderUpdate(
        venue="coinone", client_order_id=m.user_order_id or None, venue_order_id=m.order_id,
        state=state, filled_quantity=Decimal(0), cumulative=False, ts_event=ts_ns(when),  # type: ignore[arg-type]
        symbol=f"{m.target_currency.upper()}-{m.quote_currency.upper()}", side="buy" if m.side == "BID" else "sell",
        order_type="market" if m.type == "MARKET" else "limit",
        price=m.order_price if m.type == "LIMIT" else None, quantity=None if by_amount else m.order_qty,
        last_fill_price=m.executed_price if fill else None, last_fill_quantity=m.executed_qty if fill else None,
        fee=m.executed_fee if fill else None, fee_asset=m.quote_currency.upper() if fill else None,
        trade_id=m.trade_id if fill else None,
    )


ADAPTER = CoinonePrivateStream
