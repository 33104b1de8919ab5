"""The WebSocket protocol Upbit and Bithumb share, as the simulator speaks it: one request
message (ticket, one object per type, format) that replaces the connection's subscription,
``PING`` answered ``{"status": "UP"}``, errors as ``{"error": {"name", "message"}}``,
binary JSON frames in DEFAULT or SIMPLE (abbreviated names) format, optionally as lists.

:class:`UpbitLikePrivate` is the private stream both dialects mix in (on
:class:`~services.simulator.private_ws.PrivateStreams`): the bearer JWT in the handshake,
verified as the dialect verifies REST requests (its ``authenticate``, so refusals are the
venue's REST errors: HTTP 401 ``{"error": {...}}``), ``myOrder`` and ``myAsset``. A venue
declares its path, its order message (``my_order``: Upbit v1 names, Bithumb v2 names) and
that message's SIMPLE abbreviations; everything else is here.

Sources: docs.upbit.com "WebSocket 사용 안내" (request format, PING/``{"status":"UP"}``,
formats DEFAULT/SIMPLE/JSON_LIST/SIMPLE_LIST, error names WRONG_FORMAT, NO_TICKET, NO_TYPE,
NO_CODES, INVALID_PARAM), "내 주문 및 체결 (MyOrder)", "내 자산 (MyAsset)";
apidocs.bithumb.com "요청 방법 및 포맷" (the same request, the JWT in the handshake's
Authorization header), "연결 관리" (PING -> {"status":"UP"}), "내 자산 (MyAsset)" (v1 and v2
alike, per "Private v2 마이그레이션 가이드"). Upbit does not acknowledge a subscription.

Guessed: Bithumb's request errors carry Upbit's names; the myAsset SIMPLE names are
Upbit's for both venues.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import AbstractSet, Any, ClassVar

from services.simulator.config import Account
from services.simulator.dialect import Req
from services.simulator.matching import ZERO, Fill, Order
from services.simulator.private_ws import PrivateSession, PrivateStreams
from services.simulator.venue import encode

PING = "PING"
STATUS_UP = encode({"status": "UP"})
COMMON_SIMPLE = {"type": "ty", "code": "cd", "timestamp": "tms", "stream_type": "st"}
ASSET_SIMPLE = {**COMMON_SIMPLE, "asset_uuid": "astuid", "assets": "ast", "currency": "cu", "balance": "b",
                "locked": "l", "asset_timestamp": "asttms"}
"""myAsset: DEFAULT name -> SIMPLE abbreviation (docs.upbit.com "내 자산 (MyAsset)")."""
ORDER_STATE = {"new": "wait", "trade": "trade", "canceled": "cancel", "expired": "cancel"}
"""Engine update -> ``state`` of the myOrder message (a fill that completes the order is
followed by ``done``)."""


@dataclass
class Subscription:
    """One connection's request: types -> codes (empty = all), book units per code, format."""

    types: dict[str, set[str]] = field(default_factory=dict)
    units: dict[str, int] = field(default_factory=dict)
    fmt: str = "DEFAULT"

    def wants(self, kind: str, code: str) -> bool:
        codes = self.types.get(kind)
        return codes is not None and (not codes or not code or code in codes)


class RequestError(Exception):
    """A request the venue answers with ``{"error": {"name", "message"}}``."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name, self.message = name, message

    def frame(self) -> bytes:
        return encode({"error": {"name": self.name, "message": self.message}})


def read_request(data: str | bytes, allowed: AbstractSet[str], needs_codes: AbstractSet[str] = frozenset()) -> tuple[
        Subscription, list[dict[str, Any]]]:
    """[{"ticket": ...}, {"type": ..., "codes": [...]}, ..., {"format": ...}] as the
    subscription it asks for, and its type objects; raises :class:`RequestError`."""
    try:
        request = json.loads(data)
    except ValueError:
        raise RequestError("WRONG_FORMAT", "The request is not JSON.") from None
    if not isinstance(request, list) or not all(isinstance(x, dict) for x in request):
        raise RequestError("WRONG_FORMAT", "The request must be a JSON array of objects.")
    if not any("ticket" in x for x in request):
        raise RequestError("NO_TICKET", "The request has no ticket.")
    types = [x for x in request if "type" in x]
    if not types:
        raise RequestError("NO_TYPE", "The request has no type.")
    fmt = next((x["format"] for x in request if "format" in x), "DEFAULT")
    sub = Subscription(fmt=fmt if isinstance(fmt, str) else "DEFAULT")
    for t in types:
        if t["type"] not in allowed:
            raise RequestError("INVALID_PARAM", f"type {t['type']} is not available on this endpoint.")
        codes = set()
        for code in t.get("codes") or []:
            name, _, units = str(code).partition(".")
            codes.add(name)
            if units.isdigit():
                sub.units[name] = int(units)
        if not codes and t["type"] in needs_codes:
            raise RequestError("NO_CODES", "The request has no codes.")
        sub.types[t["type"]] = codes
    return sub, types


def abbreviate(obj: Any, names: dict[str, str]) -> Any:
    """A DEFAULT-format message in SIMPLE abbreviations."""
    if isinstance(obj, dict):
        return {names.get(k, k): abbreviate(v, names) for k, v in obj.items()}
    if isinstance(obj, list):
        return [abbreviate(v, names) for v in obj]
    return obj


def render(payload: dict[str, Any], fmt: str, names: dict[str, str]) -> bytes:
    """One message in the subscribed format (numbers as JSON numbers, binary frame)."""
    obj = abbreviate(payload, names) if fmt.startswith("SIMPLE") else payload
    if fmt.endswith("_LIST"):
        obj = [obj]
    return encode(obj, decimals_as_numbers=True)


class UpbitLikePrivate(PrivateStreams):
    """Mixin of the Upbit and Bithumb dialects: their private stream (myOrder, myAsset)."""

    PRIVATE_TYPES: ClassVar[set[str]] = {"myOrder", "myAsset"}
    ORDER_SIMPLE: ClassVar[dict[str, str]]
    """The venue's myOrder names -> SIMPLE abbreviations."""

    # the dialect provides core, hub, now_ms, authenticate and my_order

    def my_order(self, order: Order, fill: Fill | None, state: str) -> dict[str, Any]:
        """The venue's myOrder message for one order (``fill``: the fill this message reports)."""
        raise NotImplementedError

    def init_upbitlike_private(self) -> None:
        """Push order and balance updates (call at the end of the dialect's constructor)."""
        self.init_private()
        self.core.balance_listeners.append(self._push_assets)  # type: ignore[attr-defined]

    async def private_handshake(self, req: Req) -> Account | None:
        """The bearer JWT of the upgrade request, verified as for REST (refused: the REST error)."""
        return await self.authenticate(req)  # type: ignore[attr-defined, no-any-return]

    def private_message(self, session: PrivateSession, data: str | bytes) -> None:
        if data in (PING, PING.encode()):
            session.send(STATUS_UP)
            return
        try:
            sub, _ = read_request(data, self.PRIVATE_TYPES)
        except RequestError as e:
            session.send(e.frame())
            return
        session.state["sub"] = sub
        assert session.account is not None  # authenticated in the handshake
        session.client.topics.add(asset_topic(session.account.name))  # the request was processed
        self.hub.touched()  # type: ignore[attr-defined]

    def private_events(self, order: Order, fill: Fill | None, kind: str) -> list[Any]:
        messages = [self.my_order(order, fill, ORDER_STATE[kind])]
        if kind == "trade" and order.status == "filled":
            messages.append(self.my_order(order, None, "done"))
        return messages

    def private_render(self, session: PrivateSession, order: Order | None, message: Any) -> bytes | None:
        sub: Subscription | None = session.state.get("sub")
        if sub is None or not sub.wants(message["type"], message.get("code", "")):
            return None
        names = self.ORDER_SIMPLE if message["type"] == "myOrder" else ASSET_SIMPLE
        return render(message, sub.fmt, names)

    def _push_assets(self, account: str, assets: list[str]) -> None:
        topic = asset_topic(account)
        if not self.hub.has(topic):  # type: ignore[attr-defined]
            return
        wallet = self.core.exchange.wallets[account]  # type: ignore[attr-defined]
        now = self.now_ms()  # type: ignore[attr-defined]
        self.hub.publish(topic, (None, {  # type: ignore[attr-defined]
            "type": "myAsset", "asset_uuid": str(uuid.uuid4()),
            "assets": [{"currency": a, "balance": wallet.available(a), "locked": wallet.locked.get(a, ZERO)}
                       for a in assets],
            "asset_timestamp": now, "timestamp": now, "stream_type": "REALTIME"}))


def asset_topic(account: str) -> str:
    """Connections of ``account`` whose request was processed (myAsset is pushed there;
    Upbit acknowledges nothing, so tests wait for this topic)."""
    return f"user:{account}"


__all__ = ["ASSET_SIMPLE", "COMMON_SIMPLE", "RequestError", "Subscription", "UpbitLikePrivate", "abbreviate",
           "asset_topic", "read_request", "render"]
