"""Bitfinex ws/2 authenticated account channel as the simulator speaks it: ``/ws/2``, ``auth``, chanId 0.

Followed (docs.bitfinex.com): "Authenticated Channels" (``{"event":"auth", apiKey, authSig,
authPayload, authNonce, dms, filter}``; authSig = hex HMAC-SHA384(secret, authPayload); authNonce
"ever increasing", at most 9007199254740991; channel filters ``trading`` / ``trading-<SYMBOL>``
for orders and trades, default everything), "General" (an ``info`` event with the version and
platform status on connecting; ``{"event":"ping","cid"}`` answered ``{"event":"pong","ts","cid"}``;
errors ``{"event":"error","msg","code"}``, 10000 unknown event), "Orders" (``os`` snapshot of the
active orders after auth, then ``on``/``ou``/``oc``; a fully executed order is closed by an ``oc``
whose STATUS says EXECUTED), "Trades" (``te`` at once without fee, ``tu`` with FEE, negative =
charged, and FEE_CURRENCY) and the "Abbreviation Glossary" codes. The auth answers are those of
bitfinexcom/bitfinex-api-node's tests: ``{"event":"auth","status":"OK","chanId":0,"userId",...}``
(``auth_id``, ``caps`` as ccxt pro bitfinex.py quotes them) and ``{"event":"auth","status":"FAILED",
"chanId":0,"code":10100,"msg":"apikey: invalid"}``. The key, signature and nonce are checked by the
dialect's REST ``verify`` (same codes and texts: 10100 "apikey: invalid" / "apikey: digest
invalid", 10114 "nonce: invalid" / "nonce: small"); the nonce is the key's REST counter. Rows are
the REST dialect's own order and trade arrays (same ids, cids, numbers).

Guessed where the docs are silent: the ``info`` greeting is sent before the answer to the first
client message (the mixin has no on-connect hook), not at once; authPayload must start with "AUTH"
+ authNonce (10111 otherwise: the official Node library signs "AUTH" + nonce + nonce); a second auth
on a connection gets 10100 "auth: dup"; a filter that is not a list of strings gets 10020; failed
auths leave the connection open; per trade the order of messages is ``te``, ``ou``/``oc``, ``tu``;
no ``hb`` heartbeats, no ``n`` notifications, wallet or balance messages; ``dms`` is accepted but
closing the socket cancels nothing; WebSocket order inputs (``[0,"on",null,{...}]``) and public
channel subscriptions are not served (10000 / 10300).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any, ClassVar

from services.simulator.config import Account
from services.simulator.core import Refusal
from services.simulator.matching import Fill, Order
from services.simulator.private_ws import PrivateSession, PrivateStreams
from services.simulator.venue import encode

CAPS = {name: {"read": read, "write": write} for name, read, write in (
    ("orders", 1, 1), ("account", 1, 0), ("funding", 1, 1), ("history", 1, 0), ("wallets", 1, 1),
    ("withdraw", 0, 0), ("positions", 1, 1), ("ui_withdraw", 0, 0))}


class BitfinexPrivate(PrivateStreams):
    """Mixin of :class:`services.simulator.dialects.bitfinex.BitfinexDialect`: its account channel."""

    PRIVATE_WS_PATH = "/ws/2"
    WS_VERSION: ClassVar[int] = 2

    # the dialect provides core, now_ms, verify, refusal_code, _row and _trade_row

    # -- client messages ------------------------------------------------------------------
    def private_message(self, session: PrivateSession, data: str | bytes) -> None:
        if not session.state.get("greeted"):
            session.state["greeted"] = True
            session.send({"event": "info", "version": self.WS_VERSION, "serverId": str(uuid.uuid4()),
                          "platform": {"status": 1}})
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        try:
            msg = json.loads(text)
        except ValueError:
            msg = None
        event = msg.get("event") if isinstance(msg, dict) else None
        if event == "ping":
            cid = msg.get("cid")  # type: ignore[union-attr]
            session.send({"event": "pong", "ts": self.now_ms(), **({"cid": cid} if cid is not None else {})})  # type: ignore[attr-defined]
        elif event == "auth":
            self._auth(session, msg)  # type: ignore[arg-type]
        elif event == "conf":
            session.send({"event": "conf", "status": "OK", "flags": msg.get("flags", 0)})  # type: ignore[union-attr]
        elif event in ("subscribe", "unsubscribe"):
            session.send({"event": "error", "msg": f"{event}: invalid", "code": 10300})
        else:
            session.send({"event": "error", "msg": "Unknown event", "code": 10000})

    def _auth(self, session: PrivateSession, msg: dict[str, Any]) -> None:
        if session.account is not None:
            self._failed(session, 10100, "auth: dup")
            return
        nonce = msg.get("authNonce")
        nonce_text = str(nonce) if isinstance(nonce, int) and not isinstance(nonce, bool) else \
            nonce if isinstance(nonce, str) else ""
        payload, filters = msg.get("authPayload"), msg.get("filter")
        if not isinstance(payload, str) or not payload.startswith("AUTH" + nonce_text):
            self._failed(session, 10111, "authPayload: invalid")
            return
        if filters is not None and not (isinstance(filters, list) and all(isinstance(f, str) for f in filters)):
            self._failed(session, 10020, "filter: invalid")
            return
        key, signature = msg.get("apiKey"), msg.get("authSig")
        try:
            account: Account = self.verify(key if isinstance(key, str) else "", payload.encode(),  # type: ignore[attr-defined]
                                           signature if isinstance(signature, str) else "", nonce_text)
        except Refusal as r:
            self._failed(session, *self.refusal_code(r))  # type: ignore[attr-defined]
            return
        session.state["filter"] = set(filters) if filters else None
        session.authorize(account)
        session.send({"event": "auth", "status": "OK", "chanId": 0, "userId": _user_id(account.name),
                      "auth_id": str(uuid.uuid4()), "caps": CAPS})
        orders = [o for o in self.core.open_orders(account) if self._wanted(session, o)]  # type: ignore[attr-defined]
        rows = [self._row(o) for o in sorted(orders, key=lambda o: int(o.order_id), reverse=True)]  # type: ignore[attr-defined]
        session.send(_frame([0, "os", rows]))

    @staticmethod
    def _failed(session: PrivateSession, code: int, text: str) -> None:
        session.send({"event": "auth", "status": "FAILED", "chanId": 0, "code": code, "msg": text})

    # -- pushes ---------------------------------------------------------------------------
    def private_events(self, order: Order, fill: Fill | None, kind: str) -> list[Any]:
        """``on`` for a new order, ``oc`` when it closes; a trade is ``te`` (no fee yet), the
        order's ``ou`` (``oc`` once executed) and the ``tu`` with the fee."""
        row = self._row(order)  # type: ignore[attr-defined]
        if kind == "new":
            return [[0, "on", row]]
        if fill is None:
            return [[0, "oc", row]]
        trade = self._trade_row(order, fill)  # type: ignore[attr-defined]
        executed = [*trade[:9], None, None, *trade[11:]]
        return [[0, "te", executed], [0, "ou" if order.is_open else "oc", row], [0, "tu", trade]]

    def private_render(self, session: PrivateSession, order: Order, message: Any) -> str | bytes | None:
        return _frame(message) if self._wanted(session, order) else None

    def _wanted(self, session: PrivateSession, order: Order) -> bool:
        """Whether the connection's filter lets ``order``'s messages through."""
        filters = session.state.get("filter")
        symbol = self.core.markets[order.symbol].venue_symbol  # type: ignore[attr-defined]
        return filters is None or "trading" in filters or f"trading-{symbol}" in filters


def _frame(message: Any) -> str:
    """A channel message as Bitfinex sends it: numbers as JSON numbers."""
    return encode(message, decimals_as_numbers=True).decode()


def _user_id(account: str) -> int:
    """A stable Bitfinex-like user id (ccxt's example: 3159883)."""
    return int(hashlib.sha256(account.encode()).hexdigest()[:6], 16)


__all__ = ["BitfinexPrivate"]
