"""Private order streams as every simulated venue serves them: what they have in common.

A dialect that serves its venue's private WebSocket mixes in :class:`PrivateStreams` and
declares only what differs:

- ``PRIVATE_WS_PATH``: the route (the venue's path, on the dialect's own port);
- ``private_handshake``: authentication in the upgrade request (Upbit's bearer JWT,
  Korbit's signed query, Coinone's signed headers); a Refusal there is answered as the
  venue's HTTP error, without upgrading. Venues that authenticate in a message return
  None here;
- ``private_message``: one client message (login, subscribe, ping) on a
  :class:`PrivateSession`: it answers with ``session.send`` and, once the client is
  authenticated and subscribed, calls ``session.authorize(account)``;
- ``private_events``: the venue's messages for one engine update of an order (new,
  trade, canceled, expired), in the order the venue sends them;
- ``private_render`` (optional): one such message for one session (channel filters,
  per-connection sequence numbers); the default sends it as JSON.

The core's order listener pushes every update of an account's order to the sessions
authorized for that account, through the dialect's hub (bounded queue per connection,
slow consumers disconnected). :meth:`PrivateStreams.drop_private` closes every private
connection and ``private_refused`` refuses new ones (tests of recovery after a drop);
``push_log`` (``GET /__sim/pushes``) says when each fill was pushed (benchmarks).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from services.simulator.config import Account
from services.simulator.core import Refusal
from services.simulator.dialect import Req
from services.simulator.matching import Fill, Order
from services.simulator.streams import StreamClient
from services.simulator.venue import encode, json_response


@dataclass(eq=False)
class PrivateSession:
    """One private WebSocket connection: who it is, what it asked for."""

    client: StreamClient
    account: Account | None = None
    """The authenticated account (from the handshake, or set by ``authorize``)."""
    state: dict[str, Any] = field(default_factory=dict)
    """Whatever the dialect keeps per connection (subscribed channels, sequence numbers)."""
    pushed: int = 0

    def send(self, message: Any) -> None:
        """Send a reply now (JSON unless it is already text or bytes)."""
        self.client.send(message if isinstance(message, (str, bytes)) else encode(message).decode())

    def authorize(self, account: Account) -> None:
        """From now on, the account's order updates are pushed to this connection."""
        self.account = account
        self.client.topics.add(private_topic(account.name))

    def close(self) -> None:
        self.client.close()


def private_topic(account: str) -> str:
    return f"private:{account}"


class PrivateStreams:
    """Mixin of a :class:`~services.simulator.dialect.Dialect` serving its private stream."""

    PRIVATE_WS_PATH: ClassVar[str]

    # -- what a dialect implements --------------------------------------------------------

    async def private_handshake(self, req: Req) -> Account | None:
        """The account the upgrade request authenticates (raise Refusal to refuse it), or
        None when the venue authenticates in a message."""
        return None

    def private_message(self, session: PrivateSession, data: str | bytes) -> None:
        """Handle one client message (login, subscribe, ping)."""
        raise NotImplementedError

    def private_events(self, order: Order, fill: Fill | None, kind: str) -> list[Any]:
        """The venue's messages for one engine update (``kind``: new, trade, canceled, expired)."""
        raise NotImplementedError

    def private_render(self, session: PrivateSession, order: Order, message: Any) -> str | bytes | None:
        """``message`` as sent to ``session`` (None: not for it)."""
        return message if isinstance(message, (str, bytes)) else encode(message).decode()

    # -- shared ---------------------------------------------------------------------------

    def init_private(self) -> None:
        """Push order updates to the private sessions (call from the dialect's constructor)."""
        self.private_sessions: set[PrivateSession] = set()
        self.push_log: deque[dict[str, Any]] = deque(maxlen=10_000)
        """The latest pushes of a fill: client order id (the venue's form), trade id, when (ns)."""
        self.private_refused = False
        """True: new private connections are answered 503 (the venue's stream is down)."""
        self.core.listeners.append(self._push_private)  # type: ignore[attr-defined]

    def add_private_route(self, app: web.Application) -> None:
        app.router.add_get(self.PRIVATE_WS_PATH, self._private_ws)

    def drop_private(self) -> int:
        """Close every private connection (as a network failure would); how many."""
        sessions = list(self.private_sessions)
        for session in sessions:
            session.close()
        return len(sessions)

    async def _private_ws(self, request: web.Request) -> web.StreamResponse:
        req = Req(request, request.method, request.path, request.rel_url.raw_query_string, b"",
                  self.clock())  # type: ignore[attr-defined]
        if self.private_refused:
            return web.Response(status=503, body=self.error_body(503), content_type="application/json")  # type: ignore[attr-defined]
        try:
            account = await self.private_handshake(req)
        except Refusal as r:
            status, body, headers = self.refuse(r, req)  # type: ignore[attr-defined]
            return json_response(body, status, headers=headers)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        session: PrivateSession

        def render(topic: str, event: Any) -> str | bytes | None:
            order, message = event
            frame = self.private_render(session, order, message)
            if frame is not None:
                session.pushed += 1
            return frame

        client = StreamClient(ws, render)
        session = PrivateSession(client)
        if account is not None:
            session.authorize(account)
        self.private_sessions.add(session)
        self.hub.add(client)  # type: ignore[attr-defined]
        try:
            await self.hub.serve(client, lambda c, data: self._private_message(session, data))  # type: ignore[attr-defined]
        finally:
            self.private_sessions.discard(session)
        return ws

    def _private_message(self, session: PrivateSession, data: str | bytes) -> None:
        had = session.account
        self.private_message(session, data)
        if session.account is not had:
            self.hub.touched()  # type: ignore[attr-defined]

    def _push_private(self, order: Order, fill: Fill | None, kind: str) -> None:
        topic = private_topic(order.account)
        if not self.hub.has(topic):  # type: ignore[attr-defined]
            return
        for message in self.private_events(order, fill, kind):
            self.hub.publish(topic, (order, message))  # type: ignore[attr-defined]
        if fill is not None:
            self.push_log.append({"client_order_id": order.client_order_id, "order_id": str(order.order_id),
                                  "trade_id": fill.trade_id, "ts_ns": time.time_ns()})


__all__ = ["PrivateSession", "PrivateStreams", "private_topic"]
