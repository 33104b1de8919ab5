"""Private order streams run by the tracker's leader: one WebSocket per (venue, account)
that has open orders, on venues with a private stream (services.venues.privatews).

Each session opens the venue's stream (a REST token where the venue wants one: Kraken;
auth headers in the handshake: Upbit, Bithumb, Korbit, Coinone; a signed message after
connecting: Binance, Coinbase, Bitfinex, OKX), subscribes, keeps the connection alive the
venue's way, and hands every order update to
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

from services.executor.gateway import VenueGateway
from services.executor.order_changes import OrderChanges
from services.ingestor.transport import Backoff
from services.logs import get_logger
from services.venues.errors import VenueError
from services.venues.privatews import OrderUpdate, PrivateStream, Send, StreamReady, private_stream
from services.venues.wsbase import KeepAlive, VenueNotice

log = get_logger("order_streams")

RECONNECT_INITIAL_S = 0.5
RECONNECT_MAX_S = 30.0
FOLLOW_TTL_S = 300.0
"""An order followed but not tracked (still being placed, or ended) is forgotten after this."""
IDLE_S = 120.0
"""A stream whose account has no open order left is kept this long (a new order soon
would otherwise cost a new token, handshake and login)."""
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
        self.unreadable = 0
        """Frames skipped because they could not be read (never applied, never a fill)."""
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
        creds = await self.gateway.credentials_for(self.venue, self.account)
        token = None
        if self.adapter.open_op is not None:  # a REST call first (Kraken's WebSocket token)
            token = await self.gateway.call(self.venue, self.account, self.adapter.open_op, None)
        nonce = await self.gateway.next_nonce(self.venue, creds) if self.adapter.rest.shared_nonce else None
        target = self.adapter.connection(token, creds, _now_ms())
        ws_pings = self.adapter.keepalive.interval_s if self.adapter.keepalive.message is None else None
        async with connect(target.url, additional_headers=target.headers, max_size=MAX_FRAME_BYTES,
                           ping_interval=ws_pings, ping_timeout=20.0,
                           open_timeout=10.0, close_timeout=2.0) as ws:
            self.connects += 1
            self.followed.clear()
            for message in self.adapter.subscribe_messages(creds, token, _now_ms(), nonce):
                await ws.send(message)
            if self.adapter.ready_on_connect:
                self._ready()
            pinger = None
            if self.adapter.keepalive.message is not None:
                pinger = asyncio.create_task(self._ping(ws, self.adapter.keepalive))
            try:
                if self.adapter.max_session_s is None:
                    return await self._read(ws)
                try:  # the venue's connection limit: leave a little before it
                    return await asyncio.wait_for(self._read(ws), self.adapter.max_session_s * 0.99)
                except asyncio.TimeoutError:
                    return "connection age limit"
            finally:
                if pinger is not None:
                    pinger.cancel()
                    await asyncio.gather(pinger, return_exceptions=True)

    async def _read(self, ws: ClientConnection) -> str:
        try:
            async for data in ws:
                try:
                    events = self.adapter.parse_frame(data, time.time_ns())
                except (msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError) as e:
                    # an order frame we cannot read may hide a change: poll this account again
                    self.unreadable += 1
                    log.warning("unreadable private stream frame skipped", venue=self.venue, account=self.account,
                                error=type(e).__name__, bytes=len(data))
                    self.followed.clear()
                    self.notify()
                    continue
                for event in events:
                    if isinstance(event, OrderUpdate):
                        self.updates += 1
                        await self.changes.apply(self.venue, self.account, event)
                        owner = self.changes.owner(self.venue, self.account, event)
                        if owner:
                            self.followed.setdefault(owner, time.monotonic())
                    elif isinstance(event, StreamReady):
                        self._ready()
                    elif isinstance(event, Send):
                        await ws.send(event.message)
                    elif isinstance(event, VenueNotice) and event.kind in ("reconnect", "error"):
                        return event.message
        except ConnectionClosed as e:
            return _describe(e)
        return "closed by the venue"

    @staticmethod
    async def _ping(ws: ClientConnection, keepalive: KeepAlive) -> None:
        """The venue's application-level ping, every ``interval_s``."""
        assert keepalive.message is not None
        while True:
            await asyncio.sleep(keepalive.interval_s)
            await ws.send(keepalive.message)

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

    def __init__(self, gateway: VenueGateway, changes: OrderChanges, *, idle_s: float = IDLE_S,
                 poll_only: list[str] | None = None) -> None:
        self.gateway = gateway
        self.poll_only = set(poll_only or ())
        """Venues whose streams are not run (their orders are polled)."""
        self.changes = changes
        self.idle_s = idle_s
        self.sessions: dict[tuple[str, str], StreamSession] = {}
        self._adapters: dict[str, PrivateStream | None] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()

    def adapter(self, venue: str) -> PrivateStream | None:
        """The venue's private stream adapter (None: it has none; its orders are polled)."""
        if venue in self.poll_only:
            return None
        if venue not in self._adapters:
            try:
                self._adapters[venue] = private_stream(venue, self.gateway.adapter(venue),
                                                       self.gateway.private_stream_url(venue))
            except ValueError:  # also NoTestnet: the venue's testnet has no private stream
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
    """Why a connection ended, without URLs (a token may be in the query) or headers."""
    if isinstance(e, ConnectionClosed):
        rcvd = e.rcvd
        return f"closed by the venue ({rcvd.code} {rcvd.reason})".rstrip() if rcvd else "connection lost"
    if isinstance(e, VenueError):
        return f"{type(e).__name__}: {e}"
    status = getattr(getattr(e, "response", None), "status_code", None)
    if status is not None:
        return f"{type(e).__name__}: HTTP {status}"
    return type(e).__name__ if "://" in str(e) else f"{type(e).__name__}: {e}"
