"""Coinone's private WebSocket as the simulator speaks it: ``/v1/private``, ``MYORDER``.

Followed (docs.coinone.co.kr): "Private 웹소켓" (authentication in the handshake with
X-COINONE-PAYLOAD / X-COINONE-SIGNATURE, the Private API's recipe, checked here by the REST
dialect's own ``authenticate``: payload, signature, UUID v4 nonce used once; a failed
authentication closes the connection with code 4280; more than 20 connections per account:
the new one is closed with 4290; request_type / channel / format only in capitals; requests
``{request_type, channel, topic, format}``; ``CONNECTED`` with a session id; errors
``{"response_type":"ERROR","error_code":...,"message":...}``: 160010 Invalid Request,
160011 Invalid Type : {field}, 160012 Invalid Topic), "커넥션 관리 (PING)" (PING answered
PONG) and "내 주문 변동 (MYORDER)" (SUBSCRIBED echoing the topics; DEFAULT and SHORT field
names; one message per change: ``wait`` on a new order, ``trade`` per fill with its trade id,
price, quantity, fee and the remainder, then ``trade_done`` repeating the last fill, as the
docs' two examples do; ``cancel`` with the canceled quantity as ``executed_qty``; times in
seconds, as in the docs' examples). Ids, client ids, prices and fills are the REST dialect's
(``_render``, ``_fill_row``: the trade ids find-completed-orders lists).

Guessed where the docs are silent: ``CONNECTED`` is sent before the answer to the first
request (the simulator has no hook at the moment a connection opens); the 4280 / 4290
closes carry a short reason; the payload's ``timestamp`` is not checked; a subscription
without a topic covers every market; UNSUBSCRIBE drops the whole channel and is answered
``UNSUBSCRIBED``; MYASSET is acknowledged but never pushed; a topic naming a market the
simulator does not list is refused with 160012 (no SUBSCRIBED first); post-only orders that
would take are refused over REST, so ``cancel_post_only`` is never sent.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any, ClassVar

from aiohttp import web

from services.simulator.config import Account
from services.simulator.core import Refusal
from services.simulator.dialect import Req
from services.simulator.matching import Fill, Order
from services.simulator.private_ws import PrivateSession, PrivateStreams
from services.simulator.venue import encode

CHANNELS = ("MYORDER", "MYASSET")
SHORT = {"quote_currency": "qc", "target_currency": "tc", "order_id": "oi", "type": "t", "status": "st", "side": "s",
         "order_price": "op", "order_qty": "oq", "order_amount": "oa", "trade_id": "ti", "is_maker": "im",
         "executed_price": "ep", "executed_qty": "eq", "executed_fee": "ef", "remain_qty": "rq",
         "remain_amount": "ra", "user_order_id": "ui", "prevented_qty": "pq", "executed_timestamp": "et",
         "order_timestamp": "ot", "timestamp": "ts"}
"""MYORDER's short field names ("Stream Fields", Short field)."""
_ACCOUNT = web.RequestKey("coinone_private_account", Account)
"""Where the upgrade request keeps the account its headers authenticated."""


class CoinonePrivate(PrivateStreams):
    """Mixin of :class:`services.simulator.dialects.coinone.CoinoneDialect`: its private stream."""

    PRIVATE_WS_PATH = "/v1/private"
    MAX_CONNECTIONS: ClassVar[int] = 20
    AUTH_FAILED: ClassVar[int] = 4280
    TOO_MANY_CONNECTIONS: ClassVar[int] = 4290

    # the dialect provides core, clock, now_ms, authenticate, _render and _fill_row

    # -- connecting -----------------------------------------------------------------------
    async def _private_ws(self, request: web.Request) -> web.StreamResponse:
        """Coinone opens the connection and then closes it with its code (4280, 4290)
        where other venues answer the upgrade request with an HTTP error."""
        if not self.private_refused:
            req = Req(request, request.method, request.path, request.rel_url.raw_query_string, b"",
                      self.clock())  # type: ignore[attr-defined]
            try:
                account: Account = await self.authenticate(req)  # type: ignore[attr-defined]
            except Refusal:
                return await _open_and_close(request, self.AUTH_FAILED, "authentication failed")
            if sum(1 for s in self.private_sessions if s.account is account) >= self.MAX_CONNECTIONS:
                return await _open_and_close(request, self.TOO_MANY_CONNECTIONS, "too many connections")
            request[_ACCOUNT] = account
        return await super()._private_ws(request)

    async def private_handshake(self, req: Req) -> Account | None:
        return req.request.get(_ACCOUNT)

    # -- client messages ------------------------------------------------------------------
    def private_message(self, session: PrivateSession, data: str | bytes) -> None:
        if not session.state.get("connected"):
            session.state["connected"] = True
            session.send({"response_type": "CONNECTED", "data": {"session_id": str(uuid.uuid4())}})
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        try:
            msg = json.loads(text)
        except ValueError:
            msg = None
        if not isinstance(msg, dict):
            return _error(session, 160010, "Invalid Request")
        kind = msg.get("request_type")
        if kind not in ("SUBSCRIBE", "UNSUBSCRIBE", "PING"):
            return _error(session, 160011, "Invalid Type : request_type")
        if kind == "PING":
            return session.send({"response_type": "PONG"})
        channel, form = msg.get("channel"), msg.get("format") or "DEFAULT"
        if channel not in CHANNELS:
            return _error(session, 160011, "Invalid Type : channel")
        if form not in ("DEFAULT", "SHORT"):
            return _error(session, 160011, "Invalid Type : format")
        topics = self._topics(msg.get("topic"))
        if topics is False:
            return _error(session, 160012, "Invalid Topic")
        subscriptions: dict[str, tuple[str, set[str] | None]] = session.state.setdefault("subscriptions", {})
        if kind == "UNSUBSCRIBE":
            subscriptions.pop(channel, None)
            return session.send({"response_type": "UNSUBSCRIBED", "channel": channel})
        subscriptions[channel] = (form, {symbol for symbol, _ in topics} if topics else None)
        reply: dict[str, Any] = {"response_type": "SUBSCRIBED", "channel": channel}
        if topics:
            reply["data"] = [topic for _, topic in topics]
        session.send(reply)

    def _topics(self, topic: Any) -> list[tuple[str, dict[str, str]]] | bool:
        """(exbus symbol, topic as echoed) per topic; [] for every market; False: invalid."""
        if topic is None or topic == []:
            return []
        rows = [topic] if isinstance(topic, dict) else topic
        if not isinstance(rows, list):
            return False
        topics = []
        for row in rows:
            quote, target = (row.get("quote_currency"), row.get("target_currency")) if isinstance(row, dict) else (0, 0)
            if not isinstance(quote, str) or not isinstance(target, str):
                return False
            symbol = f"{target.upper()}-{quote.upper()}"
            if symbol not in self.core.markets:  # type: ignore[attr-defined]
                return False
            topics.append((symbol, {"quote_currency": quote.upper(), "target_currency": target.upper()}))
        return topics

    # -- pushes ---------------------------------------------------------------------------
    def private_events(self, order: Order, fill: Fill | None, kind: str) -> list[Any]:
        """The MYORDER ``data`` of one engine update, from the REST dialect's rows."""
        row = self._render(order)  # type: ignore[attr-defined]
        by_amount = order.quantity is None  # a market buy sized in KRW
        data: dict[str, Any] = {
            "quote_currency": row["quote_currency"], "target_currency": row["target_currency"],
            "order_id": row["order_id"], "type": row["type"], "status": "wait",
            "side": "BID" if order.side == "buy" else "ASK", "order_price": None, "order_qty": None,
            "order_amount": None, "trade_id": None, "is_maker": None, "executed_price": None, "executed_qty": None,
            "executed_fee": None, "remain_qty": None, "remain_amount": None, "user_order_id": row["user_order_id"],
            "prevented_qty": None, "executed_timestamp": None, "order_timestamp": None,
            "timestamp": self.now_ms() // 1000,  # type: ignore[attr-defined]
        }
        if kind == "new":
            data.update(order_price=row["price"], order_qty=row["original_qty"], order_amount=row["original_amount"],
                        order_timestamp=row["ordered_at"] // 1000)
            return [data]
        if kind == "trade" and fill is not None:
            f = self._fill_row(order, fill)  # type: ignore[attr-defined]
            data.update(status="trade", trade_id=f["trade_id"], is_maker=f["is_maker"], executed_price=f["price"],
                        executed_qty=f["qty"], executed_fee=f["fee"], executed_timestamp=f["timestamp"] // 1000,
                        order_timestamp=row["ordered_at"] // 1000)
            if by_amount:
                data["remain_amount"] = (order.quote_quantity or Decimal(0)) - order.filled_quote if order.is_open \
                    else Decimal(0)
            else:
                data["remain_qty"] = row["remain_qty"]
            return [data, {**data, "status": "trade_done"}] if order.status == "filled" else [data]
        # canceled, or the unfilled rest of a market order expired: Coinone says cancel
        data.update(status="cancel", executed_timestamp=row["updated_at"] // 1000)
        if by_amount:
            data["remain_amount"] = Decimal(0)
        else:
            data.update(executed_qty=row["canceled_qty"], remain_qty=Decimal(0))
        return [data]

    def private_render(self, session: PrivateSession, order: Order, message: Any) -> str | bytes | None:
        subscription = session.state.get("subscriptions", {}).get("MYORDER")
        if subscription is None:
            return None  # authenticated, not subscribed
        form, symbols = subscription
        if symbols is not None and order.symbol not in symbols:
            return None
        if form == "SHORT":
            return encode({"r": "DATA", "c": "MYORDER", "d": {SHORT[k]: v for k, v in message.items()}}).decode()
        return encode({"response_type": "DATA", "channel": "MYORDER", "data": message}).decode()


def _error(session: PrivateSession, code: int, message: str) -> None:
    session.send({"response_type": "ERROR", "error_code": code, "message": message})


async def _open_and_close(request: web.Request, code: int, reason: str) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.close(code=code, message=reason.encode())
    return ws


__all__ = ["CoinonePrivate"]
