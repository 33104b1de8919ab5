"""Bithumb's private WebSocket v2 as the simulator speaks it: ``/websocket/v2/private``,
``myOrder`` (v2 names) and ``myAsset``, on the Upbit/Bithumb mixin
(services.simulator.dialects.upbitlike).

Followed (apidocs.bithumb.com): "기본 정보" (Private v2 endpoint, myOrder and myAsset),
"요청 방법 및 포맷" (the REST JWT, with its ``timestamp`` claim, as ``Authorization: Bearer``
in the handshake; refused as the REST dialect refuses it: 401 ``jwt_verification``,
``invalid_access_key``, ``expired_jwt``...), "연결 관리" (``PING`` -> ``{"status":"UP"}``),
"내 주문 및 체결 (MyOrder)" (Private v2 fields and SIMPLE names; "fields without a value are
omitted": no ``client_order_id`` for an order without one, no trade fields outside a fill;
``order_price`` and ``order_quantity`` 0 for market orders, ``order_amount`` 0 for a market
sell), "Private v2 마이그레이션 가이드" (v1 -> v2 names and abbreviations: ``uuid`` ->
``order_id``/``oid``, ``trade_uuid`` -> ``trade_id``/``tid``, ``ask_bid`` BID/ASK -> ``side``
buy/sell, ``price``/``volume`` split into ``order_*`` and ``trade_*``, ``*_volume`` ->
``*_quantity``, ``executed_funds`` -> ``executed_amount``; ``trades_count`` removed;
``order_amount``, ``trade_amount``, ``time_in_force`` added). Messages carry the ids, client
ids and numbers of the REST dialect's order (``_order``) and its trade ids.

Guessed where the docs are silent: a limit order's ``order_amount`` is price x quantity; the
remainder of an IOC/FOK order the engine ends has ``cancel_type`` ``tif_cancel`` (the
2026-06-30 changelog's name), a user's cancel carries none; the limit of 10 connections
per second per IP is not enforced; no ``myOrder`` for the v1 path (it has ended).
"""

from __future__ import annotations

from typing import Any

from services.simulator.dialects.upbitlike import COMMON_SIMPLE, UpbitLikePrivate
from services.simulator.matching import ZERO, Fill, Order

ORDER_SIMPLE = {
    **COMMON_SIMPLE, "order_id": "oid", "client_order_id": "coid", "side": "sd", "order_type": "ot", "state": "s",
    "time_in_force": "tif", "order_price": "op", "order_quantity": "oq", "order_amount": "oa", "trade_id": "tid",
    "trade_price": "tp", "trade_quantity": "tq", "trade_amount": "ta", "remaining_quantity": "rq",
    "executed_quantity": "eq", "executed_amount": "ea", "reserved_fee": "rsf", "remaining_fee": "rmf",
    "paid_fee": "pf", "cancel_type": "ct", "canceling_order_id": "cnoid", "trade_timestamp": "ttms",
    "order_timestamp": "otms",
}
"""myOrder v2: DEFAULT name -> SIMPLE abbreviation ("Private v2 마이그레이션 가이드")."""


class BithumbPrivate(UpbitLikePrivate):
    """Mixin of :class:`services.simulator.dialects.bithumb.BithumbDialect`: its private stream."""

    PRIVATE_WS_PATH = "/websocket/v2/private"
    ORDER_SIMPLE = ORDER_SIMPLE

    # the dialect provides core, now_ms, _order (its REST order) and trade_id_of

    def my_order(self, o: Order, fill: Fill | None, state: str) -> dict[str, Any]:
        rest = self._order(o)  # type: ignore[attr-defined]
        ord_type = rest["ord_type"]
        limit = ord_type == "limit"
        quantity = rest["volume"] or ZERO
        message = {
            "type": "myOrder", "stream_type": "REALTIME", "code": rest["market"], "order_id": rest["uuid"],
            "client_order_id": rest["client_order_id"], "side": o.side, "order_type": ord_type, "state": state,
            "time_in_force": rest.get("time_in_force"),
            "order_price": rest["price"] if limit else ZERO, "order_quantity": quantity,
            "order_amount": rest["price"] * quantity if limit else (o.venue_fields.get("funds") or ZERO),
            "remaining_quantity": rest["remaining_volume"], "executed_quantity": rest["executed_volume"],
            "executed_amount": rest["executed_funds"], "reserved_fee": rest["reserved_fee"],
            "remaining_fee": rest["remaining_fee"], "paid_fee": rest["paid_fee"],
            "order_timestamp": o.ts_created // 1_000_000, "timestamp": self.now_ms(),  # type: ignore[attr-defined]
        }
        if fill is not None:
            message.update(trade_id=self.trade_id_of(fill), trade_price=fill.price,  # type: ignore[attr-defined]
                           trade_quantity=fill.quantity, trade_amount=fill.quote_quantity,
                           trade_timestamp=fill.ts // 1_000_000)
        if state == "cancel" and o.status == "expired":
            message["cancel_type"] = "tif_cancel"
        return {k: v for k, v in message.items() if v is not None}


__all__ = ["BithumbPrivate", "ORDER_SIMPLE"]
