"""Kraken spot WebSocket v2 ``executions`` channel: what differs from the shared private stream.

Sources: docs.kraken.com/exchange/api-reference/spot-websocket-v2/executions (subscribe
``{"method":"subscribe","params":{"channel":"executions","token",...}}``: ``snap_orders``
default true, ``snap_trades`` default false, ``order_status`` default true = every status
transition; ack ``{"method":"subscribe","result":{"channel":"executions",...},"success":
true}``; snapshot/update ``{"channel":"executions","type":"snapshot"|"update","data":[...],
"sequence":n}``; fields ``exec_type``, ``order_status``, ``order_id``, ``cl_ord_id``,
``order_userref``, ``symbol`` (BTC/USD), ``side``, ``order_type``, ``order_qty``,
``limit_price``, ``cum_qty``, ``cum_cost``, ``avg_price``, ``timestamp`` (RFC 3339), and on
``exec_type: trade`` ``exec_id``, ``trade_id``, ``last_qty``, ``last_price``, ``cost``,
``liquidity_ind``, ``fees[{asset, qty}]``, ``fee_usd_equiv``); docs.kraken.com
exchange/api-reference/unified-ws/executions ("a trade event can report order_status:
partially_filled even when that trade fills the entire order. A separate exec_type: filled
update reports completion"); spot-websocket-v2/ping (``{"method":"ping","req_id":n}`` ->
``{"method":"pong",...}``); guides/websockets/authentication and REST GetWebSocketsToken
(token from ``POST /0/private/GetWebSocketsToken``, to be used within 15 minutes; it does
not expire while the subscription made with it lasts: a fresh one per connection);
guides/general/errors (``ESession:Invalid session``, ``EAccount:Invalid permissions``).
ccxt pro 4.5.90 kraken.py reads the same channel (``authenticate`` -> the token,
``watch_private`` subscribe, ``parse_ws_trade``: trade id = ``exec_id``, fee =
``fees[0]``; ``handle_error_message``: v2 errors are ``{"error": "...", "method": ...,
"success": false}``); nautilus_trader crates/adapters/kraken/src/websocket/spot_v2
(every field but ``exec_type``/``order_id``/``timestamp`` optional).

Trade ids are ``exec_id``: the trade's txid, the key REST TradesHistory lists the fill under
(services.venues.kraken.rest.parse_trade_history), so a fill seen both ways is one fill.
Client order ids: exbus sends ``cl_ord_id`` (services.venues.kraken.rest.cl_ord_id): the
exbus id itself when Kraken accepts it, else its UUID5, which cannot be mapped back; a
UUID5 ``cl_ord_id`` is reported as client_order_id None and matched by ``order_id``.

Guessed where the docs are silent or unclear: a trade event without ``cum_qty`` (the docs'
trade example has none) reports only its fill (``cumulative=False``), one with it is
cumulative; an event without ``order_status`` takes its state from ``exec_type``; ``fees``
``qty`` is positive when charged (a negative one a rebate), and of several entries in one
asset their sum is the fee (different assets: the first, as ccxt reads it); a message
without ``timestamp`` (the docs' trade example) is stamped with its arrival time; the
``status`` channel and ``heartbeat`` are not order news; any ``success: false`` answer to
our requests ends the session (we send only the subscribe and pings).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import msgspec

from schemas.vault import Credentials
from services.venues.coinbase.ws import rfc3339_ns
from services.venues.kraken.rest import WsToken, exbus_asset
from services.venues.privatews import OrderState, OrderUpdate, PrivateEvent, PrivateStream, StreamReady, positive
from services.venues.wsbase import KeepAlive, VenueNotice

PRIVATE_PATH = "/v2"
CHANNEL = "executions"
PING = msgspec.json.encode({"method": "ping"}).decode()
STATE: dict[str, OrderState] = {
    "pending_new": "open", "new": "open", "triggered": "open", "partially_filled": "partially_filled",
    "filled": "filled", "canceled": "canceled", "expired": "expired",
}
"""``order_status`` -> exbus state."""
STATE_OF_EXEC: dict[str, OrderState] = {
    "pending_new": "open", "new": "open", "trade": "partially_filled", "filled": "filled",
    "canceled": "canceled", "expired": "expired",
}
"""``exec_type`` -> exbus state, for an event without ``order_status``."""


class Fee(msgspec.Struct):
    asset: str = ""
    qty: Decimal = Decimal(0)


class Execution(msgspec.Struct):
    """The fields of an ``executions`` entry exbus reads (numbers exact)."""

    order_id: str
    exec_type: str = ""
    order_status: str = ""
    cl_ord_id: str | None = None
    symbol: str = ""
    side: str = ""
    order_type: str = ""
    order_qty: Decimal | None = None
    limit_price: Decimal | None = None
    cum_qty: Decimal | None = None
    avg_price: Decimal | None = None
    timestamp: str = ""
    exec_id: str = ""
    last_qty: Decimal | None = None
    last_price: Decimal | None = None
    fees: list[Fee] = []


class Frame(msgspec.Struct):
    """Every JSON frame: a method's answer (subscribe, pong...) or a channel message."""

    method: str = ""
    success: bool | None = None
    error: str = ""
    result: Any = None
    channel: str = ""
    type: str = ""
    data: msgspec.Raw = msgspec.Raw(b"")


_frame = msgspec.json.Decoder(Frame, float_hook=Decimal)
_executions = msgspec.json.Decoder(list[Execution])


def subscribe_message(token: str) -> str:
    """The ``executions`` subscribe: every status transition, no snapshot. What changed while
    no stream listened is the executor's poll's to reconcile once the stream is ready (the
    same for every venue; the last 50 trades of ``snap_trades`` would not be enough), and an
    order snapshot would let the stream follow orders without the executor noticing (see
    the report on services.executor.order_streams)."""
    params = {"channel": CHANNEL, "token": token, "snap_orders": False, "snap_trades": False, "order_status": True}
    return msgspec.json.encode({"method": "subscribe", "params": params, "req_id": 1}).decode()


class KrakenPrivateStream(PrivateStream):
    venue = "kraken"
    url = "wss://ws-auth.kraken.com" + PRIVATE_PATH
    keepalive = KeepAlive(interval_s=20.0, message=PING)
    open_op = "ws_token"
    ready_on_connect = False

    def subscribe_messages(self, creds: Credentials, token: Any, now_ms: int, nonce: int | None = None) -> list[str | bytes]:
        text = token.token if isinstance(token, WsToken) else token
        if not isinstance(text, str) or not text:
            raise ValueError("kraken's private stream needs a WebSocket token (open_op ws_token)")
        return [subscribe_message(text)]

    def parse_frame(self, data: str | bytes, ts_recv: int) -> list[PrivateEvent]:
        frame = _frame.decode(data)
        if frame.method:
            return _answer(frame)
        if frame.channel != CHANNEL or not len(frame.data):
            return []  # status, heartbeat, other channels
        return [order_update(e, ts_recv) for e in _executions.decode(frame.data)]


def _answer(frame: Frame) -> list[PrivateEvent]:
    if frame.success is False or frame.error:
        return [VenueNotice("error", _text(frame))]
    if frame.method == "subscribe" and isinstance(frame.result, dict) and frame.result.get("channel") == CHANNEL:
        return [StreamReady()]
    return []  # pong, unsubscribe, other channels' acks


def _text(frame: Frame) -> str:
    """The venue's error, without any request it might echo (a token is a credential)."""
    message = frame.error.split("{", 1)[0].strip().rstrip(":") or "refused"
    return f"kraken {frame.method or 'error'}: {message[:200]}"


def client_id(cl_ord_id: str | None) -> str | None:
    """The exbus client order id of a ``cl_ord_id``; None when it is the UUID5 exbus sent
    for an id Kraken would refuse (not reversible: matched by order id instead)."""
    if not cl_ord_id:
        return None
    try:
        hashed = uuid.UUID(cl_ord_id).version == 5
    except ValueError:
        hashed = False
    return None if hashed else cl_ord_id


def _symbol(text: str) -> str | None:
    base, slash, quote = text.partition("/")
    return f"{exbus_asset(base)}-{exbus_asset(quote)}" if slash and base and quote else None


def _fee(fees: list[Fee]) -> tuple[Decimal | None, str | None]:
    if not fees:
        return None, None
    asset = fees[0].asset
    if all(f.asset == asset for f in fees):
        return sum((f.qty for f in fees), Decimal(0)), exbus_asset(asset) if asset else None
    return fees[0].qty, exbus_asset(asset) if asset else None


def order_update(e: Execution, ts_recv: int) -> OrderUpdate:
    """One ``executions`` entry as an OrderUpdate; the fill fields only on a trade."""
    state = STATE.get(e.order_status) if e.order_status else STATE_OF_EXEC.get(e.exec_type, "open")
    if state is None or e.side not in ("", "buy", "sell"):
        raise ValueError(f"kraken execution with order_status {e.order_status[:20]!r}, side {e.side[:10]!r}")
    for value in (e.order_qty, e.limit_price, e.cum_qty, e.avg_price, e.last_qty, e.last_price):
        if value is not None and not value.is_finite():
            raise ValueError("kraken execution with a number that is not finite")
    fill = e.exec_type == "trade" and e.exec_id != "" and (e.last_qty or 0) > 0
    cumulative = e.cum_qty is not None
    filled = e.cum_qty if e.cum_qty is not None else (e.last_qty if fill else Decimal(0))
    if state == "partially_filled" and cumulative and e.order_qty is not None and filled >= e.order_qty:
        state = "filled"  # a trade completing the order may still say partially_filled [unified-ws]
    if state == "partially_filled" and not fill and not filled:
        state = "open"
    fee, fee_asset = _fee(e.fees) if fill else (None, None)
    return OrderUpdate(
        venue="kraken", client_order_id=client_id(e.cl_ord_id), venue_order_id=e.order_id, state=state,
        filled_quantity=filled, ts_event=rfc3339_ns(e.timestamp) if e.timestamp else ts_recv,
        symbol=_symbol(e.symbol), side=e.side or None,  # type: ignore[arg-type]
        order_type=e.order_type if e.order_type in ("limit", "market") else None,  # type: ignore[arg-type]
        price=positive(e.limit_price), quantity=positive(e.order_qty), average_price=positive(e.avg_price),
        last_fill_price=e.last_price if fill else None, last_fill_quantity=e.last_qty if fill else None,
        fee=fee, fee_asset=fee_asset, trade_id=e.exec_id if fill else None, cumulative=cumulative,
    )


ADAPTER = KrakenPrivateStream
