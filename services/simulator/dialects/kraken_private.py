"""Kraken spot WebSocket v2 as the simulator speaks it: ``/v2``, a REST token, ``executions``.

Followed: docs.kraken.com REST GetWebSocketsToken (``{"error":[],"result":{"token":...,
"expires":900}}``; "the token should be used within 15 minutes of creation, but it does not
expire once a successful Websockets connection and private subscription has been made and
is maintained"), guides/websockets/authentication, spot-websocket-v2/executions (subscribe
params ``token``, ``snap_orders`` default true, ``snap_trades`` default false,
``order_status`` default true, ``req_id`` echoed; the ack ``{"method":"subscribe","result":
{"channel":"executions","snap_orders":...,"snap_trades":...},"success":true,"time_in",
"time_out"}``; ``{"channel":"executions","type":"snapshot"|"update","data":[...],
"sequence":n}``; the docs' examples for ``pending_new`` (full order), ``new`` (order id,
status, time only), ``trade`` (``exec_id``, ``trade_id``, ``last_qty``, ``last_price``,
``liquidity_ind``, ``cost``, ``fees[{asset,qty}]``, ``fee_usd_equiv``; no ``cum_qty``),
``canceled`` (``cum_qty``, ``cum_cost``, ``avg_price``, ``reason``)), unified-ws/executions
(a trade then ``exec_type: filled`` when it completes the order), spot-websocket-v2/ping
(``{"method":"ping","req_id":n}`` -> ``{"method":"pong","req_id":n,"time_in","time_out"}``),
guides/general/errors (``ESession:Invalid session``). Numbers are JSON numbers (v2), symbols
``BTC/CHF``, assets ``BTC``; ids, client ids, quantities, prices and fees are those of the
REST dialect's QueryOrders and TradesHistory (``exec_id`` is the TradesHistory key).

Guessed where the docs are silent: an unknown, expired or missing token is answered
``ESession:Invalid session`` (v1's documented text; v2's error objects as ccxt shows them);
a token is reusable on other connections while valid; a second subscribe on a connection
gets "Already subscribed"; a frame that is not a JSON object "Malformed request"; any other
channel or method ``EGeneral:Invalid arguments``; every message of an order with a
``cl_ord_id`` carries it; a trade that completes the order says ``order_status: filled``
(the docs' trade example), then ``filled`` follows; an IOC remainder is ``expired``;
``fee_usd_equiv`` only when the fee is in USD (no conversion rates here); no ``status`` or
``heartbeat`` channel messages are sent, and idle connections are not closed.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, ClassVar

from services.simulator.config import Account
from services.simulator.dialect import Req
from services.simulator.matching import Fill, Order
from services.simulator.private_ws import PrivateSession, PrivateStreams, private_topic
from services.simulator.venue import encode

CHANNEL = "executions"
INVALID_TOKEN = "ESession:Invalid session"


def rfc3339(ns: int) -> str:
    """``2023-09-22T10:33:05.709950Z`` (Kraken v2: microseconds, UTC)."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest // 1000:06d}Z"


class KrakenPrivate(PrivateStreams):
    """Mixin of :class:`services.simulator.dialects.kraken.KrakenDialect`: its private stream."""

    PRIVATE_WS_PATH = "/v2"
    TOKEN_TTL_NS: ClassVar[int] = 900 * 1_000_000_000

    # the dialect provides core, clock, order_info, trade and trade_txid

    def init_tokens(self) -> None:
        self.ws_tokens: dict[str, tuple[str, int]] = {}
        """Token -> (account, issued at ns)."""

    # -- REST: GetWebSocketsToken ---------------------------------------------------------
    async def ws_token(self, req: Req) -> Any:
        now = self.clock()  # type: ignore[attr-defined]
        self.ws_tokens = {t: v for t, v in self.ws_tokens.items() if now - v[1] < self.TOKEN_TTL_NS
                          or self._in_use(t)}
        token = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")  # the docs' 43-character shape
        self.ws_tokens[token] = (req.account.name, now)  # type: ignore[union-attr]
        return {"error": [], "result": {"token": token, "expires": self.TOKEN_TTL_NS // 1_000_000_000}}

    def _in_use(self, token: str) -> bool:
        return any(s.state.get("token") == token and s.account is not None for s in self.private_sessions)

    def _token_account(self, token: Any) -> Account | None:
        if not isinstance(token, str) or token not in self.ws_tokens:
            return None
        name, issued = self.ws_tokens[token]
        if self.clock() - issued >= self.TOKEN_TTL_NS and not self._in_use(token):  # type: ignore[attr-defined]
            return None
        return self.core.by_name.get(name)  # type: ignore[attr-defined]

    # -- client messages ------------------------------------------------------------------
    def private_message(self, session: PrivateSession, data: str | bytes) -> None:
        time_in = rfc3339(self.clock())  # type: ignore[attr-defined]
        try:
            msg = json.loads(data)
        except ValueError:
            msg = None
        if not isinstance(msg, dict):
            session.send({"error": "Malformed request", "success": False, "time_in": time_in, "time_out": time_in})
            return
        method = msg.get("method")
        head = {"method": method, **({"req_id": msg["req_id"]} if isinstance(msg.get("req_id"), int) else {})}
        params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
        if method == "ping":
            session.send({**head, "method": "pong", "time_in": time_in, "time_out": time_in})
        elif method in ("subscribe", "unsubscribe") and params.get("channel") == CHANNEL:
            self._subscription(session, method, params, head, time_in)
        else:
            self._refuse(session, head, "EGeneral:Invalid arguments", time_in)

    def _refuse(self, session: PrivateSession, head: dict[str, Any], error: str, time_in: str) -> None:
        session.send({"error": error, **head, "success": False, "time_in": time_in,
                      "time_out": rfc3339(self.clock())})  # type: ignore[attr-defined]

    def _subscription(self, session: PrivateSession, method: str, params: dict[str, Any], head: dict[str, Any],
                      time_in: str) -> None:
        account = self._token_account(params.get("token"))
        if account is None:
            self._refuse(session, head, INVALID_TOKEN, time_in)
            return
        subscribed = session.account is not None
        if method == "unsubscribe":
            if subscribed:
                session.client.topics.discard(private_topic(session.account.name))  # type: ignore[union-attr]
                session.account = None
            session.send({**head, "result": {"channel": CHANNEL}, "success": True, "time_in": time_in,
                          "time_out": rfc3339(self.clock())})  # type: ignore[attr-defined]
            return
        if subscribed:
            self._refuse(session, head, "Already subscribed", time_in)
            return
        options = {"snap_orders": params.get("snap_orders") is not False, "snap_trades": params.get("snap_trades") is True,
                   "order_status": params.get("order_status") is not False}  # the documented defaults
        session.state.update(options, token=params["token"], sequence=0)
        session.send({**head, "result": {"channel": CHANNEL, "snap_orders": options["snap_orders"],
                                         "snap_trades": options["snap_trades"]},
                      "success": True, "time_in": time_in, "time_out": rfc3339(self.clock())})  # type: ignore[attr-defined]
        session.authorize(account)
        session.send(self._frame(session, "snapshot", self._snapshot(account, options)))

    def _snapshot(self, account: Account, options: dict[str, bool]) -> list[dict[str, Any]]:
        rows = []
        if options["snap_orders"]:
            for order in sorted(self.core.open_orders(account), key=lambda o: o.ts_created):  # type: ignore[attr-defined]
                status = "partially_filled" if order.filled else "new"
                rows.append({**self._order_row(order), "exec_type": "new", "order_status": status,
                             **self._totals(order), "timestamp": rfc3339(order.ts_updated or order.ts_created)})
        if options["snap_trades"]:
            fills = sorted(self.core.fills(account), key=lambda of: of[1].ts)[-50:]  # type: ignore[attr-defined]
            rows.extend(self._trade_row(order, fill) for order, fill in fills)
        return rows

    def _frame(self, session: PrivateSession, kind: str, rows: list[dict[str, Any]]) -> str:
        session.state["sequence"] = session.state.get("sequence", 0) + 1
        return encode({"channel": CHANNEL, "type": kind, "data": rows, "sequence": session.state["sequence"]},
                      decimals_as_numbers=True).decode()

    # -- rows, from the REST dialect's own renderings ----------------------------------------
    def _ids(self, order: Order) -> dict[str, Any]:
        info = self.order_info(order)  # type: ignore[attr-defined]
        ids: dict[str, Any] = {"order_id": str(order.order_id), "order_userref": info["userref"]}
        if info["cl_ord_id"]:
            ids["cl_ord_id"] = info["cl_ord_id"]
        return ids

    def _order_row(self, order: Order) -> dict[str, Any]:
        spec = self.core.markets[order.symbol]  # type: ignore[attr-defined]
        info = self.order_info(order)  # type: ignore[attr-defined]
        row = {**self._ids(order), "symbol": f"{spec.base}/{spec.quote}", "order_qty": Decimal(info["vol"]),
               "cum_cost": Decimal(info["cost"]), "time_in_force": order.time_in_force.upper(),
               "side": order.side, "order_type": order.order_type, "post_only": order.post_only}
        if order.price is not None:
            row.update(limit_price_type="static", limit_price=Decimal(info["descr"]["price"]))
        return {**row, "fee_ccy_pref": "fciq"}

    def _totals(self, order: Order) -> dict[str, Any]:
        info = self.order_info(order)  # type: ignore[attr-defined]
        return {"cum_qty": Decimal(info["vol_exec"]), "cum_cost": Decimal(info["cost"]),
                "avg_price": Decimal(info["price"]), **self._fee_usd(order, Decimal(info["fee"]))}

    def _fee_usd(self, order: Order, fee: Decimal) -> dict[str, Any]:
        spec = self.core.markets[order.symbol]  # type: ignore[attr-defined]
        return {"fee_usd_equiv": fee} if spec.quote == "USD" else {}

    def _trade_row(self, order: Order, fill: Fill) -> dict[str, Any]:
        t = self.trade(order, fill)  # type: ignore[attr-defined]  # the TradesHistory entry of this fill
        spec = self.core.markets[order.symbol]  # type: ignore[attr-defined]
        done = order.status == "filled" and fill is order.fills[-1]
        return {**self._ids(order), "exec_id": self.trade_txid(fill),  # type: ignore[attr-defined]
                "exec_type": "trade", "trade_id": t["trade_id"], "symbol": f"{spec.base}/{spec.quote}",
                "side": order.side, "last_qty": Decimal(t["vol"]), "last_price": Decimal(t["price"]),
                "liquidity_ind": "m" if fill.is_maker else "t", "cost": Decimal(t["cost"]),
                "order_status": "filled" if done else "partially_filled", "order_type": order.order_type,
                **self._fee_usd(order, Decimal(t["fee"])),
                "fees": [{"asset": fill.fee_asset, "qty": Decimal(t["fee"])}], "timestamp": rfc3339(fill.ts)}

    # -- pushes ---------------------------------------------------------------------------
    def private_events(self, order: Order, fill: Fill | None, kind: str) -> list[Any]:
        """The docs' sequence: pending_new then new; each trade, then filled when it
        completed the order; canceled or expired."""
        now = rfc3339(order.ts_updated or order.ts_created)
        if kind == "new":
            return [{**self._order_row(order), "exec_type": "pending_new", "order_status": "pending_new",
                     "stop_price": Decimal(0), "fee_usd_equiv": Decimal(0), "timestamp": rfc3339(order.ts_created)},
                    {**self._ids(order), "exec_type": "new", "order_status": "new", "timestamp": rfc3339(order.ts_created)}]
        if kind == "trade" and fill is not None:
            rows = [self._trade_row(order, fill)]
            if order.status == "filled" and fill is order.fills[-1]:
                rows.append({**self._ids(order), "exec_type": "filled", "order_status": "filled",
                             **self._totals(order), "timestamp": rfc3339(fill.ts)})
            return rows
        if kind in ("canceled", "expired"):
            reason = self.order_info(order).get("reason") if kind == "canceled" else None  # type: ignore[attr-defined]
            row = {**self._ids(order), "exec_type": kind, "order_status": kind, **self._totals(order), "timestamp": now}
            if reason:
                row.update(cancel_reason=reason, reason=reason)
            return [row]
        return []

    def private_render(self, session: PrivateSession, order: Order, message: Any) -> str | bytes | None:
        if not session.state.get("order_status", True) and message["exec_type"] not in (
                "new", "trade", "filled", "canceled", "expired"):
            return None  # order_status false: only open / close transitions
        return self._frame(session, "update", [message])


__all__ = ["KrakenPrivate", "rfc3339"]
