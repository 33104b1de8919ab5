"""One service's observability in a process: its HTTP endpoint (/metrics, /healthz,
/readyz) and the NATS services-framework registration of each of its replicas.

    async with Observability("executor", config.observability, ready=ready_event) as obs:
        await run_executor(obs.connections(nc_factory), ...)   # each connection registered
        # or, for a connection made elsewhere: await obs.register(nc)

Readiness = every registered connection is connected to NATS and the service's own
``ready`` (an Event or a predicate) holds. Several replicas of one service in a process
share its registry and its one HTTP port; each replica is its own micro service.
A port already in use is logged and the service runs on without HTTP: observability
never stops trading.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, Awaitable, Callable

from services.logs import get_logger
from services.observability.catalog import SERVICES, ServiceMetrics
from services.observability.http import HealthServer
from services.observability.micro import instance_id, package_version, register
from services.observability.settings import ObservabilitySettings

log = get_logger("observability")

_replica_numbers: dict[str, itertools.count] = {}

DESCRIPTIONS = {
    "ingestor": "market data: venue feeds normalized onto md.>",
    "executor": "order executor replica on the ORDERS work queue",
    "vault": "key vault answering vault.credentials.get",
}


class Observability:
    """The HTTP endpoint and micro registrations of one service (ingestor, executor, vault)."""

    def __init__(self, service: str, settings: ObservabilitySettings | None = None, *,
                 ready: asyncio.Event | Callable[[], bool] | None = None) -> None:
        self.service = service
        self.settings = settings or ObservabilitySettings()
        self.metrics: ServiceMetrics = SERVICES[service]
        self.ready = ready
        self.version = package_version()
        self.http: HealthServer | None = None
        self.replicas: list[tuple[Any, Any, str]] = []
        """(connection, micro service, instance id) per registered replica."""

    async def __aenter__(self) -> "Observability":
        if not self.settings.enabled:
            return self
        server = HealthServer(self.service, self.metrics.registry, self.checks, host=self.settings.host,
                              port=self.settings.port(self.service))
        try:
            await server.start()
        except OSError as e:
            log.error("metrics endpoint not started", service=self.service, port=server.port, error=str(e))
        else:
            self.http = server
            log.info("metrics endpoint", service=self.service, url=server.url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for nc, svc, instance in self.replicas:
            self.metrics.info.children.pop((self.service, self.version, instance), None)
            if nc.is_closed or nc.is_draining:
                continue  # its subscriptions went with the connection
            try:
                await svc.stop()
            except Exception as e:  # the connection is going away anyway
                log.warning("service deregistration failed", service=self.service, error=str(e))
        self.replicas.clear()
        if self.http is not None:
            await self.http.stop()
            self.http = None

    @property
    def url(self) -> str:
        """Base URL of the HTTP endpoint ("" when not serving)."""
        return self.http.url if self.http is not None else ""

    def checks(self) -> dict[str, bool]:
        """The readiness checks, by name."""
        conns = [nc for nc, _, _ in self.replicas]
        ready = self.ready
        own = ready.is_set() if isinstance(ready, asyncio.Event) else bool(ready()) if ready is not None else True
        return {"nats": bool(conns) and all(nc.is_connected for nc in conns), self.service: own}

    def status(self) -> dict[str, Any]:
        """Readiness and metrics summary: the STATS data and the status endpoint's answer."""
        checks = self.checks()
        status = {"ready": all(checks.values()), "checks": checks, "metrics_url": self.url, **self.metrics.summary(),
                  "environments": dict(sorted(self.metrics.environments.items()))}
        if len(self.replicas) > 1:
            status["process_replicas"] = len(self.replicas)  # the figures are this process's, shared by them
        return status

    async def register(self, nc: Any) -> str:
        """Register one replica (its connection) with the services framework; returns its instance id."""
        if not self.settings.enabled:
            return ""
        number = next(_replica_numbers.setdefault(self.service, itertools.count()))
        instance = instance_id(number)
        meta = {"metrics_port": str(self.http.port)} if self.http is not None else {}
        svc = await register(nc, self.service, instance, self.status, description=DESCRIPTIONS[self.service],
                             metadata=meta)
        self.replicas.append((nc, svc, instance))
        self.metrics.info.labels(self.service, self.version, instance).set(1)
        return instance

    def connections(self, factory: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
        """Wrap a connection factory so that every connection it makes is registered."""

        async def connect() -> Any:
            nc = await factory()
            await self.register(nc)
            return nc

        return connect


__all__ = ["Observability"]
