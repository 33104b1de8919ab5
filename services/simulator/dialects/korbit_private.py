"""Korbit's private WebSocket as the simulator speaks it: ``/v2/private``, ``myOrder``, ``myTrade``.

Followed (docs.korbit.co.kr, Korean reference): "웹소켓 연결하기" (Private URL ``/v2/private``),
"인증하기" (``X-KAPI-KEY`` header, ``timestamp`` and ``signature`` in the query, signed as
서명된 요청 보내기 signs a GET; a refused handshake is an HTTP error whose JSON carries the code
in ``error.message``: EXCEED_TIME_WINDOW, KEY_NOT_FOUND), "요청 보내기" (requests are always
an array of ``{"method","type","symbols"}``; the docs' second example nests an array, which
is read as its items), "응답 메시지" (control messages carry ``status``; "by default a
successful subscribe/unsubscribe gets no answer, a failed one gets an error"; with a
``requestId`` both are answered: ``{"requestId":1,"status":"success"}``, ``{"requestId":1,
"status":"fail","code":"INVALID_SYMBOL","message":"The symbol does not exist (eth_btc)"}``;
``{"status":"error","message":...}`` for what is not a request), "내 주문 (MyOrder)" and
"내 체결 (MyTrade)" (``symbols`` required; messages ``{"symbol","timestamp","channelType",
"order":{"orders":[...]}}`` and ``{..."trade":{"trades":[...]}}``, ``timestamp`` the server's
time). Orders are rendered as the REST dialect's 개별 주문 조회 renders them (same ids, client
ids, numbers) without ``symbol`` and with ``unfilled`` for REST's ``open``; trades as its 최근
체결 내역 조회 rows with the WebSocket names (``fee``, ``filledAt``).

Guessed where the docs are silent: each engine update is one ``myOrder`` message, a fill
then one ``myTrade`` message (myOrder first); a request item that is not an object, has
another method, names a public or unknown type, or lacks ``symbols`` fails with BAD_REQUEST
(only INVALID_SYMBOL is documented), a ``requestId`` that is not an integer is not echoed;
``error`` texts are the simulator's; ``myAsset`` subscriptions are acknowledged but no asset
message is pushed; no ``accountSeqs`` (sub-accounts); no connection limit, no idle timeout
(WebSocket pings are answered).
"""

from __future__ import annotations

import json
from typing import Any

from services.simulator.dialect import Req
from services.simulator.config import Account
from services.simulator.matching import Fill, Order
from services.simulator.private_ws import PrivateSession, PrivateStreams
from services.simulator.venue import encode

PRIVATE_TYPES = ("myOrder", "myTrade", "myAsset")
PUBLIC_TYPES = ("ticker", "orderbook", "trade")
PER_SYMBOL = ("myOrder", "myTrade")
"""Types whose ``symbols`` are required (myAsset takes none)."""


class RequestFailed(Exception):
    """One request item refused: Korbit's ``code`` and ``message``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code, self.message = code, message


class KorbitPrivate(PrivateStreams):
    """Mixin of :class:`services.simulator.dialects.korbit.KorbitDialect`: its private stream."""

    PRIVATE_WS_PATH = "/v2/private"

    # the dialect provides core, now_ms, authenticate, render and trade_row

    async def private_handshake(self, req: Req) -> Account:
        """"인증하기": the upgrade request is signed exactly as a signed REST GET."""
        return await self.authenticate(req)  # type: ignore[attr-defined,no-any-return]

    # -- client messages ------------------------------------------------------------------
    def private_message(self, session: PrivateSession, data: str | bytes) -> None:
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        try:
            msg = json.loads(text)
        except ValueError:
            msg = None
        if not isinstance(msg, list) or not msg:
            session.send({"status": "error", "message": "a request must be a JSON array of subscribe/unsubscribe items"})
            return
        for item in _items(msg):
            self._request(session, item)

    def _request(self, session: PrivateSession, item: Any) -> None:
        request_id = item.get("requestId") if isinstance(item, dict) else None
        if isinstance(request_id, bool) or not isinstance(request_id, int):
            request_id = None
        head = {"requestId": request_id} if request_id is not None else {}
        try:
            method, kind, symbols = self._parse(item)
        except RequestFailed as f:
            session.send({**head, "status": "fail", "code": f.code, "message": f.message})
            return
        subs: dict[str, set[str]] = session.state.setdefault("subs", {})
        wanted = set(symbols) if kind in PER_SYMBOL else {""}
        if method == "subscribe":
            subs.setdefault(kind, set()).update(wanted)
        else:
            subs.get(kind, set()).difference_update(wanted)
        if head:
            session.send({**head, "status": "success"})

    def _parse(self, item: Any) -> tuple[str, str, list[str]]:
        if not isinstance(item, dict):
            raise RequestFailed("BAD_REQUEST", "a request item must be an object")
        method, kind, symbols = item.get("method"), item.get("type"), item.get("symbols")
        if method not in ("subscribe", "unsubscribe"):
            raise RequestFailed("BAD_REQUEST", f"method must be subscribe or unsubscribe ({str(method)[:40]})")
        if kind in PUBLIC_TYPES:
            raise RequestFailed("BAD_REQUEST", f"{kind} is a public type (wss://ws-api.korbit.co.kr/v2/public)")
        if kind not in PRIVATE_TYPES:
            raise RequestFailed("BAD_REQUEST", f"unknown type ({str(kind)[:40]})")
        if kind not in PER_SYMBOL:
            return method, kind, []
        if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) for s in symbols):
            raise RequestFailed("BAD_REQUEST", "symbols is required")
        known = {m.venue_symbol for m in self.core.markets.values()}  # type: ignore[attr-defined]
        unknown = [s for s in symbols if s not in known]
        if unknown:
            raise RequestFailed("INVALID_SYMBOL", f"The symbol does not exist ({unknown[0][:40]})")
        return method, kind, symbols

    # -- pushes ---------------------------------------------------------------------------
    def private_events(self, order: Order, fill: Fill | None, kind: str) -> list[Any]:
        """A ``myOrder`` message per engine update, then a ``myTrade`` message for its fill;
        each as (type, venue symbol, message)."""
        symbol = self.core.markets[order.symbol].venue_symbol  # type: ignore[attr-defined]
        now = self.now_ms()  # type: ignore[attr-defined]
        row = self.render(order)  # type: ignore[attr-defined]
        del row["symbol"]
        if row["status"] == "open":
            row["status"] = "unfilled"  # "unfilled 전량 미체결 (REST API의 open 상태와 동일)"
        events: list[Any] = [("myOrder", symbol, {"symbol": symbol, "timestamp": now, "channelType": "myOrder",
                                                  "order": {"orders": [row]}})]
        if fill is not None:
            t = self.trade_row(order, fill)  # type: ignore[attr-defined]
            trade = {"tradeId": t["tradeId"], "orderId": t["orderId"], "side": t["side"], "price": t["price"],
                     "qty": t["qty"], "fee": t["feeQty"], "feeCurrency": t["feeCurrency"], "filledAt": t["tradedAt"],
                     "isTaker": t["isTaker"]}
            events.append(("myTrade", symbol, {"symbol": symbol, "timestamp": now, "channelType": "myTrade",
                                               "trade": {"trades": [trade]}}))
        return events

    def private_render(self, session: PrivateSession, order: Order, message: Any) -> str | bytes | None:
        kind, symbol, body = message
        if symbol not in session.state.get("subs", {}).get(kind, ()):
            return None
        return encode(body).decode()


def _items(msg: list[Any]) -> list[Any]:
    """The request items, nested arrays flattened (the docs' second example nests one)."""
    out: list[Any] = []
    for item in msg:
        out.extend(_items(item) if isinstance(item, list) else [item])
    return out


__all__ = ["KorbitPrivate"]
