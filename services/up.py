"""`exbus up`: every service in one process, on the embedded default (or on NATS_URL).

With ``--sim`` the venue simulator runs too and every venue's REST goes to it; the
ingestor reads its Binance and Upbit streams and replayed recordings of the seven others.

The embedded server runs with the permissions of deploy/nats/exbus.conf: each service
connects as its own user (vault, executor, ingestor; the operator's views as operator,
the demo's strategy as strategy) with a password made for this run. A configured
``nats.user``/``nats.password`` keeps its password, so other tools can join as that
user. With ``nats.url`` or ``embedded.config_file`` set, services connect as configured.
"""

from __future__ import annotations

import asyncio
import sys
from contextlib import AsyncExitStack
from typing import Any, Awaitable, TextIO

import msgspec

from services.bus.connect import connect
from services.bus.embedded import EmbeddedNats, ServiceUsers
from services.bus.lifecycle import Bus
from services.config import Config, NatsSettings
from services.executor.credentials import CredentialsProvider, StaticCredentials
from services.executor.service import run_executor
from services.ingestor.service import FeedSpec, run_ingestor, runnable, specs_from_settings
from services.ingestor.settings import FeedSettings
from services.logs import get_logger
from services.observability.catalog import INGESTOR
from services.observability.runtime import Observability
from services.venues.wsbase import ws_adapter

log = get_logger("up")

SIM_MARKETS: dict[str, list[str]] = {
    "binance": ["NKN-USDT", "BLZ-ETH", "LRC-BTC", "RUNE-EUR"],
    "upbit": ["WAVES-KRW", "LAMB-KRW", "ARK-BTC", "XTZ-BTC"],
}
"""Markets the simulator replays from ../shared/data/recorded."""
SIM_CHANNELS: dict[str, list[str]] = {"upbit": ["trade", "book", "bbo"]}
"""Channels the simulator can serve where not all (its Upbit replay has no ticker stream)."""


def point_at_simulator(config: Config, sim: Any) -> None:
    """Route every venue's REST calls to the simulator, and the market data of the venues
    whose streams it serves (Binance, Upbit) to its WebSockets."""
    for venue, rest_url in sim.base_urls.items():
        config.executor.venue_urls.setdefault(venue, rest_url)
    for venue in SIM_MARKETS:
        try:
            ws_adapter(venue)
        except ValueError as e:
            log.warning("simulated venue without market data", venue=venue, reason=str(e))
            continue
        feed = config.ingestor.venues.get(venue)
        if feed is None:
            feed = config.ingestor.venues[venue] = FeedSettings(symbols=SIM_MARKETS[venue])
            if venue in SIM_CHANNELS:
                feed.channels = list(SIM_CHANNELS[venue])
        feed.url, feed.rest_url = sim.ws_url(venue), sim.url(venue)


class System:
    """The bus, the simulator (optional) and the services, as one async context.

    Services run as tasks until ``stop`` is set or one of them fails (which sets
    ``stop`` too); leaving the context stops them, then the simulator, then the bus.
    """

    def __init__(self, config: Config, stop: asyncio.Event, *, sim: bool = False, executors: int = 1,
                 out: TextIO = sys.stdout) -> None:
        self.config, self.stop, self.sim, self.executors, self.out = config, stop, sim, executors, out
        self.bus: Bus
        self.simulator: Any = None
        self.tasks: dict[asyncio.Task[Any], str] = {}
        self.users: ServiceUsers | None = None
        """Per-service NATS users of the embedded server (None: connect as configured)."""
        self.observability: dict[str, Observability] = {}
        """Metrics/health endpoint and service registrations, by service."""
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> "System":
        try:
            self.bus = await self._stack.enter_async_context(self._bus())
            print(f"NATS_URL={self.bus.url}", file=self.out, flush=True)
            feeds: list[FeedSpec] = []
            if self.sim:
                from services.simulator import Simulator
                from services.simulator.replayed import start_replayed_venues

                self.simulator = await self._stack.enter_async_context(Simulator())
                point_at_simulator(self.config, self.simulator)
                print("simulator: " + " ".join(f"{v} {u}" for v, u in self.simulator.base_urls.items()),
                      file=self.out, flush=True)
                feeds = await start_replayed_venues(self._stack)
                print(f"replayed venues: {', '.join(f.venue for f in feeds)}", file=self.out, flush=True)
            self.executors_ready = asyncio.Event()
            # a testnet venue without test endpoints is refused here (logged), so readiness does not wait for it
            specs = runnable(specs_from_settings(self.config.ingestor, self.config.environments()) + feeds)
            ingestor_nc = await self.connect_as("ingestor")
            await self.observe("ingestor", ingestor_nc, ready=lambda: INGESTOR.feeds_subscribed(s.venue for s in specs))
            services: dict[str, Awaitable[Any]] = {"ingestor": run_ingestor(ingestor_nc, specs, self.stop)}
            credentials = await self._credentials(services)
            executors = await self.observe("executor", ready=self.executors_ready)
            services["executor"] = run_executor(
                executors.connections(
                    lambda: connect(self.nats_settings("executor"), url=self.bus.url, name="exbus-executor")),
                self.config.executor,
                credentials, self.stop, replicas=self.executors, ready=self.executors_ready,
                environments=self.config.environments())
            self.tasks = {asyncio.create_task(self._guard(name, coro), name=name): name for name, coro in services.items()}
            log.info("exbus up", nats=self.bus.url, embedded=self.bus.server is not None, sim=self.sim,
                     services=sorted(services))
            return self
        except BaseException:
            await self._stack.aclose()
            raise

    def _bus(self) -> Bus:
        """The bus: the embedded default with deploy/nats/exbus.conf's users (the system's
        own connection is the operator's), else NATS as configured."""
        nats, emb = self.config.nats, self.config.embedded
        if nats.url or emb.config_file:
            return Bus(self.config, name="exbus-up")
        self.users = ServiceUsers({nats.user: nats.password} if nats.user and nats.password else None)
        server = EmbeddedNats(emb.data_dir, port=emb.port, config_file=self.users.conf, env=self.users.server_env())
        operator = msgspec.structs.replace(self.config, nats=self.nats_settings("operator"))
        return Bus(operator, name="exbus-up", embedded=server)

    def nats_settings(self, user: str) -> NatsSettings:
        """How the service running as ``user`` connects: as that user on the embedded
        server, else with the configured settings."""
        if self.users is None:
            return self.config.nats
        return msgspec.structs.replace(self.config.nats, user=user, password=self.users.password(user))

    async def connect_as(self, user: str, name: str | None = None) -> Any:
        """A connection as ``user``, drained when the system stops (the system's own
        connection when there are no per-service users)."""
        if self.users is None:
            return self.bus.nc
        nc = await connect(self.nats_settings(user), url=self.bus.url, name=name or f"exbus-{user}")
        self._stack.push_async_callback(_drain, nc)
        return nc

    async def observe(self, service: str, nc: Any = None, *, ready: Any) -> Observability:
        """Serve ``service``'s /metrics, /healthz, /readyz (printing the URL) and register
        ``nc`` with the NATS services framework; executor replicas register as they connect.
        Executor replicas of this process share one registry and port."""
        obs = await self._stack.enter_async_context(Observability(service, self.config.observability, ready=ready))
        self.observability[service] = obs
        if nc is not None:
            await obs.register(nc)
        if obs.url:
            print(f"metrics: {service} {obs.url}/metrics", file=self.out, flush=True)
        return obs

    async def _credentials(self, services: dict[str, Awaitable[Any]]) -> CredentialsProvider:
        """Executors get credentials from the vault. With ``--sim`` the vault runs here with
        a development master key holding the simulator's paper keys (it says so loudly)."""
        if not self.sim:
            log.warning("exbus up runs no vault without --sim: run `exbus vault run` with a real master key and "
                        "executors with their service identity (`exbus service register`)")
            return StaticCredentials({})
        from services.vault.client import CredentialsClient
        from services.vault.dev import dev_bootstrap
        from services.vault.service import run_vault

        identity = await dev_bootstrap(self.bus.nc, self.config, out=self.out)
        vault_ready = asyncio.Event()
        vault_nc = await self.connect_as("vault")
        await self.observe("vault", vault_nc, ready=vault_ready)
        services["vault"] = run_vault(vault_nc, self.config, self.stop, ready=vault_ready)
        client = CredentialsClient(await self.connect_as("executor", "exbus-vault-client"), identity.service_id,
                                   identity.private_key)
        await client.start()
        self._stack.push_async_callback(client.close)
        return client

    async def _guard(self, name: str, coro: Awaitable[Any]) -> Any:
        try:
            return await coro
        except Exception as e:
            log.error("service failed", service=name, error=repr(e))
            self.stop.set()
            raise

    @property
    def failed(self) -> list[str]:
        return [n for t, n in self.tasks.items() if t.done() and not t.cancelled() and t.exception() is not None]

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self._stack.aclose()


async def _drain(nc: Any) -> None:
    try:
        await asyncio.wait_for(nc.drain(), timeout=10)
    except Exception as e:  # drain failed; close hard
        log.warning("drain failed, closing", error=str(e))
        await nc.close()


async def run_up(config: Config, stop: asyncio.Event, *, sim: bool = False, executors: int = 1,
                 out: TextIO = sys.stdout) -> int:
    """Run the system until ``stop``; returns 1 if a service failed, else 0."""
    async with System(config, stop, sim=sim, executors=executors, out=out) as system:
        await stop.wait()
    return 1 if system.failed else 0
