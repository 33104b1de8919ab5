"""Binance spot user data stream over the WebSocket API: what differs from the shared
private stream.

Sources (binance/binance-spot-api-docs@a5e0bc3): CHANGELOG.md 2026-01-21 (the listenKey
endpoints ``/api/v3/userDataStream`` and ``userDataStream.start/ping/stop`` are gone since
2026-02-20); web-socket-api.md "General API Information" (``wss://ws-api.binance.com:443/ws-api/v3``,
a ping frame every 20 s to be ponged within a minute, connections last 24 h, ``serverShutdown``),
"Request format" / "Response format" (``{"id", "status", "result" | "error", "rateLimits"}``;
any ``id``, reusable), "SIGNED request example (HMAC)" (the params but ``signature`` sorted by
name as ``name=value&...``, HMAC-SHA256 with the secret key, hex) and "User Data Stream
requests" (``userDataStream.subscribe.signature`` with ``apiKey``, ``timestamp``,
``signature``, optional ``recvWindow``: ``result.subscriptionId``); user-data-stream.md
(events as ``{"subscriptionId", "event"}``; ``executionReport``: ``c`` the client order id,
``C`` the original one on a cancel, ``X`` the order status, ``z`` cumulative filled, ``l``/``L``
last fill quantity/price, ``n``/``N`` commission, ``t`` trade id, ``T`` transaction time,
``Z`` cumulative quote; ``eventStreamTerminated`` when a subscription ends).

The subscription is signed with the key's HMAC secret (the same key as REST; RSA and
Ed25519 keys, which Binance also takes, are not used by exbus). Its answer marks the
stream ready; an error answer (a bad key, signature or timestamp) ends the connection.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from schemas.vault import Credentials
from services.venues import symbols
from services.venues.binance.rest import ORDER_STATE, RECV_WINDOW_MS
from services.venues.privatews import OrderUpdate, PrivateEvent, PrivateStream, StreamReady, positive
from services.venues.signing import hmac_hex
from services.venues.wsbase import KeepAlive, VenueNotice

MS = 1_000_000
SUBSCRIBE = "userDataStream.subscribe.signature"
REQUEST_ID = "exbus-user-data"
"""The id of our subscribe request (ids are the client's and may repeat: one per connection)."""
ENDS = ("eventStreamTerminated", "serverShutdown")


class ExecutionReport(msgspec.Struct, rename={
    "event_time": "E", "symbol": "s", "client_order_id": "c", "side": "S", "order_type": "o", "quantity": "q",
    "price": "p", "original_client_order_id": "C", "execution_type": "x", "status": "X", "order_id": "i",
    "last_quantity": "l", "filled_quantity": "z", "last_price": "L", "commission": "n", "commission_asset": "N",
    "transaction_time": "T", "trade_id": "t", "cumulative_quote": "Z",
}):
    """The fields of ``executionReport`` exbus reads (user-data-stream.md, Order Update)."""

    event_time: int
    symbol: str
    client_order_id: str
    side: str
    order_type: str
    quantity: Decimal
    price: Decimal
    execution_type: str
    status: str
    order_id: int
    last_quantity: Decimal
    filled_quantity: Decimal
    last_price: Decimal
    commission: Decimal
    transaction_time: int
    trade_id: int
    original_client_order_id: str = ""
    commission_asset: str | None = None
    cumulative_quote: Decimal = Decimal(0)


class _Error(msgspec.Struct):
    code: int
    msg: str = ""


class _Frame(msgspec.Struct):
    """A WebSocket API frame: a response (``id``, ``status``, ``result`` or ``error``) or an
    event (``event``, with ``subscriptionId`` except on connection events)."""

    id: Any = None
    status: int | None = None
    result: Any = None
    error: _Error | None = None
    event: msgspec.Raw = msgspec.Raw()
    """The event's JSON, read once its kind is known (empty: a response)."""


class _Kind(msgspec.Struct):
    e: str = ""


_frame = msgspec.json.Decoder(_Frame)
_kind = msgspec.json.Decoder(_Kind)
_report = msgspec.json.Decoder(ExecutionReport)  # typed: numbers and strings become exact Decimals


def subscribe_payload(params: dict[str, Any]) -> str:
    """What Binance signs: every parameter but ``signature``, sorted by name, as
    ``name=value`` joined by ``&`` (web-socket-api.md, SIGNED request example (HMAC), step 1)."""
    return "&".join(f"{name}={params[name]}" for name in sorted(params) if name != "signature")


class BinanceUserStream(PrivateStream):
    venue = "binance"
    url = "wss://ws-api.binance.com:443/ws-api/v3"
    keepalive = KeepAlive(interval_s=20.0)  # the server pings every 20 s; our pings only detect a dead link
    max_session_s = 24 * 3600.0
    ready_on_connect = False

    def subscribe_messages(self, creds: Credentials, token: Any, now_ms: int, nonce: int | None = None) -> list[str | bytes]:
        """The signed ``userDataStream.subscribe.signature`` request (recvWindow as REST's)."""
        params: dict[str, Any] = {"apiKey": creds.api_key, "recvWindow": RECV_WINDOW_MS, "timestamp": now_ms}
        params["signature"] = hmac_hex(creds.secret, subscribe_payload(params))
        return [msgspec.json.encode({"id": REQUEST_ID, "method": SUBSCRIBE, "params": params}).decode()]

    def parse_frame(self, data: str | bytes, ts_recv: int) -> list[PrivateEvent]:
        frame = _frame.decode(data)
        if frame.event:
            kind = _kind.decode(frame.event).e
            if kind == "executionReport":
                return [order_update(_report.decode(frame.event))]
            if kind in ENDS:
                return [VenueNotice("reconnect", f"binance user data stream ended: {kind}")]
            return []  # balances, list status, external locks
        if frame.error is not None or (frame.status is not None and frame.status >= 400):
            # an answer to our request, or (id null) the session's key revoked: either way the
            # subscription is not in force
            text = f"{frame.error.code}: {frame.error.msg}" if frame.error is not None else f"status {frame.status}"
            return [VenueNotice("error", f"binance {text}")]
        if frame.id == REQUEST_ID and frame.status == 200:
            if not isinstance(frame.result, dict) or "subscriptionId" not in frame.result:
                raise ValueError("binance subscribe answer without a subscriptionId")
            return [StreamReady()]
        return []


def order_update(r: ExecutionReport) -> OrderUpdate:
    """One executionReport as an OrderUpdate (average price = Z / z, as the docs say)."""
    fill = r.execution_type == "TRADE"
    try:
        symbol: str | None = symbols.from_concatenated(r.symbol)
    except ValueError:
        symbol = None
    return OrderUpdate(
        venue="binance", client_order_id=r.original_client_order_id or r.client_order_id,
        venue_order_id=str(r.order_id), state=ORDER_STATE.get(r.status, "open"),  # type: ignore[arg-type]
        filled_quantity=r.filled_quantity, ts_event=r.transaction_time * MS, symbol=symbol,
        side="buy" if r.side == "BUY" else "sell", order_type="market" if r.order_type == "MARKET" else "limit",
        price=positive(r.price), quantity=positive(r.quantity),
        average_price=r.cumulative_quote / r.filled_quantity if r.filled_quantity > 0 and r.cumulative_quote > 0 else None,
        last_fill_price=r.last_price if fill else None, last_fill_quantity=r.last_quantity if fill else None,
        fee=r.commission if fill else None, fee_asset=r.commission_asset if fill else None,
        trade_id=str(r.trade_id) if fill and r.trade_id >= 0 else None,
    )


ADAPTER = BinanceUserStream
