"""A service's HTTP endpoint (aiohttp) on its metrics port:

    GET /metrics   the service's registry in the Prometheus text format
    GET /healthz   liveness: 200 while the event loop keeps up (it answers at all, and a
                   ticker task runs less than LOOP_LAG_LIMIT_S late), else 503
    GET /readyz    readiness: 200 when every check holds (NATS connected, the service's
                   own: feeds subscribed, consumer bound, vault serving), else 503;
                   the body names each check
"""

from __future__ import annotations

import asyncio
from typing import Callable

from aiohttp import web

from services.logs import get_logger
from services.observability.metrics import CONTENT_TYPE, Registry

log = get_logger("observability")

LOOP_TICK_S = 0.5
LOOP_LAG_LIMIT_S = 5.0
"""/healthz fails when the event loop runs this late: the process is wedged, restart it."""

Checks = Callable[[], dict[str, bool]]


class LoopMonitor:
    """Measures how late the event loop wakes a task that sleeps LOOP_TICK_S."""

    def __init__(self, registry: Registry) -> None:
        self.gauge = registry.gauge("exbus_event_loop_lag_seconds", "How late the event loop woke a periodic task.")
        self.lag_s = 0.0
        self._last = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._last = asyncio.get_running_loop().time()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(LOOP_TICK_S)
            now = loop.time()
            self.lag_s = max(0.0, now - self._last - LOOP_TICK_S)
            self._last = now
            self.gauge.set(self.lag_s)

    def current_lag_s(self) -> float:
        """The last measured lag, or how overdue the next tick already is."""
        overdue = asyncio.get_running_loop().time() - self._last - LOOP_TICK_S
        return max(self.lag_s, overdue, 0.0)


class HealthServer:
    """Serves /metrics, /healthz and /readyz for one service until ``stop``."""

    def __init__(self, service: str, registry: Registry, checks: Checks, *, host: str = "0.0.0.0", port: int = 0) -> None:
        self.service = service
        self.registry = registry
        self.checks = checks
        self.host = host
        self.port = port
        self.loop_monitor = LoopMonitor(registry)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Listen (``port`` 0: a free one, then ``self.port`` says which)."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            self._runner = None
            raise
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.loop_monitor.start()

    async def stop(self) -> None:
        await self.loop_monitor.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.registry.exposition().encode(), headers={"Content-Type": CONTENT_TYPE})

    async def _healthz(self, _request: web.Request) -> web.Response:
        lag = self.loop_monitor.current_lag_s()
        ok = lag < LOOP_LAG_LIMIT_S
        return web.json_response({"service": self.service, "alive": ok, "loop_lag_s": round(lag, 3)},
                                 status=200 if ok else 503)

    async def _readyz(self, _request: web.Request) -> web.Response:
        checks = self.checks()
        ready = bool(checks) and all(checks.values())
        return web.json_response({"service": self.service, "ready": ready, "checks": checks},
                                 status=200 if ready else 503)


__all__ = ["HealthServer", "LOOP_LAG_LIMIT_S", "LoopMonitor"]
