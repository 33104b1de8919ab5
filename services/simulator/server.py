"""The simulator as a whole: one loopback HTTP (+ WebSocket) server per venue, sharing a
ledger, fault rules and a clock, with the control routes on every port.

    async with Simulator({"replay": False}) as sim:
        sim.binance_url, sim.binance_ws_url, sim.upbit_url, sim.url("kraken"), sim.urls()

Every venue is a dialect on the simulator core (``services/simulator/dialects/``);
Binance and Upbit read their markets and books from their recordings.

Control routes (on every venue's port):
- ``GET /__sim/ledger``: accepted and refused orders, rate-limit usage per scope;
- ``GET /__sim/config``: the fault rules in force;
- ``POST /__sim/config``: ``{"faults": [...]}`` replaces the fault rules at run time;
- ``GET /__sim/pushes``: when the venue's private stream pushed each fill (its latest 10 000).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from aiohttp import web

from services.simulator.clock import Clock, wall_clock
from services.simulator.config import SimConfig, faults_from, sim_config
from services.simulator.dialect import Dialect, dialect_class
from services.simulator.faults import FaultInjector, fault_middleware
from services.simulator.ledger import Ledger
from services.simulator.dialects.binance import BinanceDialect
from services.simulator.dialects.upbit import UpbitDialect
from services.simulator.venue import json_response


VENUES = ("binance", "coinbase", "kraken", "bitfinex", "okx", "upbit", "bithumb", "korbit", "coinone")


class Simulator:
    """The nine simulated venues on free loopback ports."""

    def __init__(self, config: SimConfig | dict[str, Any] | None = None, *, clock: Clock | None = None) -> None:
        self.config = sim_config(config)
        self.clock = clock or wall_clock
        self.ledger = Ledger()
        self.faults = FaultInjector(self.config.faults, self.config.seed)
        self.binance: BinanceDialect
        self.upbit: UpbitDialect
        self.binance_url = self.binance_ws_url = self.upbit_url = self.upbit_ws_url = ""
        self.dialects: dict[str, Dialect] = {}
        self.base_urls: dict[str, str] = {}
        self._closing = asyncio.Event()
        self._runners: list[web.AppRunner] = []

    @property
    def venues(self) -> dict[str, Dialect]:
        return self.dialects

    def url(self, venue: str) -> str:
        """The base URL standing for the venue's REST host (its WebSocket host too)."""
        return self.base_urls[venue]

    def ws_url(self, venue: str) -> str:
        return self.base_urls[venue].replace("http://", "ws://", 1)

    async def start(self) -> "Simulator":
        cfg = self.config
        recorded = cfg.recorded_path()
        wanted = [v for v in VENUES if not cfg.venues or v in cfg.venues]
        for name in ("binance", "upbit", *(v for v in VENUES if v not in ("binance", "upbit"))):
            cls = dialect_class(name)
            if name in wanted or name in ("binance", "upbit"):  # sim.binance / sim.upbit always exist
                extra = {"recorded": recorded} if cls.READS_RECORDED else {}
                self.dialects[name] = await asyncio.to_thread(
                    lambda: cls(getattr(cfg, name), self.clock, self.ledger, cfg.ban, **extra))
        self.binance = self.dialects["binance"]  # type: ignore[assignment]
        self.upbit = self.dialects["upbit"]  # type: ignore[assignment]
        try:
            for name, venue in self.venues.items():
                if name not in wanted:
                    continue
                port = await self._serve(venue, {"binance": cfg.binance_port, "upbit": cfg.upbit_port}.get(
                    name) or getattr(getattr(cfg, name), "port", 0))
                self.base_urls[name] = f"http://{cfg.host}:{port}"
            self.binance_url = self.base_urls.get("binance", "")
            self.upbit_url = self.base_urls.get("upbit", "")
            self.binance_ws_url = self.binance_url.replace("http://", "ws://", 1)
            self.upbit_ws_url = self.upbit_url.replace("http://", "ws://", 1)
        except BaseException:
            await self.stop()
            raise
        if cfg.replay:
            for name, venue in self.venues.items():
                if name in self.base_urls:
                    venue.start_replay(cfg.replay_speed)
        return self

    async def _serve(self, venue: Dialect, port: int) -> int:
        app = web.Application(middlewares=[fault_middleware(
            self.faults, venue.name, venue.route_kind, self.ledger, self._closing, venue.error_body)])
        venue.add_routes(app)
        app.router.add_get("/__sim/ledger", self._ledger)
        app.router.add_get("/__sim/config", self._get_config)
        app.router.add_post("/__sim/config", self._set_config)
        app.router.add_get("/__sim/pushes", self._pushes_of(venue))
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0, handle_signals=False)
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, self.config.host, port)
        await site.start()
        return runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop replay, release unanswered requests, close every connection and port."""
        self._closing.set()
        for venue in self.venues.values():
            await venue.stop()
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()

    async def __aenter__(self) -> "Simulator":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- control ---------------------------------------------------------------------------

    def ledger_snapshot(self) -> dict[str, Any]:
        """What ``GET /__sim/ledger`` returns."""
        return self.ledger.snapshot({name: v.usage for name, v in self.venues.items() if name in self.base_urls})

    def set_faults(self, faults: list[dict[str, Any]]) -> None:
        """Replace the fault rules (what ``POST /__sim/config`` does)."""
        self.faults.set(faults_from(faults))

    def urls(self) -> dict[str, str]:
        """``<VENUE>_URL`` for every venue served, ``<VENUE>_WS_URL`` where it has WebSockets."""
        out = {}
        for name, url in self.base_urls.items():
            out[f"{name.upper()}_URL"] = url
            if self.venues[name].WEBSOCKET:
                out[f"{name.upper()}_WS_URL"] = self.ws_url(name)
        return out

    async def _ledger(self, request: web.Request) -> web.Response:
        return json_response(self.ledger_snapshot())

    @staticmethod
    def _pushes_of(venue: Dialect) -> Any:
        async def pushes(request: web.Request) -> web.Response:
            return json_response({"pushes": list(getattr(venue, "push_log", ()))})
        return pushes

    async def _get_config(self, request: web.Request) -> web.Response:
        return json_response({"faults": self.faults.describe()})

    async def _set_config(self, request: web.Request) -> web.Response:
        try:
            body = msgspec.json.decode(await request.read())
            self.set_faults(body.get("faults", []))
        except (msgspec.DecodeError, AttributeError, ValueError) as e:
            return json_response({"error": str(e)}, 400)
        return json_response({"faults": self.faults.describe()})
