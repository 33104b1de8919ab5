"""OKX v5 private WebSocket (``orders`` channel): what differs from the shared private stream.

Sources: okx.com/docs-v5/en "Connect" (``wss://ws.okx.com:8443/ws/v5/private``; without a
message for 30 s the connection is closed: send the text ``ping``, expect ``pong``), "Login"
(``{"op":"login","args":[{apiKey, passphrase, timestamp, sign}]}``, timestamp in Unix
seconds, sign = Base64(HMAC-SHA256(secret, timestamp + "GET" + "/users/self/verify")), the
request expires 30 s after its timestamp; answered ``{"event":"login","code":"0"}`` or
``{"event":"error","code":"60009","msg":"Login failed."}``), "Subscribe", "Notification"
(``{"event":"notice","code":"64008"}`` 60 s before a service upgrade closes the connection),
"Connection count limit" (``channel-conn-count``; ``channel-conn-count-error`` after the
subscribe ack means the subscription was terminated), "Error Code / WebSocket / Public"
(60004-60033), and "WS / Order channel" (push ``{"arg":{"channel":"orders",...},"data":[...]}``:
``state`` live/partially_filled/filled/canceled/mmp_canceled, ``accFillSz`` cumulative,
``fillSz``/``fillPx``/``tradeId``/``fillTime``/``fillFee``/``fillFeeCcy``/``execType`` for
the fill of this update, ``fillFee`` negative = charged; "if a tradeId is present, it means a
fill"; a market order may say filled with ``fillSz`` 0). ccxt pro okx.py reads it the same
way (text ping/pong, ``event`` login/subscribe/error, ``arg.channel`` orders).

The login is sent on connecting; the subscribe follows its ack (a private subscribe before
login is refused with 60011), and the subscribe ack marks the stream ready. Client order ids
exbus hashed for OKX (``services.venues.okx.rest.venue_client_id``) cannot be mapped back:
their updates carry client_order_id None and are matched by ``ordId``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from schemas.vault import Credentials
from services.venues.okx.rest import STATE
from services.venues.privatews import OrderUpdate, PrivateEvent, PrivateStream, Send, StreamReady
from services.venues.signing import hmac_b64
from services.venues.wsbase import KeepAlive, VenueNotice

MS = 1_000_000
PRIVATE_PATH = "/ws/v5/private"
VERIFY_PATH = "/users/self/verify"
ORDERS_ARG = {"channel": "orders", "instType": "SPOT"}
SUBSCRIBE = msgspec.json.encode({"op": "subscribe", "args": [ORDERS_ARG]}).decode()
HASHED_ID = re.compile(r"^x[0-9a-f]{31}$")
"""The form ``venue_client_id`` gives an exbus id that does not fit clOrdId."""


class Arg(msgspec.Struct):
    channel: str = ""
    instType: str = ""
    instId: str = ""


class Frame(msgspec.Struct):
    """Every JSON frame: an event (login, subscribe, error, notice...) or a push (arg + data)."""

    event: str = ""
    code: str = ""
    msg: str = ""
    channel: str = ""
    arg: Arg | None = None
    data: msgspec.Raw = msgspec.Raw(b"")


class OrderRow(msgspec.Struct):
    """The fields of an ``orders`` push row exbus reads (strings; "" for none)."""

    instId: str
    ordId: str
    state: str
    side: str
    ordType: str
    clOrdId: str = ""
    px: str = ""
    sz: str = ""
    tgtCcy: str = ""
    accFillSz: str = "0"
    avgPx: str = ""
    fillSz: str = ""
    fillPx: str = ""
    tradeId: str = ""
    fillTime: str = ""
    fillFee: str = ""
    fillFeeCcy: str = ""
    uTime: str = ""


_frame = msgspec.json.Decoder(Frame)
_rows = msgspec.json.Decoder(list[OrderRow])


def login_message(creds: Credentials, now_ms: int) -> str:
    """The signed ``login`` op ("Login": Unix seconds; GET /users/self/verify, no body)."""
    ts = str(now_ms // 1000)
    args = {"apiKey": creds.api_key, "passphrase": creds.passphrase or "", "timestamp": ts,
            "sign": hmac_b64(creds.secret, ts + "GET" + VERIFY_PATH)}
    return msgspec.json.encode({"op": "login", "args": [args]}).decode()


class OkxPrivateStream(PrivateStream):
    venue = "okx"
    url = "wss://ws.okx.com:8443" + PRIVATE_PATH
    keepalive = KeepAlive(interval_s=20.0, message="ping")  # closed after 30 s without traffic
    ready_on_connect = False

    def subscribe_messages(self, creds: Credentials, token: Any, now_ms: int, nonce: int | None = None) -> list[str | bytes]:
        return [login_message(creds, now_ms)]

    def parse_frame(self, data: str | bytes, ts_recv: int) -> list[PrivateEvent]:
        if data in ("pong", b"pong"):
            return []
        frame = _frame.decode(data)
        if frame.event:
            return _event(frame)
        if frame.arg is None or frame.arg.channel != "orders" or not len(frame.data):
            return []
        return [order_update(row, ts_recv) for row in _rows.decode(frame.data)]


def _event(frame: Frame) -> list[PrivateEvent]:
    if frame.event == "login":
        return [Send(SUBSCRIBE)] if frame.code in ("", "0") else [VenueNotice("error", _text(frame))]
    if frame.event == "subscribe":
        return [StreamReady()] if frame.arg is not None and frame.arg.channel == "orders" else []
    if frame.event in ("error", "channel-conn-count-error"):
        return [VenueNotice("error", _text(frame))]
    if frame.event == "notice":
        return [VenueNotice("reconnect", _text(frame))]
    return []  # unsubscribe, channel-conn-count


def _text(frame: Frame) -> str:
    """The venue's code and message, without the request OKX may echo (60012 "Invalid
    request: {...}" repeats a login's apiKey, passphrase and sign)."""
    msg = frame.msg.split("{", 1)[0].rstrip(": ")
    if frame.event == "channel-conn-count-error":
        msg = f"{frame.channel} connection count limit reached"
    code = frame.code or frame.event
    return f"okx {code}: {msg}" if msg else f"okx {code}"


def _dec(text: str) -> Decimal | None:
    if text == "":
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a number: {text[:20]!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a number: {text[:20]!r}")
    return value


def order_update(row: OrderRow, ts_recv: int) -> OrderUpdate:
    """One ``orders`` row as an OrderUpdate; the fill fields only when the row names a trade.
    A market order's ``sz`` is in the quote currency when ``tgtCcy`` says so (the default
    for spot market buys), so it is not the order's quantity then."""
    state = STATE.get(row.state)
    if state is None or row.side not in ("buy", "sell"):
        raise ValueError(f"okx order row with state {row.state[:20]!r}, side {row.side[:10]!r}")
    filled = _dec(row.accFillSz) or Decimal(0)
    fill = row.tradeId != "" and (_dec(row.fillSz) or 0) > 0
    fee = _dec(row.fillFee) if fill else None
    market = row.ordType == "market"
    by_quote = market and (row.tgtCcy == "quote_ccy" or (row.tgtCcy == "" and row.side == "buy"))
    ts_ms = (row.fillTime if fill and row.fillTime else row.uTime) or ""
    client_id = row.clOrdId or None
    return OrderUpdate(
        venue="okx", client_order_id=None if client_id and HASHED_ID.match(client_id) else client_id,
        venue_order_id=row.ordId, state=state, filled_quantity=filled,  # type: ignore[arg-type]
        ts_event=int(ts_ms) * MS if ts_ms else ts_recv, symbol=row.instId, side=row.side,  # type: ignore[arg-type]
        order_type="market" if market else "limit", price=_dec(row.px),
        quantity=None if by_quote else _dec(row.sz), average_price=_dec(row.avgPx) if filled else None,
        last_fill_price=_dec(row.fillPx) if fill else None, last_fill_quantity=_dec(row.fillSz) if fill else None,
        fee=(Decimal(0) - fee) if fee is not None else None, fee_asset=(row.fillFeeCcy or None) if fill else None,
        trade_id=row.tradeId if fill else None,
    )


ADAPTER = OkxPrivateStream
