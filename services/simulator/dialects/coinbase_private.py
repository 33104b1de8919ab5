"""Coinbase Advanced Trade's User Order Data WebSocket as the simulator speaks it: the ``user``
and ``heartbeats`` channels, authenticated by a JWT in each subscribe.

Followed (docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis): "WebSocket Overview" (one
``subscribe``/``unsubscribe`` message per channel: ``{"type", "channel", "product_ids",
"jwt"}``, no product ids = every product, answered by a ``subscriptions`` message listing
what the connection is subscribed to; a new JWT per message, valid 2 minutes), "WebSocket
Authentication" (the JWT of a REST request without ``uri``: verified here exactly as the
REST dialect verifies its bearer JWT, ``CoinbaseDialect.verify_jwt``), "WebSocket Channels"
(``heartbeats`` every second with a ``heartbeat_counter``; ``user``: a ``snapshot`` of the
open orders, then an ``update`` per change of an order, each order with ``order_id``,
``client_order_id``, ``cumulative_quantity``, ``leaves_quantity``, ``avg_price``,
``total_fees``, ``status``, ``product_id``, ``creation_time``, ``order_side``,
``order_type``...; every message carries the connection's ``sequence_num``), the AsyncAPI
description ``advanced-trade-asyncapi.json`` (as the production feed sends it: no
``client_id``, an integer ``heartbeat_counter``; the snapshot "in batches of 50"). A refused
JWT is answered ``{"type":"error","message":"authentication failure"}`` (the venue's text, as
coinbase-advanced-py issues #19 and #92 quote it). Orders carry the same ids, client ids and
numbers as the REST dialect's Get Order (``CoinbaseDialect._order``).

Guessed where the docs are silent: other refused subscribes are answered ``{"type": "error",
"message": "Failed to subscribe", "reason": ...}`` (Coinbase Exchange's form); an error leaves
the connection open; ``heartbeats`` needs no JWT, but one sent is verified; one account per
connection (a ``user`` subscribe with another key's JWT is refused); ``subscriptions`` comes
before the snapshot; ``subscriptions`` lists ``[]`` for a channel of every product; connections
without a subscribe for 5 s, and subscriptions idle for 60-90 s without heartbeats, are not
closed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, ClassVar

from services.simulator.config import Account
from services.simulator.core import Refusal
from services.simulator.matching import Fill, Order
from services.simulator.private_ws import PrivateSession, PrivateStreams, private_topic
from services.simulator.venue import encode

CHANNELS = ("user", "heartbeats")
AUTH_FAILURE = {"type": "error", "message": "authentication failure"}


def rfc3339_nanos(ns: int) -> str:
    """``2023-02-09T20:33:57.609931463Z``, as the WebSocket writes its ``timestamp``."""
    return datetime.fromtimestamp(ns // 10**9, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ns % 10**9:09d}Z"


class CoinbasePrivate(PrivateStreams):
    """Mixin of :class:`services.simulator.dialects.coinbase.CoinbaseDialect`: its user stream."""

    PRIVATE_WS_PATH = "/"  # wss://advanced-trade-ws-user.coinbase.com has no path
    HEARTBEAT_S: ClassVar[float] = 1.0
    SNAPSHOT_BATCH: ClassVar[int] = 50

    # the dialect provides core, clock, verify_jwt, _order and _tasks

    # -- client messages ------------------------------------------------------------------
    def private_message(self, session: PrivateSession, data: str | bytes) -> None:
        try:
            msg = json.loads(data)
        except ValueError:
            msg = None
        if not isinstance(msg, dict):
            self._failed(session, "malformed JSON")
            return
        kind, channel, products = msg.get("type"), msg.get("channel"), msg.get("product_ids", [])
        if kind not in ("subscribe", "unsubscribe"):
            self._failed(session, f"{str(kind)[:40]} is not a valid message type")
            return
        if not isinstance(channel, str) or channel not in CHANNELS:
            self._failed(session, f"{str(channel)[:40]} is not a valid channel")
            return
        if not isinstance(products, list) or not all(isinstance(p, str) for p in products):
            self._failed(session, "product_ids must be a list of product ids")
            return
        known = {m.venue_symbol for m in self.core.markets.values()}  # type: ignore[attr-defined]
        unknown = [p for p in products if p not in known]
        if unknown:
            self._failed(session, f"{unknown[0][:40]} is not a valid product")
            return
        account = self._jwt_account(msg.get("jwt"), required=channel == "user")
        if account is False or (channel == "user" and session.account not in (None, account)):
            session.send(AUTH_FAILURE)
            return
        subs: dict[str, set[str]] = session.state.setdefault("subs", {})
        had = subs.get(channel)  # None: not subscribed; empty: every product
        if kind == "subscribe":
            subs[channel] = set() if not products or had == set() else (had or set()) | set(products)
        elif had is not None:
            left = had - set(products)
            if not products or (had and not left):
                del subs[channel]
            elif had:
                subs[channel] = left  # some products off a subscription of every product: still every product
        self._send(session, "subscriptions", [{"subscriptions": {c: sorted(p) for c, p in subs.items()}}])
        if channel == "user":
            if kind == "subscribe":
                assert isinstance(account, Account)
                session.authorize(account)
                self._snapshot(session, account)
            elif "user" not in subs and session.account is not None:
                session.client.topics.discard(private_topic(session.account.name))
                session.account = None
        elif kind == "subscribe" and "beating" not in session.state:
            session.state["beating"] = self._start(self._heartbeats(session))

    def _jwt_account(self, token: Any, *, required: bool) -> Account | None | bool:
        """The account of the message's JWT; None without one where none is needed; False: refused."""
        if token is None and not required:
            return None
        if not isinstance(token, str):
            return False
        try:
            return self.verify_jwt(token, self.clock(), None)  # type: ignore[attr-defined,no-any-return]
        except Refusal:
            return False

    def _failed(self, session: PrivateSession, reason: str) -> None:
        session.send({"type": "error", "message": "Failed to subscribe", "reason": reason})

    def _send(self, session: PrivateSession, channel: str, events: list[Any]) -> None:
        session.send(self._envelope(session, channel, events))

    def _envelope(self, session: PrivateSession, channel: str, events: list[Any]) -> dict[str, Any]:
        """A channel's message with this connection's next ``sequence_num``."""
        seq = session.state.setdefault("seq", itertools.count())
        return {"channel": channel, "timestamp": rfc3339_nanos(self.clock()), "sequence_num": next(seq),  # type: ignore[attr-defined]
                "events": events}

    def _snapshot(self, session: PrivateSession, account: Account) -> None:
        """The account's open orders (of the subscribed products), in batches of 50."""
        rows = [self._user_order(o) for o in self.core.account_orders(account)  # type: ignore[attr-defined]
                if o.is_open and self._wanted(session, o)]
        for start in range(0, max(len(rows), 1), self.SNAPSHOT_BATCH):
            self._send(session, "user", [{"type": "snapshot", "orders": rows[start:start + self.SNAPSHOT_BATCH]}])

    def _start(self, coro: Any) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.append(task)  # type: ignore[attr-defined]  # cancelled when the dialect stops
        task.add_done_callback(self._tasks.remove)  # type: ignore[attr-defined]
        return task

    async def _heartbeats(self, session: PrivateSession) -> None:
        """One ``heartbeats`` message a second while the connection is subscribed to them."""
        started = self.clock()  # type: ignore[attr-defined]
        for counter in itertools.count(1):
            if session not in self.private_sessions or "heartbeats" not in session.state.get("subs", {}):
                break
            now = self.clock()  # type: ignore[attr-defined]
            current = rfc3339_nanos(now).replace("T", " ").removesuffix("Z") + f" +0000 UTC m=+{(now - started) / 1e9:.9f}"
            self._send(session, "heartbeats", [{"current_time": current, "heartbeat_counter": counter}])
            await asyncio.sleep(self.HEARTBEAT_S)
        session.state.pop("beating", None)

    # -- pushes ---------------------------------------------------------------------------
    def private_events(self, order: Order, fill: Fill | None, kind: str) -> list[Any]:
        """One ``update`` of the order per engine update, its totals after it."""
        return [{"type": "update", "orders": [self._user_order(order)]}]

    def private_render(self, session: PrivateSession, order: Order, message: Any) -> str | bytes | None:
        if "user" not in session.state.get("subs", {}) or not self._wanted(session, order):
            return None
        return encode(self._envelope(session, "user", [message])).decode()

    def _wanted(self, session: PrivateSession, order: Order) -> bool:
        products = session.state.get("subs", {}).get("user", set())
        return not products or self.core.markets[order.symbol].venue_symbol in products  # type: ignore[attr-defined]

    def _user_order(self, o: Order) -> dict[str, Any]:
        """The order as the ``user`` channel writes it, from the REST dialect's own row."""
        r = self._order(o)  # type: ignore[attr-defined]
        config = next(iter(r["order_configuration"].values()), {})
        leaves = o.quantity - o.filled if o.quantity is not None and o.is_open else Decimal(0)
        return {
            "order_id": r["order_id"], "client_order_id": r["client_order_id"],
            "contract_expiry_type": "UNKNOWN_CONTRACT_EXPIRY_TYPE", "cumulative_quantity": r["filled_size"],
            "leaves_quantity": leaves, "avg_price": r["average_filled_price"], "total_fees": r["total_fees"],
            "status": r["status"], "product_id": r["product_id"], "product_type": "SPOT",
            "creation_time": r["created_time"], "order_side": r["side"], "order_type": r["order_type"].title(),
            "risk_managed_by": "UNKNOWN_RISK_MANAGEMENT_TYPE", "time_in_force": r["time_in_force"],
            "trigger_status": r["trigger_status"], "cancel_reason": r["cancel_message"], "reject_reason": "",
            "total_value_after_fees": r["total_value_after_fees"], "number_of_fills": r["number_of_fills"],
            "filled_value": r["filled_value"], "limit_price": config.get("limit_price", ""), "stop_price": "",
            "post_only": config.get("post_only") is True, "outstanding_hold_amount": r["outstanding_hold_amount"],
            "completion_percentage": r["completion_percentage"], "retail_portfolio_id": r["retail_portfolio_id"],
        }


__all__ = ["CoinbasePrivate", "rfc3339_nanos"]
