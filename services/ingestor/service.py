"""The ingestor service: venue feeds in, normalized market data out on NATS.

    md.<venue>.<channel>.<symbol>   Trade, Ticker, BookSnapshot/BookDelta, BBO
    md.<venue>.status               FeedStatus (connected, disconnected, gap, resynced, stale, trades_missed)

``run_ingestor(nc, settings, stop)`` runs every configured venue in one process until
``stop`` is set. Each venue is a :class:`~services.ingestor.feed.Feed` (sans-IO) driven
by :class:`~services.ingestor.transport.WsConnection` tasks; REST snapshots for resync
are fetched per symbol under the venue's rate budget. Market data goes out on core
NATS (the ``MD`` stream captures it when enabled).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Literal, Sequence

import msgspec

from schemas import encode, subjects
from schemas.market import FeedStatus
from services.config import Config
from services.ingestor.feed import CHANNEL_OF_MESSAGE, Actions, Feed, FeedStats, Published
from services.ingestor.settings import FeedSettings, IngestorSettings
from services.ingestor.snapshots import RateBudget, RestSnapshots, SnapshotSource
from services.ingestor.transport import Backoff, Tap, WsConnection
from services.logs import get_logger
from services.observability.alerts import AlertPublisher
from services.observability.catalog import INGESTOR as METRICS
from services.venues.environments import Endpoints, NoTestnet, endpoints, feed_uses_rest, require
from services.venues.wsbase import WsAdapter, ws_adapter

if TYPE_CHECKING:
    from services.ingestor.ownership import FeedOwnership

log = get_logger("ingestor")


class FeedSpec(msgspec.Struct, kw_only=True):
    """One venue to ingest (from the config file or the command line)."""

    venue: str
    symbols: list[str]
    channels: list[str]
    url: str = ""
    rest_url: str = ""
    max_streams_per_connection: int = 0
    prepare: Callable[[WsAdapter], None] | None = None
    """Adjusts each new adapter (replay: the recorded book depth)."""
    environment: str = "live"
    """``testnet``: the venue's test endpoints where ``url`` / ``rest_url`` are not given
    (services.venues.environments)."""
    replayed: bool = False
    """Recorded traffic served again: its venue times are old, so no feed lag is measured."""


def specs_from_settings(settings: IngestorSettings, environments: dict[str, str] | None = None) -> list[FeedSpec]:
    """The feeds an ``[ingestor]`` config section asks for, each venue in its environment
    (``[venues.<venue>]``, live unless configured)."""
    environments = environments or {}
    return [
        FeedSpec(venue=venue, symbols=f.symbols, channels=f.channels, url=f.url, rest_url=f.rest_url,
                 max_streams_per_connection=f.max_streams_per_connection,
                 prepare=_with_depth(f.book_depth) if f.book_depth else None,
                 environment=environments.get(venue, "live"))
        for venue, f in settings.venues.items()
    ]


def feed_endpoints(spec: FeedSpec) -> Endpoints:
    """Where a feed connects: its explicit URLs, else its environment's (the venue's own when
    live). Raises NoTestnet for a testnet venue without a market-data WebSocket, or without
    the REST its feed uses (snapshots, trade backfill): those never go to the live host."""
    where = endpoints(spec.venue, spec.environment, rest_url=spec.rest_url or None, ws_url=spec.url or None)
    require(spec.venue, spec.environment, "WebSocket", where.ws_url)
    if where.rest_url is None and feed_uses_rest(spec.venue):
        require(spec.venue, spec.environment, "market-data REST", where.rest_url)
    return where


def runnable(specs: list[FeedSpec]) -> list[FeedSpec]:
    """The feeds that can run: a testnet venue without test endpoints is refused, with an
    error naming it (never connected to live)."""
    ok = []
    for spec in specs:
        try:
            feed_endpoints(spec)
        except NoTestnet as e:
            log.error("venue refused", venue=spec.venue, environment=spec.environment, error=str(e))
            continue
        ok.append(spec)
    METRICS.environments.update({spec.venue: spec.environment for spec in ok})
    return ok


def _with_depth(depth: int) -> Callable[[WsAdapter], None]:
    def prepare(adapter: WsAdapter) -> None:
        if adapter.book_depth is None:
            raise ValueError(f"{adapter.venue}: book_depth is not a setting of this venue")
        adapter.book_depth = depth  # type: ignore[misc]

    return prepare


def check_specs(specs: list[FeedSpec]) -> None:
    """Raise ValueError naming the first venue, channel or symbol that cannot be ingested."""
    from schemas.subjects import SubjectError

    for spec in specs:
        ws_adapter(spec.venue)
        feed_endpoints(spec)
        unknown = set(spec.channels) - {"trade", "ticker", "book", "bbo"}
        if unknown or not spec.channels:
            raise ValueError(f"{spec.venue}: channels must be among trade, ticker, book, bbo (got {spec.channels})")
        if not spec.symbols:
            raise ValueError(f"{spec.venue}: no symbols")
        for symbol in spec.symbols:
            try:
                subjects.md(spec.venue, "trade", symbol)
            except SubjectError:
                raise ValueError(f"{spec.venue}: {symbol!r} is not a BASE-QUOTE symbol") from None


LINGER_TURNS = 4
"""Event-loop turns without a new message after which a batch is handed to the client: a
frame takes about three turns from the socket to ``publish``, so frames that arrive back
to back share one batch (one socket write), while an idle loop turns in microseconds."""
MAX_LINGER_S = 0.0002
"""A batch waits at most this long for more messages (latency added under full load)."""
MAX_BATCH_BYTES = 256 * 1024


def batch_writer(nc: Any) -> Callable[[list[tuple[str, bytes]]], Awaitable[None]] | None:
    """A faster way to send a batch of ``(subject, payload)`` on a nats-py client, or None
    when this client does not have the internals it uses.

    nats-py's ``publish`` validates the subject, builds one PUB command and appends it to
    the client's pending buffer for each message (about 1.7 us a message here). This builds
    the PUB commands of the whole batch (the same bytes ``nats.protocol.command.pub_cmd``
    makes: ``PUB <subject>  <size>``, CRLF, payload, CRLF) and appends them once, through the
    client's own ``_send_command`` and flusher, so ordering, buffering limits and flushes
    are the client's. Subjects come from schemas.subjects (valid by construction);
    a payload over the server's max_payload takes the public path, which refuses it.
    Both paths put the same bytes on the wire (tests/ingestor/test_publisher.py)."""
    send, flush_pending = getattr(nc, "_send_command", None), getattr(nc, "_flush_pending", None)
    if send is None or flush_pending is None or not hasattr(nc, "_flush_queue") or not hasattr(nc, "stats"):
        return None
    encoded: dict[str, bytes] = {}

    async def write(batch: list[tuple[str, bytes]]) -> None:
        limit = nc._max_payload
        if any(len(payload) > limit for _, payload in batch):
            for subject, payload in batch:
                await nc.publish(subject, payload)  # raises MaxPayloadError where it belongs
            return
        parts = []
        size = 0
        for subject, payload in batch:
            head = encoded.get(subject)
            if head is None:
                head = encoded[subject] = f"PUB {subject}  ".encode()
                if len(encoded) > 100_000:
                    encoded.clear()
            parts.append(b"%b%d\r\n%b\r\n" % (head, len(payload), payload))
            size += len(payload)
        nc.stats["out_msgs"] += len(batch)
        nc.stats["out_bytes"] += size
        await send(b"".join(parts))
        if nc._flush_queue is not None and nc._flush_queue.empty():
            await flush_pending()

    return write


class Publisher:
    """Publishes market data on core NATS, in batches.

    ``publish`` (synchronous) encodes the messages and queues them; a writer task hands a batch to the
    client once the feeds paused for ``LINGER_TURNS`` loop turns (or ``MAX_LINGER_S``, or
    ``MAX_BATCH_BYTES``), so nats-py sends it in one socket write instead of one per frame,
    in order and without waiting for acknowledgements. A client error while writing is
    raised by the next ``publish``; ``flush`` sends what is queued and waits for the server.
    """

    def __init__(self, nc: Any, may_publish: Callable[[], bool] | None = None) -> None:
        self.nc = nc
        self.may_publish = may_publish
        """None, or whether messages may go out now (a shared feed's lease: services.ingestor.ownership)."""
        self.fenced = 0
        """Messages dropped because ``may_publish`` said no."""
        self.published: Counter[tuple[str, str]] = Counter()
        self._routes: dict[tuple[type, str, str | None], tuple[str, tuple[str, str], Any]] = {}
        self._batch: list[tuple[str, bytes]] = []
        self._batch_bytes = 0
        self._writer: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self._raw: Callable[[list[tuple[str, bytes]]], Awaitable[None]] | Literal[False] | None = None
        """The batch path of :func:`batch_writer` (False: this client has none)."""

    def _route(self, message: Published) -> tuple[str, tuple[str, str], Any]:
        """Where a message goes and what counts it: (subject, (venue, channel), its
        ``exbus_md_messages_total`` series), cached per message type, venue and symbol."""
        key = (type(message), message.venue, message.symbol)
        route = self._routes.get(key)
        if route is None:
            if isinstance(message, FeedStatus):
                subject, channel = subjects.md_status(message.venue), "status"
            else:
                channel = CHANNEL_OF_MESSAGE[type(message)]
                subject = subjects.md(message.venue, channel, message.symbol)
            route = self._routes[key] = (subject, (message.venue, channel), METRICS.messages.labels(message.venue, channel))
        return route

    def publish(self, messages: Iterable[Published]) -> None:
        """Encode and queue ``messages`` (in order) and count them; raises the error of a
        failed earlier write once."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self.may_publish is not None and not self.may_publish():
            self.fenced += sum(1 for _ in messages)
            return
        published, routes, route_of = self.published, self._routes, self._route
        batch, size = self._batch, 0
        for m in messages:
            subject, counted, series = routes.get((type(m), m.venue, m.symbol)) or route_of(m)
            published[counted] += 1
            series.inc()
            if self.nc is not None:
                payload = encode(m)
                batch.append((subject, payload))
                size += len(payload)
        self._batch_bytes += size
        if self._writer is None and batch:
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._batch:
                started, seen, idle = loop.time(), len(self._batch), 0
                while idle < LINGER_TURNS and self._batch_bytes < MAX_BATCH_BYTES and loop.time() - started < MAX_LINGER_S:
                    await asyncio.sleep(0)
                    idle, seen = (idle + 1, seen) if len(self._batch) == seen else (0, len(self._batch))
                batch, self._batch, self._batch_bytes = self._batch, [], 0
                await self._send(batch)
        except Exception as e:  # surfaces in the next publish, as if that one had failed
            self._batch, self._batch_bytes = [], 0
            self._error = e
        finally:
            self._writer = None

    async def _send(self, batch: list[tuple[str, bytes]]) -> None:
        """Hand a batch to the client: one PUB command buffer for the whole batch where the
        client allows it (:func:`batch_writer`), else one ``publish`` per message."""
        nc = self.nc
        if self._raw is None:
            self._raw = batch_writer(nc) or False
        if self._raw and nc.is_connected and not nc.is_draining_pubs:
            await self._raw(batch)
            return
        publish = nc.publish
        for subject, payload in batch:
            await publish(subject, payload)

    async def flush(self) -> None:
        """Send every queued message and wait until the server has them."""
        if self._writer is not None:
            await asyncio.shield(self._writer)
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.flush()


class Ingestor:
    """Runs feeds: connections, resync fetches, publishing, until ``stop``."""

    def __init__(
        self,
        nc: Any,
        specs: list[FeedSpec],
        stop: asyncio.Event,
        *,
        snapshots: SnapshotSource | None = None,
        reconnect: bool = True,
        backoff: tuple[float, float] = (0.5, 30.0),
        tap: Tap | None = None,
        measure_latency: bool = False,
        snapshot_attempts: int | None = 5,
        stale_after_s: float | None = None,
        may_publish: Callable[[], bool] | None = None,
    ) -> None:
        self.stop = stop
        self.publisher = Publisher(nc, may_publish)
        where = {spec.venue: feed_endpoints(spec) for spec in specs}
        self.rest = RestSnapshots(base_urls={v: e.rest_url for v, e in where.items() if e.rest_url},
                                  headers={v: e.rest_headers for v, e in where.items() if e.rest_headers}, tap=tap)
        self.snapshots = snapshots or self.rest
        self.snapshot_attempts = snapshot_attempts
        self.feeds: dict[str, Feed] = {}
        self.connections: dict[str, list[WsConnection]] = {}
        self.budgets: dict[str, RateBudget] = {}
        self.latencies_ns: list[int] | None = [] if measure_latency else None
        self._fetches: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._backfills: set[asyncio.Task[None]] = set()
        self.replayed = {spec.venue for spec in specs if spec.replayed}
        self.alerts = AlertPublisher(nc, "ingestor")
        self._alerting: set[asyncio.Task[Any]] = set()
        for spec in specs:
            cls = ws_adapter(spec.venue)
            feed = Feed(cls, spec.symbols, spec.channels, url=where[spec.venue].ws_url,
                        max_streams_per_connection=spec.max_streams_per_connection or None, prepare=spec.prepare)
            self.feeds[spec.venue] = feed
            self.budgets[spec.venue] = RateBudget(cls.snapshot_requests_per_s)
            self.connections[spec.venue] = [
                WsConnection(feed, i, self._handler(spec.venue), stop, reconnect=reconnect,
                             backoff=Backoff(*backoff), tap=tap, stale_after_s=stale_after_s)
                for i in range(len(feed.connections))
            ]

    @property
    def stats(self) -> dict[str, FeedStats]:
        return {venue: feed.stats for venue, feed in self.feeds.items()}

    def published(self, venue: str) -> dict[str, int]:
        """Messages published for ``venue`` by channel (trade, ticker, book, bbo, status)."""
        counts = {c: 0 for c in ("trade", "ticker", "book", "bbo", "status")}
        for (v, channel), n in self.publisher.published.items():
            if v == venue:
                counts[channel] += n
        return counts

    async def run(self) -> dict[str, FeedStats]:
        """Run until ``stop`` (or, without reconnect, until every connection has ended)."""
        for venue, feed in self.feeds.items():
            log.info("ingesting", venue=venue, symbols=len(feed.connection_of), channels=sorted(feed.channels),
                     connections=len(feed.connections))
        runs = [asyncio.create_task(c.run()) for conns in self.connections.values() for c in conns]
        try:
            await asyncio.gather(*runs)
            while self._fetches and not self.stop.is_set():  # resyncs still under way
                await asyncio.wait(list(self._fetches.values()))
        finally:
            pending = [*runs, *self._fetches.values(), *self._backfills]
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await self.publisher.flush()
            await self.rest.close()
        return self.stats

    def _handler(self, venue: str) -> Callable[[Actions, int], None]:
        def handle(actions: Actions, t_perf: int) -> None:
            self.apply(venue, actions, t_perf)

        return handle

    def apply(self, venue: str, actions: Actions, t_perf: int = 0) -> None:
        """Carry out a feed's actions: publish, send, fetch snapshots, reconnect, log.
        Queues only (never waits), so the transport calls it straight from its read loop."""
        if actions.publish:
            self.publisher.publish(actions.publish)
            if t_perf and self.latencies_ns is not None:
                self.latencies_ns.append(time.perf_counter_ns() - t_perf)
            if METRICS.observe(venue, self.feeds[venue], actions.publish, lag=venue not in self.replayed):
                self._alert_stale(venue, actions.publish)
        connections = self.connections[venue]
        for index, data in actions.send:
            connections[index].send(data)
        for symbol in actions.fetch:
            key = (venue, symbol)
            if key not in self._fetches:
                task = asyncio.create_task(self._fetch_snapshot(venue, symbol))
                self._fetches[key] = task
                task.add_done_callback(lambda _t, k=key: self._fetches.pop(k, None))
        for symbol, since, until in actions.backfill:
            task = asyncio.create_task(self._backfill_trades(venue, symbol, since, until))
            self._backfills.add(task)
            task.add_done_callback(self._backfills.discard)
        for index in actions.reconnect:
            connections[index].reopen.set()
        for line in actions.log:
            log.warning("feed notice", venue=venue, notice=line)

    def _alert_stale(self, venue: str, published: Sequence[Published]) -> None:
        """``alerts.warning.feed_stale`` for each stale status this process publishes."""
        gate = self.publisher.may_publish
        if gate is not None and not gate():
            return  # a standby's feed, or a lost lease: the owner alerts
        for m in published:
            if isinstance(m, FeedStatus) and m.state == "stale":
                task = asyncio.create_task(self.alerts.alert(
                    "warning", "feed_stale", f"{venue} feed is quiet: {m.reason or 'no frames'}", key=venue, venue=venue,
                    details={"channel": m.channel or "", "symbol": m.symbol or ""}))
                self._alerting.add(task)
                task.add_done_callback(self._alerting.discard)

    def publish_books(self) -> None:
        """Publish every synced book as it stands (a warm standby taking over)."""
        for venue, feed in self.feeds.items():
            self.apply(venue, feed.current_books())

    async def _fetch_snapshot(self, venue: str, symbol: str) -> None:
        """Fetch one symbol's REST snapshot (retrying with backoff) and hand it to its book."""
        feed = self.feeds[venue]
        depth = feed.connection_of[symbol].adapter.snapshot_depth
        backoff = Backoff(1.0, 30.0)
        attempt = 0
        while not self.stop.is_set():
            await self.budgets[venue].take()
            attempt += 1
            try:
                snapshot = await self.snapshots.fetch(venue, symbol, depth)
            except Exception as e:  # any failure of one fetch: retry, never kill the feed
                log.warning("book snapshot failed", venue=venue, symbol=symbol, attempt=attempt, error=str(e))
                if self.snapshot_attempts is not None and attempt >= self.snapshot_attempts:
                    self._fetches.pop((venue, symbol), None)
                    self.apply(venue, feed.on_snapshot_failed(symbol, str(e)))
                    return
                try:
                    await asyncio.wait_for(self.stop.wait(), backoff.next())
                except TimeoutError:
                    pass
                continue
            self._fetches.pop((venue, symbol), None)  # a new gap may ask again while we apply
            self.apply(venue, feed.on_snapshot(symbol, snapshot))
            return


    async def _backfill_trades(self, venue: str, symbol: str, since_ns: int, until_ns: int) -> None:
        """Fetch the public trades of a missed range over REST and publish the unseen ones."""
        feed = self.feeds[venue]
        adapter = feed.connection_of[symbol].adapter
        url = adapter.trades_backfill_url(symbol, since_ns, until_ns)
        if url is None:
            return
        await self.budgets[venue].take()
        try:
            body = await self.rest.get(venue, url)
            trades = adapter.parse_trades_backfill(symbol, body, time.time_ns())
        except Exception as e:  # the trades_missed status already stands; nothing else to undo
            log.warning("trade backfill failed", venue=venue, symbol=symbol, error=str(e))
            return
        self.apply(venue, feed.on_trades_backfill(symbol, since_ns, until_ns, trades))


def feed_units(specs: list[FeedSpec], symbols_per_feed: int = 0) -> dict[str, FeedSpec]:
    """The feeds the processes share: ``<venue>.<n>`` -> its spec (a venue's symbols, or
    groups of ``symbols_per_feed`` of them, in the configured order)."""
    units: dict[str, FeedSpec] = {}
    for spec in specs:
        if spec.venue in {u.venue for u in units.values()}:
            raise ValueError(f"{spec.venue}: configured twice")
        size = symbols_per_feed or len(spec.symbols)
        for n, start in enumerate(range(0, len(spec.symbols), size)):
            units[f"{spec.venue}.{n}"] = msgspec.structs.replace(spec, symbols=spec.symbols[start:start + size])
    return units


async def run_shared(nc: Any, specs: list[FeedSpec], stop: asyncio.Event, settings: IngestorSettings, *,
                     on_ownership: Callable[["FeedOwnership"], None] | None = None, **options: Any) -> "FeedOwnership":
    """Run this process's share of the feeds (services.ingestor.ownership) until ``stop``;
    returns the ownership (what it took over, its state). ``on_ownership`` gets it first
    (readiness: the feeds this process owns)."""
    from services.ingestor.ownership import FeedOwnership, feeds_bucket

    units = feed_units(specs, settings.symbols_per_feed)
    kv = await feeds_bucket(nc.jetstream())

    def make_feed(feed_id: str, feed_stop: asyncio.Event, may_publish: Callable[[], bool]) -> Ingestor:
        # feed_stop is also set when the process stops: the ownership hands every feed over then
        return Ingestor(nc, [units[feed_id]], feed_stop, may_publish=may_publish, **options)

    described = "\n".join(f"{f} {u.symbols} {sorted(u.channels)} {u.url}" for f, u in sorted(units.items()))
    ownership = FeedOwnership(kv, nc, list(units), make_feed, venue_of=lambda f: units[f].venue,
                              symbols_of=lambda f: units[f].symbols, lease_s=settings.lease_s, digest_extra=described,
                              member_id=settings.member_id or None, standby=settings.standby)
    if on_ownership is not None:
        on_ownership(ownership)
    log.info("sharing feeds", member=ownership.id, feeds=len(units), lease_s=settings.lease_s)
    await ownership.run(stop)
    return ownership


async def run_ingestor(
    nc: Any, config: Config | IngestorSettings | list[FeedSpec], stop: asyncio.Event, *,
    share: IngestorSettings | None = None, on_ownership: Callable[["FeedOwnership"], None] | None = None,
    **options: Any,
) -> dict[str, FeedStats]:
    """Run the ingestor on connection ``nc`` until ``stop``: every venue of ``config``
    (its ``[ingestor]`` section, or explicit specs). ``options`` go to :class:`Ingestor`.
    With ``share`` (or a config whose ``share_feeds`` is set), this process runs only its
    share of the feeds (:func:`run_shared`), and no stats are returned."""
    if isinstance(config, Config):
        environments = config.environments()
        config = config.ingestor
    else:
        environments = {}
    if isinstance(config, IngestorSettings):
        options.setdefault("backoff", (config.reconnect_initial_s, config.reconnect_max_s))
        specs = specs_from_settings(config, environments)
        if config.share_feeds and share is None:
            share = config
    else:
        specs = config
    specs = runnable(specs)
    if not specs:
        log.info("ingestor: no venues to run")
        await stop.wait()
        return {}
    if share is not None and share.share_feeds:
        await run_shared(nc, specs, stop, share, on_ownership=on_ownership, **options)
        return {}
    return await Ingestor(nc, specs, stop, **options).run()


__all__ = ["FeedSettings", "FeedSpec", "Ingestor", "IngestorSettings", "Publisher", "feed_units", "run_ingestor",
           "run_shared", "specs_from_settings"]
