"""Binance's user data stream on the WebSocket API, as the simulator speaks it.

Sources (binance/binance-spot-api-docs@a5e0bc3): web-socket-api.md "Request format",
"Response format" (``{"id", "status", "result" | "error", "rateLimits"}``), "IP limits"
(connecting costs 2 weight, shared with REST per IP), "SIGNED request example (HMAC)"
(every param but ``signature``, sorted by name, as ``name=value`` joined by ``&``;
HMAC-SHA256 hex, not case-sensitive), "Timing security", "Session Authentication"
(``-2015`` answered with status 401), "User Data Stream requests"
(``userDataStream.subscribe.signature`` -> ``{"subscriptionId": n}``, one subscription per
account per connection, ``userDataStream.unsubscribe`` with an optional
``subscriptionId``, ``session.subscriptions``; weight 2 each); user-data-stream.md (events
``{"subscriptionId", "event"}``: ``executionReport``, ``outboundAccountPosition``,
``eventStreamTerminated`` when a subscription is stopped); web-socket-api.md "Connection
events" (``serverShutdown``, no subscriptionId). The listenKey methods
(``userDataStream.start/ping/stop``) are gone since 2026-02-20 (CHANGELOG.md 2026-01-21).

Where the docs are silent, the simulator chooses: an unknown (or retired) method is
answered 400 ``-1020`` "This operation is not supported."; a frame that is not a JSON
object 400 ``-1135`` "Invalid JSON Request" (id null); ``params`` that is not an object
``-1135`` as Binance words it; ``userDataStream.subscribe`` (it needs an Ed25519
``session.logon``, not simulated) 401 ``-1002``; subscribing again to an account already
subscribed on the connection returns that subscription's id. The server sends no pings of
its own.

A mixin of :class:`services.simulator.dialects.binance.BinanceDialect` on
:class:`~services.simulator.private_ws.PrivateStreams`; it reads the dialect's core, hub,
clock, limits and its signature and timing checks.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

import msgspec

from services.simulator.config import Account
from services.simulator.core import Refusal
from services.simulator.dialect import Req, Route
from services.simulator.dialects.binance_streams import STATUS, fmt
from services.simulator.matching import ZERO, Fill, Order
from services.simulator.private_ws import PrivateSession, PrivateStreams, private_topic
from services.simulator.venue import encode

EXECUTION = {"new": "NEW", "trade": "TRADE", "canceled": "CANCELED", "expired": "EXPIRED"}
SUBSCRIBE_SIGNATURE = "userDataStream.subscribe.signature"
WEIGHT = {SUBSCRIBE_SIGNATURE: 2, "userDataStream.subscribe": 2, "userDataStream.unsubscribe": 2,
          "session.subscriptions": 2, "ping": 1, "time": 1}
CONNECT_WEIGHT = 2

_request = msgspec.json.Decoder(float_hook=Decimal)  # a recvWindow of 6000.346 keeps its text


@dataclass(frozen=True, slots=True)
class AccountEvent:
    """A user data event of one account, before it is wrapped for a subscription."""

    account: str
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Peer:
    """Where a connection comes from, as the dialect's limits read it (``Req.request.remote``)."""

    remote: str


def param_text(value: Any) -> str:
    """A JSON param as it reads in the signature payload (numbers as written, booleans in JSON)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        return msgspec.json.encode(value).decode()
    return str(value)


def signature_payload(params: dict[str, Any]) -> str:
    """web-socket-api.md, SIGNED request example (HMAC), step 1."""
    return "&".join(f"{name}={param_text(params[name])}" for name in sorted(params) if name != "signature")


class BinancePrivate(PrivateStreams):
    """The WebSocket API's user data stream requests and events."""

    PRIVATE_WS_PATH = "/ws-api/v3"

    def init_user_data(self) -> None:
        self.init_private()
        self._execution_ids = itertools.count(1)
        self.core.balance_listeners.append(self._push_balances)  # type: ignore[attr-defined]

    # -- requests -------------------------------------------------------------------------

    async def private_handshake(self, req: Req) -> Account | None:
        """Connecting costs 2 weight of the IP (refused over the limit, as REST is)."""
        self._weigh(req.request.remote or "", CONNECT_WEIGHT)
        return None

    def private_message(self, session: PrivateSession, data: str | bytes) -> None:
        from services.simulator.dialects.binance import BinanceError  # that module imports this one

        req_id: Any = None
        limits: list[dict[str, Any]] | None = None
        try:
            try:
                request = _request.decode(data)
            except msgspec.DecodeError:
                raise BinanceError(400, -1135, "Invalid JSON Request") from None
            if not isinstance(request, dict):
                raise BinanceError(400, -1135, "Invalid JSON Request")
            req_id = request.get("id")
            method, params = request.get("method"), request.get("params", {})
            if not isinstance(method, str) or not method:
                raise BinanceError(400, -1102, "Mandatory parameter 'method' was not sent, was empty/null, or malformed.")
            if not isinstance(params, dict):
                raise BinanceError(400, -1135, "Invalid 'params' in JSON request; expected an object.")
            method = method.removeprefix("v3/")
            handler = self._handlers().get(method)
            if handler is None:
                raise BinanceError(400, -1020, "This operation is not supported.")
            count = self._weigh(self._peer(session), WEIGHT[method])
            if params.get("returnRateLimits") is not False:
                limits = [self._weight_limit(count)]
            reply: dict[str, Any] = {"id": req_id, "status": 200, "result": handler(session, params)}
        except Refusal as r:  # the dialect's errors (BinanceError) and limits
            status, code, msg, _ = self._error(r, self.clock())  # type: ignore[attr-defined]
            reply = {"id": req_id, "status": status, "error": {"code": code, "msg": msg}}
        if limits is not None:
            reply["rateLimits"] = limits
        session.send(reply)

    def _handlers(self) -> dict[str, Callable[[PrivateSession, dict[str, Any]], Any]]:
        return {SUBSCRIBE_SIGNATURE: self._subscribe_signature, "userDataStream.subscribe": self._subscribe_logged_on,
                "userDataStream.unsubscribe": self._unsubscribe, "session.subscriptions": self._subscriptions,
                "ping": lambda session, params: {}, "time": lambda session, params: {"serverTime": self.now_ms()}}  # type: ignore[attr-defined]

    def _subscribe_signature(self, session: PrivateSession, params: dict[str, Any]) -> Any:
        from services.simulator.dialects.binance import BinanceError, check_signed, hmac_matches, mandatory

        api_key = params.get("apiKey")
        if api_key is None or api_key == "":
            raise mandatory("apiKey")
        if not isinstance(api_key, str):
            raise BinanceError(401, -2014, "API-key format invalid.")
        account = self.core.by_key.get(api_key)  # type: ignore[attr-defined]
        if account is None:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        signature = params.get("signature")
        texts = {name: param_text(value) for name, value in params.items()}
        check_signed(texts, lambda: isinstance(signature, str)
                     and hmac_matches(account.secret, signature_payload(params), signature), self.clock())  # type: ignore[attr-defined]
        subscriptions: dict[str, int] = session.state.setdefault("subscriptions", {})
        if account.name not in subscriptions:
            subscriptions[account.name] = session.state.get("next_id", 0)
            session.state["next_id"] = subscriptions[account.name] + 1
            session.authorize(account)
            self.hub.touched()  # type: ignore[attr-defined]
        return {"subscriptionId": subscriptions[account.name]}

    def _subscribe_logged_on(self, session: PrivateSession, params: dict[str, Any]) -> Any:
        from services.simulator.dialects.binance import BinanceError

        raise BinanceError(401, -1002, "You are not authorized to execute this request.")

    def _unsubscribe(self, session: PrivateSession, params: dict[str, Any]) -> Any:
        """Ends one subscription (``subscriptionId``) or all; each ends with eventStreamTerminated."""
        subscriptions: dict[str, int] = session.state.get("subscriptions", {})
        wanted = params.get("subscriptionId")
        for account, sid in list(subscriptions.items()):
            if wanted is None or wanted == sid:
                del subscriptions[account]
                session.client.topics.discard(private_topic(account))
                session.send({"subscriptionId": sid, "event": {"e": "eventStreamTerminated", "E": self.now_ms()}})  # type: ignore[attr-defined]
        return {}

    def _subscriptions(self, session: PrivateSession, params: dict[str, Any]) -> Any:
        return [{"subscriptionId": sid} for sid in sorted(session.state.get("subscriptions", {}).values())]

    def announce_shutdown(self) -> int:
        """Send ``serverShutdown`` on every private connection (tests of a venue restart)."""
        for session in self.private_sessions:
            session.send({"event": {"e": "serverShutdown", "E": self.now_ms()}})  # type: ignore[attr-defined]
        return len(self.private_sessions)

    # -- rate limits ----------------------------------------------------------------------

    @staticmethod
    def _peer(session: PrivateSession) -> str:
        peer = session.client.ws.get_extra_info("peername")
        return str(peer[0]) if peer else ""

    def _weigh(self, remote: str, weight: int) -> int:
        """Count ``weight`` on the IP's REQUEST_WEIGHT window (shared with REST); the window's count."""
        route = Route("GET", self.PRIVATE_WS_PATH, "", limits=("REQUEST_WEIGHT_1M",), weight=weight)
        req = Req(_Peer(remote), "GET", self.PRIVATE_WS_PATH, "", b"", self.clock())  # type: ignore[arg-type, attr-defined]
        windows: list[Any] = []
        self._admit(req, route, "ip", windows)  # type: ignore[attr-defined]
        return windows[0][1].current(req.now)

    def _weight_limit(self, count: int) -> dict[str, Any]:
        return {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                "limit": self.capacity("REQUEST_WEIGHT_1M"), "count": count}  # type: ignore[attr-defined]

    # -- events ---------------------------------------------------------------------------

    def private_events(self, order: Order, fill: Fill | None, kind: str) -> list[Any]:
        return [AccountEvent(order.account, self.execution_report(order, fill, kind))]

    def private_render(self, session: PrivateSession, order: Order | None, message: Any) -> str | bytes | None:
        """The event wrapped for the connection's subscription of its account (None: none)."""
        sid = session.state.get("subscriptions", {}).get(message.account)
        if sid is None:
            return None
        return encode({"subscriptionId": sid, "event": message.event}).decode()

    def execution_report(self, order: Order, fill: Fill | None, kind: str) -> dict[str, Any]:
        """user-data-stream.md "Order Update", with the REST side's ids, statuses and numbers;
        a cancel names the cancel's client id in ``c`` and the order's in ``C``."""
        cancel_id = order.venue_fields.get("cancelClientOrderId") if kind == "canceled" else None
        return {
            "e": "executionReport", "E": self.now_ms(), "s": order.symbol,  # type: ignore[attr-defined]
            "c": cancel_id or order.client_order_id, "S": order.side.upper(), "o": order.venue_fields["type"],
            "f": order.venue_fields["timeInForce"], "q": fmt(order.quantity or ZERO), "p": fmt(order.price or ZERO),
            "P": fmt(ZERO), "F": fmt(ZERO), "g": -1, "C": order.client_order_id if cancel_id else "",
            "x": EXECUTION[kind], "X": STATUS[order.status], "r": "NONE", "i": order.order_id,
            "l": fmt(fill.quantity if fill else ZERO), "z": fmt(order.filled), "L": fmt(fill.price if fill else ZERO),
            "n": fmt(fill.fee if fill else ZERO), "N": fill.fee_asset if fill else None,
            "T": (fill.ts if fill else order.ts_updated) // 1_000_000, "t": fill.trade_id if fill else -1,
            "I": next(self._execution_ids),
            "w": order.is_open and order.order_type == "limit" and order.time_in_force == "gtc",
            "m": bool(fill and fill.is_maker), "M": False, "O": order.ts_created // 1_000_000,
            "Z": fmt(order.filled_quote), "Y": fmt(fill.quote_quantity if fill else ZERO),
            "Q": fmt(order.quote_quantity or ZERO), "W": order.ts_created // 1_000_000, "V": "NONE",
        }

    def _push_balances(self, account: str, assets: list[str]) -> None:
        """``outboundAccountPosition`` for the assets a change touched."""
        topic = private_topic(account)
        if not self.hub.has(topic):  # type: ignore[attr-defined]
            return
        wallet = self.core.exchange.wallets[account]  # type: ignore[attr-defined]
        ms = self.now_ms()  # type: ignore[attr-defined]
        event = {"e": "outboundAccountPosition", "E": ms, "u": ms, "B": [
            {"a": a, "f": fmt(wallet.available(a)), "l": fmt(wallet.locked.get(a, ZERO))} for a in assets]}
        self.hub.publish(topic, (None, AccountEvent(account, event)))  # type: ignore[attr-defined]


__all__ = ["AccountEvent", "BinancePrivate", "signature_payload"]
