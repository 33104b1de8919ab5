"""Private order streams run by the tracker's leader: one WebSocket per (venue, account)
that has open orders, on venues with a private stream (services.venues.privatews).

Each session opens the venue's stream (Binance: a listenKey from REST, kept alive every
30 minutes; Upbit: a JWT in the handshake), subscribes, and hands every order update to
:class:`~services.executor.order_changes.OrderChanges`, which records and publishes it
once. When the stream drops, the session reconnects with exponential backoff and jitter.

Polling stays the truth the stream is checked against. A stream *follows* an order once
the order's current state is known on that connection: it reported an update of the order
(every update carries the cumulative state), or a poll that started after the stream was
ready brought the order up to date (so whatever changed while no stream listened is
reconciled). Orders a ready stream does not follow are polled, and all of them are again
whenever the stream is down. REST calls of a session take leases from the fleet's shared
rate limits.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from services.executor.gateway import DEFAULT_BACKOFF_S, DEFAULT_BAN_S, VenueGateway
from services.executor.order_changes import OrderChanges
from services.ingestor.transport import Backoff
from services.logs import get_logger
from services.venues.base import HttpRequest
from services.venues.errors import RateLimited, VenueError
from services.venues.privatews import OrderUpdate, PrivateStream, StreamReady, private_stream
from services.venues.wsbase import VenueNotice

log = get_logger("order_streams")

RECONNECT_INITIAL_S = 0.5
RECONNECT_MAX_S = 30.0
FOLLOW_TTL_S = 300.0
"""An order followed but not tracked (still being placed, or ended) is forgotten after this."""
IDLE_S = 120.0
"""A stream whose account has no open order left is kept this long (a new order soon
would otherwise cost a new listenKey and handshake)."""
MAX_FRAME_BYTES = 1 << 20


class StreamSession:
    """The private stream of one (venue, account), reconnecting until stopped."""

    def __init__(self, venue: str, account: str, adapter: PrivateStream, gateway: VenueGateway,
                 changes: OrderChanges, notify: Callable[[], None]) -> None:
        self.venue = venue
        self.account = account
        self.adapter = adapter
        self.gateway = gateway
        self.changes = changes
        self.notify = notify
        self.ready_at: float | None = None
        """Monotonic time the current connection's subscription came into force (None: down)."""
        self.followed: dict[str, float] = {}
        """Client order ids whose current state this connection knows -> monotonic time since."""
        self.connects = 0
        self.updates = 0
        self.wanted_at = time.monotonic()
        self.task: asyncio.Task[None] | None = None

    def covers(self, client_order_id: str) -> bool:
        """The stream alone keeps this order current (no polling needed)."""
        return self.ready_at is not None and client_order_id in self.followed

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name=f"private-stream-{self.venue}-{self.account}")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        self._down()

    async def run(self) -> None:
        backoff = Backoff(RECONNECT_INITIAL_S, RECONNECT_MAX_S)
        while True:
            opened = time.monotonic()
            try:
                reason = await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # any failure: poll meanwhile, reconnect later
                reason = _describe(e)
            self._down()
            if time.monotonic() - opened > RECONNECT_MAX_S:
                backoff.reset()
            delay = backoff.next()
            log.info("private stream down, polling meanwhile", venue=self.venue, account=self.account,
                     reason=reason, retry_s=round(delay, 2))
            await asyncio.sleep(delay)

    async def _session(self) -> str:
        """One connection, from opening the stream to its end; returns why it ended."""
        creds = await self.gateway.credentials.get(self.venue, self.account)
        token = None
        opening = self.adapter.open_request(creds, _now_ms())
        if opening is not None:
            token = await self._rest("open", opening, self.adapter.parse_open)
        target = self.adapter.connection(token, creds, _now_ms())
        async with connect(target.url, additional_headers=target.headers, max_size=MAX_FRAME_BYTES,
                           ping_interval=self.adapter.keepalive.interval_s, ping_timeout=20.0,
                           open_timeout=10.0, close_timeout=2.0) as ws:
            self.connects += 1
            self.followed.clear()
            for message in self.adapter.subscribe_messages():
                await ws.send(message)
            if self.adapter.ready_on_connect:
                self._ready()
            keepalive = None
            if token is not None and self.adapter.session_keepalive_s:
                keepalive = asyncio.create_task(self._keep_alive(ws, token, creds))
            try:
                return await self._read(ws)
            finally:
                if keepalive is not None:
                    keepalive.cancel()
                    await asyncio.gather(keepalive, return_exceptions=True)

    async def _read(self, ws: ClientConnection) -> str:
        try:
            async for data in ws:
                try:
                    events = self.adapter.parse_frame(data, time.time_ns())
                except (msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError) as e:
                    # an order frame we cannot read may hide a change: poll this account again
                    log.warning("unreadable private stream frame", venue=self.venue, error=str(e)[:200])
                    self.followed.clear()
                    self.notify()
                    continue
                for event in events:
                    if isinstance(event, OrderUpdate):
                        self.updates += 1
                        await self.changes.apply(self.venue, self.account, event)
                        if event.client_order_id:
                            self.followed.setdefault(event.client_order_id, time.monotonic())
                    elif isinstance(event, StreamReady):
                        self._ready()
                    elif isinstance(event, VenueNotice) and event.kind in ("reconnect", "error"):
                        return event.message
        except ConnectionClosed as e:
            return _describe(e)
        return "closed by the venue"

    async def _keep_alive(self, ws: ClientConnection, token: str, creds: Any) -> None:
        """The venue's REST keep-alive of the session; a refused one ends the connection."""
        assert self.adapter.session_keepalive_s is not None
        while True:
            await asyncio.sleep(self.adapter.session_keepalive_s)
            request = self.adapter.keepalive_request(token, creds, _now_ms())
            if request is None:
                return
            try:
                await self._rest("keepalive", request, lambda s, h, b: self.adapter.rest_result("user_stream", s, h, b))
            except VenueError as e:
                log.warning("stream keep-alive refused; reconnecting", venue=self.venue, error=str(e))
                await ws.close()
                return

    async def _rest(self, what: str, request: HttpRequest, parse: Callable[[int, dict[str, str], bytes], Any]) -> Any:
        """One REST call of the session under the fleet's rate-limit leases; raises VenueError."""
        rest = self.adapter.rest
        limiter = self.gateway.limiter
        await limiter.acquire(self.venue, self.account, rest.rate_limits, self.adapter.rest_cost)
        response = await self.gateway.transport.send(request, idempotent=True)
        headers = {k.lower(): v for k, v in response.headers.items()}
        await limiter.observe(self.venue, self.account, rest.rate_limits, headers)
        result = parse(response.status, headers, response.body)
        if isinstance(result, RateLimited):
            wait = result.retry_after or (DEFAULT_BAN_S if result.banned else DEFAULT_BACKOFF_S)
            await limiter.block(self.venue, self.account, wait, reason=str(result))
        if isinstance(result, VenueError):
            raise result
        return result

    def _ready(self) -> None:
        self.ready_at = time.monotonic()
        log.info("private stream ready", venue=self.venue, account=self.account)
        self.notify()

    def _down(self) -> None:
        if self.ready_at is not None or self.followed:
            self.ready_at = None
            self.followed.clear()
            self.notify()


class OrderStreams:
    """The leader's private stream sessions, started for accounts with open orders."""

    def __init__(self, gateway: VenueGateway, changes: OrderChanges, *, idle_s: float = IDLE_S) -> None:
        self.gateway = gateway
        self.changes = changes
        self.idle_s = idle_s
        self.sessions: dict[tuple[str, str], StreamSession] = {}
        self._adapters: dict[str, PrivateStream | None] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()

    def adapter(self, venue: str) -> PrivateStream | None:
        """The venue's private stream adapter (None: it has none; its orders are polled)."""
        if venue not in self._adapters:
            try:
                self._adapters[venue] = private_stream(venue, self.gateway.adapter(venue))
            except ValueError:
                self._adapters[venue] = None
        return self._adapters[venue]

    def sync(self, open_orders: dict[tuple[str, str], set[str]]) -> None:
        """Streams for the (venue, account)s with open orders (their client order ids);
        the others stop once idle."""
        now = time.monotonic()
        for (venue, account), client_order_ids in open_orders.items():
            session = self.sessions.get((venue, account))
            if session is None:
                adapter = self.adapter(venue)
                if adapter is None:
                    continue
                session = self.sessions[(venue, account)] = StreamSession(
                    venue, account, adapter, self.gateway, self.changes, self._notify)
                session.start()
            session.wanted_at = now
            for client_order_id, since in list(session.followed.items()):
                if client_order_id not in client_order_ids and now - since > FOLLOW_TTL_S:
                    del session.followed[client_order_id]
        for key, session in list(self.sessions.items()):
            if key not in open_orders and now - session.wanted_at > self.idle_s:
                del self.sessions[key]
                task = asyncio.create_task(session.stop())
                self._stopping.add(task)
                task.add_done_callback(self._stopping.discard)

    def covers(self, venue: str, account: str, client_order_id: str) -> bool:
        """True when the account's stream keeps this order current, so it is not polled."""
        session = self.sessions.get((venue, account))
        return session is not None and session.covers(client_order_id)

    def reconciled(self, venue: str, account: str, since: float, client_order_ids: set[str]) -> None:
        """A poll that started at monotonic ``since`` brought these orders up to date: the
        account's stream, if it was ready by then, follows them from now on."""
        session = self.sessions.get((venue, account))
        if session is None or session.ready_at is None or since < session.ready_at:
            return
        now = time.monotonic()
        for client_order_id in client_order_ids:
            session.followed.setdefault(client_order_id, now)
        self._notify()

    async def close(self) -> None:
        """Stop every session (the replica is no longer the tracker's leader, or stops)."""
        sessions, self.sessions = list(self.sessions.values()), {}
        await asyncio.gather(*(s.stop() for s in sessions))

    async def until(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Return once ``predicate()`` holds (checked at every change of a stream's state)."""
        async def wait() -> None:
            while True:
                changed = self._changed
                if predicate():
                    return
                await changed.wait()

        await asyncio.wait_for(wait(), timeout)

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _describe(e: BaseException) -> str:
    """Why a connection ended, without URLs (a listenKey is in the path) or headers."""
    if isinstance(e, ConnectionClosed):
        rcvd = e.rcvd
        return f"closed by the venue ({rcvd.code} {rcvd.reason})".rstrip() if rcvd else "connection lost"
    if isinstance(e, VenueError):
        return f"{type(e).__name__}: {e}"
    status = getattr(getattr(e, "response", None), "status_code", None)
    if status is not None:
        return f"{type(e).__name__}: HTTP {status}"
    return type(e).__name__ if "://" in str(e) else f"{type(e).__name__}: {e}"
