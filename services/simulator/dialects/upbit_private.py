"""Upbit's private WebSocket as the simulator speaks it: ``/websocket/v1/private``, ``myOrder``
(v1 names) and ``myAsset``, on the Upbit/Bithumb mixin (services.simulator.dialects.upbitlike).

Followed (docs.upbit.com): "WebSocket 사용 안내" (``Authorization: Bearer <JWT>`` in the
handshake, made as for REST; a refused token is the REST error, e.g. 401
``no_authorization_token``; ``PING`` -> ``{"status":"UP"}``; DEFAULT/SIMPLE formats) and
"내 주문 및 체결 (MyOrder)" (the field table and its SIMPLE abbreviations: ``uuid``,
``identifier``, ``ask_bid`` BID/ASK, ``state`` wait/trade/done/cancel, ``price``/``volume`` of
the fill when the state is trade, ``executed_volume``, ``remaining_volume``, ``avg_price``,
``paid_fee``, ``trade_fee``, ``is_maker``, ``trade_uuid``, timestamps in ms). Messages carry
the ids, identifier and numbers of the REST dialect's order (its trade uuids too).

Guessed: the message of a cancel names the order's price and quantity (``price``,
``volume``) as a wait does; ``smp_type`` is always null (no self-match prevention here).
"""

from __future__ import annotations

from typing import Any

from services.simulator.dialects.upbitlike import COMMON_SIMPLE, UpbitLikePrivate
from services.simulator.matching import ZERO, Fill, Order

ORDER_SIMPLE = {
    **COMMON_SIMPLE, "ask_bid": "ab", "trade_timestamp": "ttms",
    "uuid": "uid", "order_type": "ot", "state": "s", "trade_uuid": "tuid", "price": "p", "avg_price": "ap",
    "volume": "v", "remaining_volume": "rv", "executed_volume": "ev", "trades_count": "tc",
    "reserved_fee": "rsf", "remaining_fee": "rmf", "paid_fee": "pf", "locked": "l", "executed_funds": "ef",
    "time_in_force": "tif", "trade_fee": "tf", "is_maker": "im", "identifier": "id", "smp_type": "smpt",
    "prevented_volume": "pv", "prevented_locked": "pl", "order_timestamp": "otms",
}
"""myOrder: DEFAULT name -> SIMPLE abbreviation ("내 주문 및 체결 (MyOrder)")."""


class UpbitPrivate(UpbitLikePrivate):
    """Mixin of :class:`services.simulator.dialects.upbit.UpbitDialect`: its private stream."""

    PRIVATE_WS_PATH = "/websocket/v1/private"
    ORDER_SIMPLE = ORDER_SIMPLE

    # the dialect provides core, now_ms and _trade_uuid (shared with GET /v1/order's trades)

    def my_order(self, o: Order, fill: Fill | None, state: str) -> dict[str, Any]:
        return {
            "type": "myOrder", "code": o.symbol, "uuid": o.order_id, "ask_bid": "BID" if o.side == "buy" else "ASK",
            "order_type": o.venue_fields["ord_type"], "state": state,
            "trade_uuid": self._trade_uuid(fill) if fill else None,  # type: ignore[attr-defined]
            "price": fill.price if fill else (o.venue_fields.get("funds") or o.price),
            "avg_price": o.average_price, "volume": fill.quantity if fill else o.quantity,
            "remaining_volume": o.remaining if o.quantity is not None else None, "executed_volume": o.filled,
            "trades_count": len(o.fills), "reserved_fee": o.reserved_fee, "remaining_fee": ZERO,
            "paid_fee": o.fees, "locked": o.locked, "executed_funds": o.filled_quote,
            "time_in_force": o.venue_fields.get("time_in_force"), "trade_fee": fill.fee if fill else None,
            "is_maker": fill.is_maker if fill else None, "identifier": o.client_order_id or None,
            "smp_type": None, "prevented_volume": ZERO, "prevented_locked": ZERO,
            "trade_timestamp": fill.ts // 1_000_000 if fill else None, "order_timestamp": o.ts_created // 1_000_000,
            "timestamp": self.now_ms(), "stream_type": "REALTIME",  # type: ignore[attr-defined]
        }


__all__ = ["ORDER_SIMPLE", "UpbitPrivate"]
