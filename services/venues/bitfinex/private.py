"""Bitfinex ws/2 authenticated account channel (chanId 0): what differs from the shared private stream.

Sources: docs.bitfinex.com "Authenticated Channels" (docs/ws-auth: ``wss://api.bitfinex.com/ws/2``,
5 connections per 15 s; ``{"event":"auth", apiKey, authSig, authPayload, authNonce, dms, filter}``,
authSig = hex HMAC-SHA384(secret, authPayload), authPayload = "AUTH" + nonce, the nonce "ever
increasing" and at most 9007199254740991; account info always on chanId 0; channel filters
``trading`` = orders, positions, trades), "General" (docs/ws-general: ``{"event":"ping","cid"}``
answered ``{"event":"pong","ts","cid"}``; info messages: platform status 1/0, codes 20051
"stop/restart websocket server (please reconnect)", 20060 maintenance starts, 20061 maintenance
ends, resubscribe; ``{"event":"error","msg","code"}``), "Orders" (reference/ws-auth-orders:
``[0,"os",[ORDER,...]]`` after auth, ``[0,"on"|"ou"|"oc",ORDER]``, ORDER = ``[ID, GID, CID, SYMBOL,
MTS_CREATE, MTS_UPDATE, AMOUNT, AMOUNT_ORIG, ORDER_TYPE, TYPE_PREV, MTS_TIF, _, FLAGS, STATUS, _, _,
PRICE, PRICE_AVG, ...]``, AMOUNT the remaining amount, signed by side; STATUS ACTIVE, "EXECUTED @
PRICE(AMOUNT)", "PARTIALLY FILLED @ ...", CANCELED, "CANCELED was: PARTIALLY FILLED @ ...", RSN_DUST,
RSN_PAUSE), "Trades" (reference/ws-auth-trades: ``[0,"te"|"tu",[ID, SYMBOL, MTS_CREATE, ORDER_ID,
EXEC_AMOUNT, EXEC_PRICE, ORDER_TYPE, ORDER_PRICE, MAKER, FEE, FEE_CURRENCY, CID]]``, FEE null on
``te``, negative = charged, example ``-0.061668 USD``), the "Abbreviation Glossary" codes (10100 auth
failed, 10111 payload, 10112 signature, 10114 nonce). The auth answers are ``{"event":"auth",
"status":"OK","chanId":0,"userId",...}`` and ``{"event":"auth","status":"FAILED","chanId":0,
"code":10100,"msg":"apikey: invalid"}`` (bitfinexcom/bitfinex-api-node ws tests). ccxt pro
bitfinex.py reads the same channel (the auth nonce "shares the increasing-nonce requirement (and
the counter) with REST requests signed by the same key"; ``tu`` names the fee; ``on``/``ou``/``oc``
rows; heartbeats ``[0,"hb"]`` skipped; it takes index 1, GID, for the client id: CID is index 2).

How exbus reads it:
- the auth nonce is the key's shared REST nonce (``nonce`` argument), so REST and stream never
  reuse one; ``filter: ["trading"]`` keeps wallets, funding and balances off the connection; no
  ``dms`` (a dropped stream must not cancel exbus's orders);
- the stream is ready on the ``os`` snapshot, which Bitfinex sends after a successful auth: from
  then on every change is pushed. Its rows are not turned into updates: a snapshot's totals name no
  trades, and the poll that follows readiness reconciles each order with its trade history;
- ``on``/``ou``/``oc`` are the order's totals (filled = |AMOUNT_ORIG| - |AMOUNT|) and say
  ``fills_follow``: the fill itself, with its trade id and fee, is the ``tu`` that follows (``te``
  carries no fee and is only noted). A ``tu`` is a fill of its own (``cumulative=False``) except the
  last one of an order whose ``oc`` said EXECUTED while no other ``te`` of it awaits its ``tu``: that
  one carries the order's final total and state, so the fill that completes an order is one event;
- client order ids: exbus sends the 45-bit hash of its id as ``cid``
  (services.venues.bitfinex.rest.venue_cid), which cannot be reversed, so updates carry
  client_order_id None and are matched by the venue order id, as the REST adapter's open orders are.

Guessed where the sources are silent: the order of ``te``, order row and ``tu`` (the adapter does
not depend on it, but only ``te`` -> ``oc`` -> ``tu`` makes the completing fill one event); an
``oc`` whose STATUS is neither EXECUTED nor CANCELED (INSUFFICIENT BALANCE, RSN_DUST) is filled when
nothing remains, else canceled; platform status 0 and 20060 are only logged (trading is paused),
20051 and 20061 end the session; the heartbeat interval (not stated: pings every 20 s).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import msgspec

from schemas.vault import Credentials
from services.venues.bitfinex.rest import _state
from services.venues.bitfinex.ws import INFO_MAINTENANCE_END, INFO_RECONNECT, exbus_asset, exbus_symbol
from services.venues.privatews import OrderUpdate, PrivateEvent, PrivateStream, StreamReady, positive
from services.venues.signing import hmac_hex
from services.venues.wsbase import KeepAlive, VenueNotice

MS = 1_000_000
INFO_MAINTENANCE_START = 20060
FILTER = ["trading"]  # "orders, positions, trades"
PING = msgspec.json.encode({"event": "ping"}).decode()
REMEMBERED = 10_000
"""Orders whose pending trades / closing row the adapter keeps per connection (oldest dropped)."""
_SECRET_LIKE = re.compile(r"[A-Za-z0-9_\-]{24,}")


class Platform(msgspec.Struct):
    status: int | None = None


class Event(msgspec.Struct):
    """Every object frame: auth, info, error, pong, conf, ..."""

    event: str
    status: str = ""
    code: int | None = None
    msg: str = ""
    platform: Platform | None = None


class OrderRow(msgspec.Struct, array_like=True):
    """The leading fields of an order array (later ones, ROUTING, META..., are not read)."""

    id: int
    gid: int | None
    cid: int | None
    symbol: str
    mts_create: int | None
    mts_update: int | None
    amount: Decimal
    amount_orig: Decimal
    order_type: str
    type_prev: str | None
    mts_tif: int | None
    placeholder_11: Any
    flags: int | None
    status: str
    placeholder_14: Any
    placeholder_15: Any
    price: Decimal | None
    price_avg: Decimal | None


class TradeRow(msgspec.Struct, array_like=True):
    """``te``/``tu``: FEE and FEE_CURRENCY are null on ``te``."""

    id: int
    symbol: str
    mts_create: int
    order_id: int
    exec_amount: Decimal
    exec_price: Decimal
    order_type: str | None = None
    order_price: Decimal | None = None
    maker: int | None = None
    fee: Decimal | None = None
    fee_currency: str | None = None
    cid: int | None = None


_event = msgspec.json.Decoder(Event)
_parts = msgspec.json.Decoder(list[msgspec.Raw])
_int = msgspec.json.Decoder(int)
_tag = msgspec.json.Decoder(str)
_order = msgspec.json.Decoder(OrderRow)
_trade = msgspec.json.Decoder(TradeRow)
_list = msgspec.json.Decoder(list[msgspec.Raw])


def auth_message(creds: Credentials, nonce: int) -> str:
    """The signed ``auth`` event (docs/ws-auth: authPayload "AUTH" + nonce, hex HMAC-SHA384)."""
    payload = f"AUTH{nonce}"
    return msgspec.json.encode({"event": "auth", "apiKey": creds.api_key, "authSig": hmac_hex(creds.secret, payload, "sha384"),
                                "authPayload": payload, "authNonce": nonce, "filter": FILTER}).decode()


class BitfinexPrivateStream(PrivateStream):
    venue = "bitfinex"
    url = "wss://api.bitfinex.com/ws/2"
    keepalive = KeepAlive(interval_s=20.0, message=PING)
    ready_on_connect = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reset()

    def _reset(self) -> None:
        self._awaiting: dict[int, set[int]] = {}
        """order id -> trades seen in ``te`` whose ``tu`` has not come yet."""
        self._closing: dict[int, OrderUpdate] = {}
        """order id -> the update of its ``oc`` row, when it said EXECUTED."""

    def subscribe_messages(self, creds: Credentials, token: Any, now_ms: int, nonce: int | None = None) -> list[str | bytes]:
        self._reset()  # a new connection: what the last one was waiting for will not come on this one
        return [auth_message(creds, nonce if nonce is not None else now_ms * 1000)]

    def parse_frame(self, data: str | bytes, ts_recv: int) -> list[PrivateEvent]:
        if data.lstrip()[:1] in ("{", b"{"):
            return _on_event(_event.decode(data))
        parts = _parts.decode(data)
        if len(parts) < 2:
            raise ValueError("bitfinex frame without a message type")
        if _int.decode(parts[0]) != 0:
            return []  # a public channel's frame: none is subscribed here
        kind = _tag.decode(parts[1])
        if kind in ("on", "ou", "oc", "os", "te", "tu") and len(parts) < 3:
            raise ValueError(f"bitfinex {kind} without its data")
        if kind in ("on", "ou", "oc"):
            return [self._order_update(kind, _order.decode(parts[2]), ts_recv)]
        if kind == "te":
            trade = _trade.decode(parts[2])
            _remember(self._awaiting, trade.order_id, set()).add(trade.id)
            return []
        if kind == "tu":
            return [self._trade_update(_trade.decode(parts[2]))]
        if kind == "os":
            _list.decode(parts[2])  # an array of orders (not read: see the module docstring)
            return [StreamReady()]
        return []  # hb, n, ws, wu, bu, ps, miu, fos, ...

    def _order_update(self, kind: str, row: OrderRow, ts_recv: int) -> OrderUpdate:
        update = order_update(kind, row, ts_recv)
        if kind == "oc" and update.state == "filled":
            _remember(self._closing, row.id, update)
        return update

    def _trade_update(self, trade: TradeRow) -> OrderUpdate:
        waiting = self._awaiting.get(trade.order_id)
        if waiting is not None:
            waiting.discard(trade.id)
            if not waiting:
                del self._awaiting[trade.order_id]
        closing = self._closing.get(trade.order_id)
        final = closing if closing is not None and trade.order_id not in self._awaiting else None
        if final is not None:
            del self._closing[trade.order_id]
        return trade_update(trade, final)


def _remember(table: dict[int, Any], key: int, value: Any) -> Any:
    """``table[key]`` (set to ``value`` when new), keeping at most REMEMBERED keys."""
    if key not in table:
        if len(table) >= REMEMBERED:
            del table[next(iter(table))]
        table[key] = value
    return table[key]


def _on_event(e: Event) -> list[PrivateEvent]:
    if e.event == "auth":
        return [] if e.status == "OK" else [VenueNotice("error", _text(e))]  # ready on the os that follows
    if e.event == "error":
        return [VenueNotice("error", _text(e))]
    if e.event == "info":
        if e.code in (INFO_RECONNECT, INFO_MAINTENANCE_END):
            return [VenueNotice("reconnect", _text(e))]
        if e.code == INFO_MAINTENANCE_START or (e.platform is not None and e.platform.status == 0):
            return [VenueNotice("info", _text(e) if e.code else "bitfinex: platform in maintenance")]
    return []  # pong, conf, info (version), subscribed...


def _text(e: Event) -> str:
    """The venue's code and message, without anything that may be a key or signature."""
    msg = _SECRET_LIKE.sub("...", e.msg.split("{", 1)[0]).strip(" :")[:200]
    code = e.code if e.code is not None else e.status or e.event
    return f"bitfinex {code}: {msg}" if msg else f"bitfinex {code}"


def _finite(value: Decimal, what: str) -> Decimal:
    if not value.is_finite():
        raise ValueError(f"bitfinex {what} is not a number")
    return value


def order_update(kind: str, row: OrderRow, ts_recv: int) -> OrderUpdate:
    """An ``on``/``ou``/``oc`` row as the order's totals (its fills follow in ``tu``)."""
    orig, remaining = abs(_finite(row.amount_orig, "amount_orig")), abs(_finite(row.amount, "amount"))
    filled = orig - remaining
    if orig == 0 or filled < 0:
        raise ValueError(f"bitfinex order {row.id} with amount {row.amount}, amount_orig {row.amount_orig}")
    state = _state(row.status, filled)
    if kind == "oc" and state not in ("filled", "canceled"):  # closed: INSUFFICIENT BALANCE, RSN_DUST...
        state = "filled" if remaining == 0 else "canceled"
    return OrderUpdate(
        venue="bitfinex", client_order_id=None, venue_order_id=str(row.id), state=state,  # type: ignore[arg-type]
        filled_quantity=filled, ts_event=row.mts_update * MS if row.mts_update else ts_recv,
        symbol=exbus_symbol(row.symbol), side="buy" if row.amount_orig > 0 else "sell",
        order_type="market" if "MARKET" in row.order_type else "limit", price=positive(row.price), quantity=orig,
        average_price=positive(row.price_avg) if filled else None, fills_follow=True,
    )


def trade_update(t: TradeRow, final: OrderUpdate | None = None) -> OrderUpdate:
    """A ``tu`` as one fill (fee >= 0: charged); with ``final`` (the order's EXECUTED ``oc``),
    the order's last fill: its total and state come with it."""
    qty = abs(_finite(t.exec_amount, "exec_amount"))
    if qty == 0 or _finite(t.exec_price, "exec_price") <= 0:
        raise ValueError(f"bitfinex trade {t.id} with amount {t.exec_amount}, price {t.exec_price}")
    fee = Decimal(0) - _finite(t.fee, "fee") if t.fee is not None else None
    return OrderUpdate(
        venue="bitfinex", client_order_id=None, venue_order_id=str(t.order_id),
        state=final.state if final else "partially_filled",
        filled_quantity=final.filled_quantity if final else qty, ts_event=t.mts_create * MS,
        symbol=exbus_symbol(t.symbol), side="buy" if t.exec_amount > 0 else "sell",
        order_type="market" if "MARKET" in (t.order_type or "") else "limit",
        price=final.price if final else (positive(t.order_price) if "MARKET" not in (t.order_type or "") else None),
        quantity=final.quantity if final else None, average_price=final.average_price if final else None,
        last_fill_price=t.exec_price, last_fill_quantity=qty, fee=fee,
        fee_asset=exbus_asset(t.fee_currency) if t.fee_currency else None, trade_id=str(t.id),
        cumulative=final is not None,
    )


ADAPTER = BitfinexPrivateStream
