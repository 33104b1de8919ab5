"""Korbit private WebSocket (``myOrder`` + ``myTrade``): what differs from the shared private stream.

Sources: docs.korbit.co.kr (Korean reference, which prevails over the English one):
"웹소켓 연결하기" (``wss://ws-api.korbit.co.kr/v2/private``; under load the connection may be
closed but messages are not dropped), "인증하기" (the handshake is signed like REST:
``X-KAPI-KEY`` header, ``timestamp`` and ``signature`` in the query; a refusal is an HTTP
error whose JSON ``error.message`` names the code: EXCEED_TIME_WINDOW, KEY_NOT_FOUND),
"요청 보내기" (requests are always an array of ``{"method","type","symbols"}``), "응답 메시지"
(control messages carry ``status``: ``{"requestId":1,"status":"success"}``,
``{"requestId":2,"status":"fail","code":"INVALID_SYMBOL","message":...}``,
``{"status":"error","message":...}``; a subscribe is acknowledged only when it carries a
``requestId``), "내 주문 (MyOrder)" (``{"channelType":"myOrder","symbol","timestamp",
"order":{"orders":[{orderId (number), status pending/unfilled/partiallyFilled/filled/canceled/
partiallyFilledCanceled/expired, filledQty, filledAmt, avgPrice, clientOrderId, ...}]}}``;
``symbols`` required) and "내 체결 (MyTrade)" (``{"channelType":"myTrade","trade":{"trades":
[{tradeId, orderId, side, price, qty, fee, feeCurrency, filledAt, isTaker}]}}``, no
clientOrderId). The official korbit-cli (``internal/stream``) subscribes the same way, a
``requestId`` on every item, symbols on every channel but myAsset, WebSocket pings.

``myOrder`` carries the order's totals but no fee; the fees come in ``myTrade``, so order
updates say ``fills_follow`` and a trade is a fill of its own (``cumulative=False``) that
names the order only by its venue id, except the trade that accounts for what the order's
latest ``myOrder`` added: it carries that order's totals and state (:class:`Progress`), so
the last fill of an order and its ``filled`` are one update. Korbit documents no
keep-alive: WebSocket pings.
Both subscriptions carry a ``requestId``; the answer to the last one (requests are handled
in order) marks the stream ready, a ``fail`` or ``error`` ends the session.

Korbit wants the symbols listed (the docs mark ``symbols`` required, the CLI says so); the
stream subscribes every trading pair of ``GET /v2/currencyPairs`` (the REST adapter's
``instruments``, made before each connection), so orders in any market are covered.
A refused handshake is an HTTP error (the executor reconnects with backoff; the code is in
the body's ``error.message``); a new connection signs a new timestamp, which is all the
re-authentication Korbit has. Numbers are JSON strings, read as exact Decimals.

ccxt 4.5.90 (ccxt and ccxt pro) has no Korbit exchange: nothing to compare with there. The korbit-cli
(``internal/stream/conn.go``) reads control messages by ``status`` and data by
``channelType`` as here; unlike it (it drops a refused subscription and streams the rest),
a ``fail`` ends the session, since exbus needs both channels.

Guessed: which of ``myOrder`` and ``myTrade`` comes first for a fill (either works: the
order's totals wait for its fills, a trade of an order not known yet waits for the order;
with the trade first, the order's last fill and its ``filled`` are two updates); that
``lastFilledAt`` is the ``filledAt`` of the order's latest trade (a trade after it is not
matched to that total);
``ts_event`` is the message's ``timestamp`` (server time) for orders and ``filledAt`` for
trades; ``expired`` ("주문 접수 실패") maps to expired as in the REST adapter; a ``best``
(BBO) order has no order type here; control texts may name the request, never a key (auth
is in the handshake), and are cut to 200 characters.
"""

from __future__ import annotations

from collections import OrderedDict
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import msgspec

from schemas.vault import Credentials
from services.venues.korbit.rest import STATE, from_pair
from services.venues.privatews import OrderUpdate, PrivateEvent, PrivateStream, StreamReady, WsOpen, positive
from services.venues.rules import MarketRules
from services.venues.wsbase import VenueNotice

MS = 1_000_000
PRIVATE_PATH = "/v2/private"
CHANNELS = ("myOrder", "myTrade")
"""Subscribed in this order; ``requestId`` = position + 1."""
READY_REQUEST = len(CHANNELS)
MAX_TEXT = 200
SIDES = ("buy", "sell")


class _Head(msgspec.Struct):
    status: str | None = None
    requestId: int | None = None
    code: str | None = None
    message: str | None = None
    channelType: str | None = None


class KorbitOrder(msgspec.Struct):
    """One order of a ``myOrder`` message (numbers are JSON strings, read as Decimals)."""

    orderId: int
    status: str
    side: str
    orderType: str
    filledQty: Decimal
    createdAt: int
    filledAmt: Decimal | None = None
    price: Decimal | None = None
    qty: Decimal | None = None
    amt: Decimal | None = None
    avgPrice: Decimal | None = None
    lastFilledAt: int | None = None
    clientOrderId: str | None = None

    def __post_init__(self) -> None:
        _finite(self.filledQty, self.filledAmt, self.price, self.qty, self.amt, self.avgPrice)


class KorbitTrade(msgspec.Struct):
    """One trade of a ``myTrade`` message."""

    tradeId: int
    orderId: int
    side: str
    price: Decimal
    qty: Decimal
    fee: Decimal
    feeCurrency: str
    filledAt: int
    isTaker: bool | None = None

    def __post_init__(self) -> None:
        _finite(self.price, self.qty, self.fee)
        if self.side not in SIDES or self.qty <= 0:
            raise ValueError(f"a trade with side {self.side[:10]!r}, qty {self.qty}")


def _finite(*values: Decimal | None) -> None:
    """Korbit writes numbers as strings: "NaN" or "Infinity" would decode as Decimals."""
    if any(v is not None and not v.is_finite() for v in values):
        raise ValueError("not a finite number")


class _Orders(msgspec.Struct):
    orders: list[KorbitOrder]


class _Trades(msgspec.Struct):
    trades: list[KorbitTrade]


class MyOrder(msgspec.Struct):
    symbol: str
    timestamp: int
    order: _Orders


class MyTrade(msgspec.Struct):
    symbol: str
    timestamp: int
    trade: _Trades


_head = msgspec.json.Decoder(_Head)
_my_order = msgspec.json.Decoder(MyOrder)
_my_trade = msgspec.json.Decoder(MyTrade)


def trading_pairs(token: Any) -> list[str]:
    """Korbit names of the trading pairs in the ``instruments`` result (exbus symbol -> rules)."""
    if not isinstance(token, dict):
        raise ValueError("korbit's private stream needs the pair list (open_op instruments)")
    pairs = sorted(r.venue_symbol for r in token.values() if isinstance(r, MarketRules) and r.trading and r.venue_symbol)
    if not pairs:
        raise ValueError("korbit lists no trading pair to subscribe")
    return pairs


class KorbitPrivateStream(PrivateStream):
    venue = "korbit"
    url = "wss://ws-api.korbit.co.kr" + PRIVATE_PATH
    ready_on_connect = False
    open_op = "instruments"

    def __init__(self, rest: Any, url: str | None = None) -> None:
        super().__init__(rest, url)
        self.progress = Progress()
        """What the stream has reported of each order (its last fill names the order filled)."""

    def connection(self, token: Any, creds: Credentials, now_ms: int) -> WsOpen:
        """The REST adapter's signature of ``timestamp`` alone (the docs' example) in the query."""
        signed = self.rest.sign("GET", PRIVATE_PATH, [], creds, now_ms)
        return WsOpen(f"{self.url}?{urlsplit(signed.url).query}", {"X-KAPI-KEY": signed.headers["X-KAPI-KEY"]})

    def subscribe_messages(self, creds: Credentials, token: Any, now_ms: int, nonce: int | None = None) -> list[str | bytes]:
        pairs = trading_pairs(token)
        request = [{"requestId": n, "method": "subscribe", "type": channel, "symbols": pairs}
                   for n, channel in enumerate(CHANNELS, 1)]
        return [msgspec.json.encode(request).decode()]

    def parse_frame(self, data: str | bytes, ts_recv: int) -> list[PrivateEvent]:
        head = _head.decode(data)
        if head.status is not None:
            if head.status == "success":
                return [StreamReady()] if head.requestId == READY_REQUEST else []
            text = " ".join(s for s in (head.code, head.message) if s)[:MAX_TEXT] or head.status[:MAX_TEXT]
            return [VenueNotice("error", f"korbit {head.status[:MAX_TEXT]}: {text}")]
        if head.channelType == "myOrder":
            m = _my_order.decode(data)
            updates = [order_update(o, m.symbol, m.timestamp) for o in m.order.orders]
            for o in m.order.orders:
                self.progress.order(o)
            return updates  # type: ignore[return-value]
        if head.channelType == "myTrade":
            t = _my_trade.decode(data)
            return [trade_update(x, t.symbol, self.progress.trade(x)) for x in t.trade.trades]
        return []  # myAsset, anything new


class Progress:
    """Per venue order id: the latest ``myOrder`` of the order, and how much of the quantity it
    added (since the order's previous ``myOrder``) its trades have not accounted for yet.

    A ``myTrade`` trade names neither the order's state nor its total. The trade that
    accounts for the last of what a ``myOrder`` added is that order's fill: it is reported
    with the order's totals and state (``filled`` for the last fill of a filled order, so
    the fill and the end of the order are one event). Where what a total added is not known
    (the first ``myOrder`` of the order this stream sees already has fills), the trade at
    its ``lastFilledAt`` is taken for it. Any other trade (one of several behind a total, a
    trade after the latest total) is a fill of its own, ``partially_filled``, and the
    order's state comes with its total. Never wrong about quantities: a total only moves an
    order to what Korbit reported; fills it hides lose only their trade ids."""

    MAX_ORDERS = 10_000

    def __init__(self) -> None:
        self._orders: OrderedDict[int, tuple[KorbitOrder, Decimal | None, set[int]]] = OrderedDict()
        """order id -> (latest myOrder, quantity it added not yet matched by trades (None: unknown), trade ids)."""

    def order(self, o: KorbitOrder) -> None:
        seen = self._orders.pop(o.orderId, None)
        if seen is None:
            self._orders[o.orderId] = (o, Decimal(0) if o.filledQty == 0 else None, set())
        else:
            last, unmatched, ids = seen
            if o.filledQty > last.filledQty:
                self._orders[o.orderId] = (o, o.filledQty - last.filledQty, ids)
            else:  # the same total in a later state (a cancel), or an older total: keep what is known
                self._orders[o.orderId] = (o if o.filledQty == last.filledQty else last, unmatched, ids)
        latest, unmatched, _ = self._orders[o.orderId]
        if unmatched == 0 and STATE.get(latest.status) in ("filled", "canceled", "expired"):
            del self._orders[o.orderId]  # ended, and no trade of it to come
        while len(self._orders) > self.MAX_ORDERS:
            self._orders.popitem(last=False)

    def trade(self, t: KorbitTrade) -> KorbitOrder | None:
        """The myOrder whose totals ``t`` completes, else None."""
        seen = self._orders.get(t.orderId)
        if seen is None:
            return None
        last, unmatched, ids = seen
        if t.tradeId in ids:
            return None
        ids.add(t.tradeId)
        if last.lastFilledAt is None or t.filledAt > last.lastFilledAt:
            return None  # a fill after the latest total (its myOrder is still to come)
        if unmatched is None:  # what the total added is not known: the fill at its lastFilledAt made it
            matched = t.filledAt == last.lastFilledAt
            left: Decimal | None = Decimal(0) if matched else None
        else:
            left = unmatched - t.qty
            matched = left == 0
        if matched and STATE.get(last.status) in ("filled", "canceled", "expired"):
            del self._orders[t.orderId]
        else:
            self._orders[t.orderId] = (last, left if left is not None and left >= 0 else None, ids)
        return last if matched else None


def order_update(o: KorbitOrder, pair: str, ts_ms: int) -> OrderUpdate:
    """One order of a myOrder message: the order's totals; its fills (and fees) follow in myTrade."""
    state = STATE.get("open" if o.status == "unfilled" else o.status)  # REST says open, WS unfilled
    if state is None or o.side not in SIDES:
        raise ValueError(f"korbit order with status {o.status[:30]!r}, side {o.side[:10]!r}")
    return OrderUpdate(
        venue="korbit", client_order_id=o.clientOrderId or None, venue_order_id=str(o.orderId), state=state,  # type: ignore[arg-type]
        filled_quantity=o.filledQty, ts_event=ts_ms * MS, symbol=from_pair(pair),
        side=o.side,  # type: ignore[arg-type]
        order_type="market" if o.orderType == "market" else "limit" if o.orderType == "limit" else None,
        price=o.price, quantity=o.qty, average_price=positive(o.avgPrice) if o.filledQty > 0 else None,
        fills_follow=True,
    )


def trade_update(t: KorbitTrade, pair: str, order: KorbitOrder | None = None) -> OrderUpdate:
    """One trade of a myTrade message: a fill on its own named by the order's venue id, or,
    when it completes ``order`` (its latest myOrder, see :class:`Progress`), that order's
    totals and state with this fill. Its ``fee`` is what was charged (docs example: 50 krw)."""
    fill = {"ts_event": t.filledAt * MS, "symbol": from_pair(pair), "side": t.side, "last_fill_price": t.price,
            "last_fill_quantity": t.qty, "fee": t.fee, "fee_asset": t.feeCurrency.upper(), "trade_id": str(t.tradeId)}
    if order is not None and order.orderId == t.orderId:
        return msgspec.structs.replace(order_update(order, pair, t.filledAt), fills_follow=False, **fill)
    return OrderUpdate(venue="korbit", client_order_id=None, venue_order_id=str(t.orderId), state="partially_filled",
                       filled_quantity=Decimal(0), cumulative=False, **fill)


ADAPTER = KorbitPrivateStream
