"""OKX v5 private WebSocket as the simulator speaks it: ``/ws/v5/private``, login, ``orders``.

Followed (okx.com/docs-v5/en): "Connect" (text ``ping`` answered ``pong``), "Login" (args
apiKey, passphrase, timestamp in Unix seconds, sign = Base64(HMAC-SHA256(secret, timestamp +
"GET" + "/users/self/verify")); "the request will expire 30 seconds after the timestamp";
answers ``{"event":"login","code":"0","msg":"","connId":...}`` and ``{"event":"error",
"code":"60009","msg":"Login failed.",...}``), "Subscribe"/"Unsubscribe" (acks echo the arg
and ``id``), "Connection count limit" (``channel-conn-count`` to a new subscription; beyond 30
connections per channel and account the ack is followed by ``channel-conn-count-error`` and
the subscription is terminated), "Error Code / WebSocket / Public" (messages as listed there)
and "WS / Order channel" (one push per order update, ``arg`` = the subscription + ``uid``;
``fillSz``/``fillPx``/``tradeId``/``fillFee``/``fillFeeCcy``/``execType`` describe this
update's fill and are empty, "0" for sizes and fees, when it has none). Rows carry the same
ids, client ids and numbers as the REST dialect's GET /trade/order.

Guessed where the docs are silent: a login timestamp more than 30 s ahead gets 60004, one
more than 30 s old 60006; a second login on a connection gets 60031; failed logins leave the
connection open (OKX may close it with 4001); only the ``orders`` channel is served (others
get 60018); connections idle for 30 s are not closed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from decimal import Decimal
from typing import Any, ClassVar

from services.simulator.config import Account
from services.simulator.matching import Fill, Order
from services.simulator.private_ws import PrivateSession, PrivateStreams, private_topic
from services.simulator.venue import encode

VERIFY_PREHASH = "GET/users/self/verify"
INST_TYPES = ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION", "EVENTS", "ANY")
_NO_FILL = {"fillPx": "", "tradeId": "", "fillSz": "0", "fillTime": "", "fillFee": "0", "fillFeeCcy": "",
            "execType": "", "fillPnl": "0", "fillNotionalUsd": "", "fillPxVol": "", "fillPxUsd": "",
            "fillMarkVol": "", "fillFwdPx": "", "fillMarkPx": "", "fillIdxPx": ""}
_EXPIRED_SOURCE = {"ioc": "14", "fok": "13"}
"""cancelSource of a remainder the engine expires: 14 IOC partly filled, 13 FOK not filled; 0 (by the system) otherwise."""


class OkxPrivate(PrivateStreams):
    """Mixin of :class:`services.simulator.dialects.okx.OkxDialect`: its private stream."""

    PRIVATE_WS_PATH = "/ws/v5/private"
    LOGIN_WINDOW_MS: ClassVar[int] = 30_000
    MAX_CONNECTIONS: ClassVar[int] = 30
    """Connections per channel per account ("Connection count limit")."""

    # the dialect provides core, now_ms, signature, _order_row and _fill_row

    # -- client messages ------------------------------------------------------------------
    def private_message(self, session: PrivateSession, data: str | bytes) -> None:
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        session.state.setdefault("connId", secrets.token_hex(4))
        if text == "ping":
            session.send("pong")
            return
        try:
            msg = json.loads(text)
        except ValueError:
            msg = None
        if not isinstance(msg, dict) or not isinstance(msg.get("args", []), list):
            self._error(session, {}, "60012", f"Invalid request: {text[:1000]}")
            return
        op = msg.get("op")
        if op == "login":
            self._login(session, msg)
        elif op in ("subscribe", "unsubscribe"):
            self._subscription(session, msg, op)
        else:
            self._error(session, msg, "60019", f"Invalid op: {op}")

    def _reply(self, session: PrivateSession, request: dict[str, Any], body: dict[str, Any]) -> None:
        request_id = request.get("id")
        head = {"id": request_id} if isinstance(request_id, str) and request_id else {}
        session.send({**head, **body, "connId": session.state["connId"]})

    def _error(self, session: PrivateSession, request: dict[str, Any], code: str, msg: str) -> None:
        self._reply(session, request, {"event": "error", "code": code, "msg": msg})

    def _login(self, session: PrivateSession, msg: dict[str, Any]) -> None:
        args = msg.get("args") or []
        if not isinstance(args[0] if args else None, dict):
            self._error(session, msg, "60012", f"Invalid request: {json.dumps(msg)[:1000]}")
            return
        if len(args) > 1 or session.state.get("login") is not None:
            self._error(session, msg, "60031", "The WebSocket endpoint does not allow multiple or repeated logins.")
            return
        a = args[0]
        for name in ("apiKey", "passphrase", "timestamp", "sign"):
            if not isinstance(a.get(name), str) or not a[name]:
                self._error(session, msg, "60027", f"Parameter {name} can not be empty.")
                return
        try:  # Unix seconds; the docs' JavaScript example sends fractions of a second
            ts_ms = int(Decimal(a["timestamp"]) * 1000)
        except (ArithmeticError, ValueError):  # not a number, NaN, infinite
            ts_ms = None
        now = self.now_ms()  # type: ignore[attr-defined]
        if ts_ms is None or ts_ms - now > self.LOGIN_WINDOW_MS:
            self._error(session, msg, "60004", "Invalid timestamp")
            return
        if now - ts_ms > self.LOGIN_WINDOW_MS:
            self._error(session, msg, "60006", "Timestamp request expired")
            return
        account: Account | None = self.core.by_key.get(a["apiKey"])  # type: ignore[attr-defined]
        if account is None:
            self._error(session, msg, "60005", "Invalid apiKey")
            return
        if not hmac.compare_digest(a["passphrase"], account.passphrase or ""):
            self._error(session, msg, "60024", "Wrong passphrase")
            return
        expected = self.signature(account.secret, a["timestamp"] + VERIFY_PREHASH)  # type: ignore[attr-defined]
        if not hmac.compare_digest(a["sign"], expected):
            self._error(session, msg, "60007", "Invalid sign")
            return
        session.state["login"] = account
        self._reply(session, msg, {"event": "login", "code": "0", "msg": ""})

    def _subscription(self, session: PrivateSession, msg: dict[str, Any], op: str) -> None:
        account: Account | None = session.state.get("login")
        if account is None:
            self._error(session, msg, "60011", "Please log in")
            return
        args = msg.get("args") or []
        if not args:
            self._error(session, msg, "60013", "Invalid args")
            return
        wanted = []
        for arg in args:
            channel = arg.get("channel") if isinstance(arg, dict) else None
            if not isinstance(channel, str) or not channel:
                self._error(session, msg, "60013", "Invalid args")
                return
            if channel != "orders":
                self._error(session, msg, "60018", f"Wrong URL or channel:{channel} doesn't exist. Please use the "
                                                   "correct URL, channel and parameters referring to API document.")
                return
            if not arg.get("instType"):
                self._error(session, msg, "60027", "Parameter instType can not be empty.")
                return
            if arg["instType"] not in INST_TYPES:
                self._error(session, msg, "60013", "Invalid args")
                return
            wanted.append({k: arg[k] for k in ("channel", "instType", "instFamily", "instId")
                           if isinstance(arg.get(k), str) and arg[k]})
        subs: list[dict[str, str]] = session.state.setdefault("subs", [])
        had = bool(subs)
        for arg in wanted:
            if op == "subscribe" and arg not in subs:
                subs.append(arg)
            elif op == "unsubscribe" and arg in subs:
                subs.remove(arg)
            self._reply(session, msg, {"event": op, "arg": arg})
        if op == "subscribe" and not had:
            self._first_subscription(session, account)
        elif op == "unsubscribe" and had and not subs:
            session.client.topics.discard(private_topic(account.name))
            session.account = None

    def _first_subscription(self, session: PrivateSession, account: Account) -> None:
        """The connection count of the channel, and its limit."""
        count = 1 + sum(1 for s in self.private_sessions if s is not session and s.account is account)
        event = "channel-conn-count"
        if count > self.MAX_CONNECTIONS:
            event, count = "channel-conn-count-error", self.MAX_CONNECTIONS
            session.state["subs"] = []
        else:
            session.authorize(account)
        session.send({"event": event, "channel": "orders", "connCount": str(count), "connId": session.state["connId"]})

    # -- pushes ---------------------------------------------------------------------------
    def private_events(self, order: Order, fill: Fill | None, kind: str) -> list[Any]:
        """One ``orders`` row per engine update, rendered as the REST dialect renders the
        order, with this update's fill (or none)."""
        rest = self._order_row(order)  # type: ignore[attr-defined]
        row = {**rest, **_NO_FILL, "notionalUsd": "", "amendResult": "", "amendSource": "", "reqId": "", "code": "0",
               "msg": "", "quickMgnType": "", "lastPx": ""}
        if fill is not None:
            f = self._fill_row(order, fill)  # type: ignore[attr-defined]
            row.update(fillPx=f["fillPx"], tradeId=f["tradeId"], fillSz=f["fillSz"], fillTime=f["fillTime"],
                       fillFee=f["fee"], fillFeeCcy=f["feeCcy"], execType=f["execType"])
        if kind == "canceled" and not row["cancelSource"]:
            row["cancelSource"] = "1"  # canceled by the user
        elif kind == "expired":
            row["cancelSource"] = _EXPIRED_SOURCE.get(order.time_in_force, "0")
        return [row]

    def private_render(self, session: PrivateSession, order: Order, message: Any) -> str | bytes | None:
        venue_symbol = self.core.markets[order.symbol].venue_symbol  # type: ignore[attr-defined]
        for arg in session.state.get("subs", ()):
            if arg["instType"] in ("SPOT", "ANY") and arg.get("instId", venue_symbol) == venue_symbol \
                    and "instFamily" not in arg:
                return encode({"arg": {**arg, "uid": _uid(order.account)}, "data": [message]}).decode()
        return None


def _uid(account: str) -> str:
    """A stable OKX-like user id (the docs' example: 614488474791936)."""
    return str(int(hashlib.sha256(account.encode()).hexdigest()[:12], 16))


__all__ = ["OkxPrivate"]
