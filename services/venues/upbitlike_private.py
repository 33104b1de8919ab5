"""The private WebSocket Upbit and Bithumb share (sans-IO): what both venues' ``myOrder``
stream adapters have in common; each declares its endpoint and reads its own message.

Both authenticate in the handshake with the venue's REST JWT as ``Authorization: Bearer``
(no parameters, so no query hash; Bithumb's adapter adds its ``timestamp`` claim), send
one request ``[{"ticket"}, {"type": "myOrder"}, {"format": "DEFAULT"}]`` (no codes = every
market), answer errors as ``{"error": {"name", "message"}}`` and the text ``PING`` with
``{"status": "UP"}``. Neither acknowledges a subscription: the ``PING`` sent right after it
is answered only once the request before it was processed, so its answer marks the stream
ready. A subscription holds for the connection (a new token means a new connection).

Sources: docs.upbit.com "WebSocket 사용 및 에러 안내", "내 주문 및 체결 (MyOrder)";
apidocs.bithumb.com "요청 방법 및 포맷", "연결 관리" (120 s idle timeout; PING frames, or the
text PING answered {"status":"UP"}), "내 주문 및 체결 (MyOrder)" (Private v2).
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Literal

import msgspec

from schemas.vault import Credentials
from services.venues import symbols
from services.venues.privatews import OrderState, OrderUpdate, PrivateEvent, PrivateStream, StreamReady, WsOpen
from services.venues.wsbase import VenueNotice

MS = 1_000_000
PING = "PING"
MAX_TEXT = 200
"""Longest error name or message kept in a notice."""


class _Head(msgspec.Struct):
    type: str = ""
    status: str = ""
    error: dict | None = None


_head = msgspec.json.Decoder(_Head)


class UpbitLikePrivateStream(PrivateStream):
    """Base of the Upbit and Bithumb ``myOrder`` adapters: a venue sets ``venue``, ``path``
    and ``url`` and implements :meth:`order_update`."""

    path: ClassVar[str]
    """The private endpoint's path (also what the JWT is made for)."""
    format: ClassVar[Literal["DEFAULT"]] = "DEFAULT"
    ready_on_connect = False

    def connection(self, token: Any, creds: Credentials, now_ms: int) -> WsOpen:
        """The REST adapter's JWT (no parameters, so no query hash) as the bearer token."""
        signed = self.rest.sign("GET", self.path, [], creds, now_ms, str(uuid.uuid4()))
        return WsOpen(self.url, {"Authorization": signed.headers["Authorization"]})

    def subscribe_messages(self, creds: Credentials, token: Any, now_ms: int, nonce: int | None = None) -> list[str | bytes]:
        request = [{"ticket": str(uuid.uuid4())}, {"type": "myOrder"}, {"format": self.format}]
        return [msgspec.json.encode(request).decode(), PING]

    def parse_frame(self, data: str | bytes, ts_recv: int) -> list[PrivateEvent]:
        head = _head.decode(data)
        if head.error is not None:
            name, message = (str(head.error.get(k))[:MAX_TEXT] for k in ("name", "message"))
            return [VenueNotice("error", f"{self.venue} {name}: {message}")]
        if head.status == "UP":
            return [StreamReady()]
        if head.type != "myOrder":
            return []  # myAsset, and whatever else the venue adds
        return [self.order_update(data)]

    def order_update(self, data: str | bytes) -> OrderUpdate:
        """One ``myOrder`` message (raises msgspec/ValueError on one it cannot read)."""
        raise NotImplementedError


def order_state(state: str, executed: Any, remaining: Any, order_type: str) -> OrderState:
    """The state after a ``myOrder`` message. ``trade`` reports one fill; a limit order's
    fill that leaves nothing is the last one (its ``done`` follows); ``prevented`` (Upbit's
    self-match prevention) with nothing left ends the order."""
    if state == "done":
        return "filled"
    if state == "cancel" or (state == "prevented" and remaining == 0):
        return "canceled"
    if state == "trade" and remaining == 0 and order_type == "limit":
        return "filled"
    if state not in ("wait", "watch", "trade", "prevented"):
        raise ValueError(f"myOrder with state {state[:20]!r}")
    return "partially_filled" if executed > 0 else "open"


def symbol_of(code: str) -> str | None:
    """The exbus symbol of a market code (KRW-BTC -> BTC-KRW), None if it has no such form."""
    try:
        return symbols.from_quote_first(code)
    except ValueError:
        return None


def quote_of(code: str) -> str:
    """The quote currency of a market code: the fees' currency (KRW-BTC: KRW)."""
    return code.partition("-")[0]


__all__ = ["MS", "PING", "UpbitLikePrivateStream", "order_state", "quote_of", "symbol_of"]
