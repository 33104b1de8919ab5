"""The executor service: replicas sharing one durable pull consumer on ORDERS.

Each replica fetches up to ``concurrency`` commands at a time and works on them
concurrently; JetStream hands every command to one replica, redelivers it if that
replica dies before acking, and the KV order state makes the redelivery resolve by
query instead of a second order. Adding a replica adds throughput.

Through the loss of a NATS node (the leader of ORDERS, its consumer, ORDER_EVENTS, the
KV buckets) a replica keeps fetching: a fetch lives ``FETCH_EXPIRES_S``, so one sent to a
leader that died (or before a reconnect) is replaced within that; a fetch refused while
the consumer has no leader (503) is sent again after ``REFETCH_PAUSE_S``. Commands in hand
ride through the election (services.executor.worker.through_failover). What is left is
the server's own raft election, 4-9 s after the leader's last heartbeat in nats-server
2.15 (not configurable): see bench/cluster_failover.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import APIError, NotFoundError

from schemas import subjects
from services.bus.streams import KV_ORDERS, KV_RATELIMITS, ORDERS
from services.errors import CommandError
from services.executor.credentials import CredentialsProvider
from services.executor.gateway import VenueGateway
from services.executor.queries import serve_queries
from services.executor.ratelimit import RateLimiter
from services.executor.state import NonceSequences, OrderStates
from services.executor.settings import ExecutorSettings
from services.executor.tracker import OrderTracker
from services.executor.worker import CommandWorker
from services.ingestor.transport import Backoff
from services.logs import get_logger
from services.observability.alerts import AlertPublisher
from services.venues.http import HttpTransport

log = get_logger("executor")
DURABLE = "executors"
STARTUP_RETRY_MAX_S = 2.0
"""Longest wait between start-up attempts while the cluster cannot answer."""
FETCH_EXPIRES_S = 0.5
"""Life of one pull request: bounds the time lost to a request its leader took down with it."""
REFETCH_PAUSE_S = 0.1
"""Pause after a fetch refused while the consumer has no leader (503, an election running)."""
JS_TIMEOUT_S = 2.0
"""JetStream API and KV requests of the executor: one sent to a leader that died is given up
after this (elections take longer), then retried or handed back."""


def progress_every_s(settings: ExecutorSettings) -> float:
    """In-progress acks four times per ``ack_wait`` (at most every 5 s): a command at work
    is never redelivered, even with one or two progress acks lost in an election."""
    return min(5.0, settings.ack_wait_s / 4)


async def consumer(js: Any, settings: ExecutorSettings) -> Any:
    """The shared durable pull subscription on ORDERS (created on first use). The server
    redelivers without limit: after ``max_deliver`` deliveries the worker ends a command that
    still cannot finish with a ``failed`` event, so a replica dying during a late delivery
    never leaves a command without its outcome."""
    config = ConsumerConfig(durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
                            ack_wait=settings.ack_wait_s, max_deliver=-1,
                            max_ack_pending=max(1000, settings.concurrency * 64), filter_subject=subjects.ORDERS_SUBMIT_ALL)
    return await js.pull_subscribe(subjects.ORDERS_SUBMIT_ALL, durable=DURABLE, stream=ORDERS, config=config)


class ExecutorReplica:
    """One replica: its own NATS connection's JetStream, gateway, worker and fetch loop."""

    def __init__(self, nc: Any, settings: ExecutorSettings, credentials: CredentialsProvider,
                 environments: dict[str, str] | None = None) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=JS_TIMEOUT_S)
        self.settings = settings
        self.credentials = credentials
        self.environments = environments or {}
        """Venue -> ``live`` / ``testnet`` (the config's ``[venues.<venue>]``)."""
        self.transport = HttpTransport(timeout_s=self.settings.request_timeout_s)
        self.worker: CommandWorker
        self.gateway: VenueGateway
        self.tracker: OrderTracker
        self.ready = asyncio.Event()
        """Set once the replica consumes ORDERS and answers queries."""

    async def setup(self) -> None:
        limits_kv = await self.js.key_value(KV_RATELIMITS)
        orders_kv = await self.js.key_value(KV_ORDERS)
        limiter = RateLimiter(limits_kv, margin=self.settings.rate_limit_margin, egress=self.settings.egress)
        self.gateway = VenueGateway(limiter, self.credentials, NonceSequences(limits_kv), self.transport,
                                    self.settings.venue_urls, self.environments)
        states = OrderStates(orders_kv)
        self.worker = CommandWorker(self.js, self.gateway, states, max_deliver=self.settings.max_deliver,
                                    reconcile_delays_s=tuple(self.settings.reconcile_delays_s),
                                    progress_every_s=progress_every_s(self.settings))
        self.worker.alerts = self.gateway.alerts = AlertPublisher(self.nc, "executor")
        self.tracker = OrderTracker(self.worker, states, limits_kv, interval_s=self.settings.tracker_interval_s,
                                    poll_only=self.settings.poll_only)

    async def start(self, stop: asyncio.Event) -> Any:
        """Set up and subscribe, retrying while JetStream cannot answer (a node lost, a
        leader being elected: timeouts, no responders, 503); a missing bucket or stream is
        a deployment error: CommandError, one line for the operator. Returns the subscription, None if stopped first."""
        backoff = Backoff(0.1, STARTUP_RETRY_MAX_S)
        while not stop.is_set():
            try:
                await self.setup()
                return await consumer(self.js, self.settings)
            except NotFoundError as e:
                raise CommandError(f"JetStream has no {KV_RATELIMITS!r}/{KV_ORDERS!r} buckets or {ORDERS!r} stream "
                                   f"({e.description or 'not found'}): create them first (exbus up, or the deploy's set-up)") from None
            except (NatsError, APIError, asyncio.TimeoutError) as e:
                delay = backoff.next()
                log.warning("JetStream not answering at start-up, retrying", error=repr(e), retry_s=round(delay, 2))
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except asyncio.TimeoutError:
                    pass
        return None

    async def run(self, stop: asyncio.Event) -> None:
        sub = await self.start(stop)
        if sub is None:
            await self.transport.close()
            return
        slots = asyncio.Semaphore(self.settings.concurrency)
        running: set[asyncio.Task[None]] = set()
        tracker = asyncio.create_task(self.tracker.run(stop))
        queries = await serve_queries(self.nc, self.gateway)
        await self.nc.flush()
        self.ready.set()
        refused = 0
        try:
            while not stop.is_set():
                free = self.settings.concurrency - len(running)
                if free <= 0:
                    await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    continue
                try:
                    msgs = await sub.fetch(free, timeout=FETCH_EXPIRES_S)
                except (NatsTimeout, asyncio.TimeoutError):
                    continue
                except (APIError, NatsError) as e:  # 503/no responders: the consumer's leader is being elected
                    refused += 1
                    if refused == 1 or refused % 50 == 0:
                        log.warning("fetch refused, retrying", error=repr(e), times=refused)
                    await asyncio.sleep(REFETCH_PAUSE_S)
                    continue
                if refused:
                    log.info("fetching again", refused_times=refused)
                    refused = 0
                for msg in msgs:
                    await slots.acquire()
                    task = asyncio.create_task(self._handle(msg, slots))
                    running.add(task)
                    task.add_done_callback(running.discard)
        finally:
            for q in queries:
                await q.unsubscribe()
            await sub.unsubscribe()
            if running:  # finish what was started; unacked work is redelivered anyway
                await asyncio.wait(running, timeout=self.settings.ack_wait_s)
            tracker.cancel()
            await self.transport.close()

    async def _handle(self, msg: Any, slots: asyncio.Semaphore) -> None:
        try:
            await self.worker.handle(msg)
        except Exception as e:  # never lose the loop; the command is redelivered after ack_wait
            log.error("command failed unexpectedly", subject=msg.subject, error=repr(e))
        finally:
            slots.release()


def announce_environments(settings: ExecutorSettings, environments: dict[str, str]) -> None:
    """Log (and show in `exbus status`) each configured venue's environment; a testnet venue
    the executor cannot reach is refused, loudly: its commands are rejected, never sent live."""
    from schemas.common import VENUES
    from services.observability.catalog import EXECUTOR
    from services.venues.environments import NoTestnet, endpoints, require

    EXECUTOR.environments.update({venue: environments.get(venue, "live") for venue in VENUES})
    for venue, environment in sorted(environments.items()):
        if environment != "testnet":
            continue
        try:
            require(venue, environment, "REST",
                    endpoints(venue, environment, rest_url=settings.venue_urls.get(venue)).rest_url)
        except NoTestnet as e:
            log.error("venue refused", venue=venue, environment=environment, error=str(e))
        else:
            log.info("venue on its testnet", venue=venue)


async def run_executor(nc_factory: Any, settings: ExecutorSettings, credentials: CredentialsProvider,
                       stop: asyncio.Event, *, replicas: int = 1, ready: asyncio.Event | None = None,
                       environments: dict[str, str] | None = None) -> list[ExecutorReplica]:
    """Run ``replicas`` executor replicas until ``stop``; each gets its own connection from
    ``nc_factory()`` (an async callable), as separate processes would. ``ready`` is set
    once every replica consumes and answers queries."""
    announce_environments(settings, environments or {})
    conns = [await nc_factory() for _ in range(replicas)]
    workers = [ExecutorReplica(nc, settings, credentials, environments) for nc in conns]

    async def all_ready() -> None:
        await asyncio.gather(*(w.ready.wait() for w in workers))
        if ready is not None:
            ready.set()

    watcher = asyncio.create_task(all_ready())
    try:
        await asyncio.gather(*(w.run(stop) for w in workers))
    finally:
        watcher.cancel()
        for nc in conns:
            await nc.drain()
    return workers
