"""Binance spot user data stream: what differs from the shared private stream.

Source: binance-spot-api-docs user-data-stream.md: ``POST /api/v3/userDataStream``
(USER_STREAM: the API key header, no signature) returns a ``listenKey`` valid for 60
minutes; ``PUT`` with it extends that ("send a ping about every 30 minutes"); the stream
is ``wss://stream.binance.com:9443/ws/<listenKey>``; orders change in ``executionReport``
events (``c`` the client order id, ``C`` the original one on a cancel, ``X`` the order
status, ``z`` cumulative filled, ``l``/``L`` last fill quantity/price, ``n``/``N``
commission, ``t`` trade id, ``T`` transaction time, ``Z`` cumulative quote). A stream
whose key expired says ``listenKeyExpired``. Weight 2 per call (current rest-api.md).

exbus never DELETEs the key: POST returns the account's one active key to every caller,
so a leader handing over would close its successor's stream; unused keys expire.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from schemas.vault import Credentials
from services.venues import symbols
from services.venues.base import HttpRequest
from services.venues.binance.rest import ORDER_STATE
from services.venues.errors import VenueError
from services.venues.privatews import OrderUpdate, PrivateEvent, PrivateStream, WsOpen, decode_json, positive
from services.venues.wsbase import VenueNotice

MS = 1_000_000
PATH = "/api/v3/userDataStream"


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


class BinanceUserStream(PrivateStream):
    venue = "binance"
    url = "wss://stream.binance.com:9443/ws"
    session_keepalive_s = 30 * 60.0
    rest_cost = {"weight": 2}

    def _user_stream_request(self, method: str, creds: Credentials, token: str | None) -> HttpRequest:
        request = self.rest.public_request(method, PATH, [("listenKey", token)] if token else [])
        return HttpRequest(request.method, request.url, {"X-MBX-APIKEY": creds.api_key}, request.body)

    def open_request(self, creds: Credentials, now_ms: int) -> HttpRequest:
        return self._user_stream_request("POST", creds, None)

    def parse_open(self, status: int, headers: dict[str, str], body: bytes) -> str | VenueError:
        result = self.rest_result("user_stream", status, headers, body)
        if isinstance(result, VenueError):
            return result
        key = result.get("listenKey") if isinstance(result, dict) else None
        if not isinstance(key, str) or not key:
            return self.rest.undecodable("user_stream", status, body, reason="no listenKey")
        return key

    def keepalive_request(self, token: str, creds: Credentials, now_ms: int) -> HttpRequest:
        return self._user_stream_request("PUT", creds, token)

    def connection(self, token: str | None, creds: Credentials, now_ms: int) -> WsOpen:
        if not token:
            raise ValueError("the Binance user data stream needs a listenKey")
        return WsOpen(f"{self.url}/{token}", {})

    def parse_frame(self, data: str | bytes, ts_recv: int) -> list[PrivateEvent]:
        event = decode_json(data)
        if isinstance(event, dict) and isinstance(event.get("event"), dict):
            event = event["event"]  # {"subscriptionId", "event"}: the WebSocket API's wrapping
        elif isinstance(event, dict) and isinstance(event.get("data"), dict):
            event = event["data"]  # /stream?streams=<listenKey>: {"stream", "data"}
        kind = event.get("e") if isinstance(event, dict) else None
        if kind == "executionReport":
            return [order_update(msgspec.convert(event, ExecutionReport))]
        if kind in ("listenKeyExpired", "eventStreamTerminated"):
            return [VenueNotice("reconnect", f"binance user data stream ended: {kind}")]
        return []  # balances, list status, ...


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
