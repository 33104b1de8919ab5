"""The simulator as a whole: one loopback HTTP + WebSocket server per venue, sharing a
ledger, fault rules and a clock, with the control routes on both.

    async with Simulator({"replay": False}) as sim:
        sim.binance_url, sim.binance_ws_url, sim.upbit_url, sim.upbit_ws_url

Control routes (on either venue's port):
- ``GET /__sim/ledger``: accepted and refused orders, rate-limit usage per scope;
- ``GET /__sim/config``: the fault rules in force;
- ``POST /__sim/config``: ``{"faults": [...]}`` replaces the fault rules at run time.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from aiohttp import web

from services.simulator.binance import BinanceVenue
from services.simulator.clock import Clock, wall_clock
from services.simulator.config import SimConfig, faults_from, sim_config
from services.simulator.faults import FaultInjector, fault_middleware
from services.simulator.ledger import Ledger
from services.simulator.recorded import load_binance, load_upbit
from services.simulator.upbit import UpbitVenue
from services.simulator.venue import Venue, json_response


class Simulator:
    """Simulated Binance and Upbit on free loopback ports."""

    def __init__(self, config: SimConfig | dict[str, Any] | None = None, *, clock: Clock | None = None) -> None:
        self.config = sim_config(config)
        self.clock = clock or wall_clock
        self.ledger = Ledger()
        self.faults = FaultInjector(self.config.faults, self.config.seed)
        self.binance: BinanceVenue
        self.upbit: UpbitVenue
        self.binance_url = self.binance_ws_url = self.upbit_url = self.upbit_ws_url = ""
        self._closing = asyncio.Event()
        self._runners: list[web.AppRunner] = []

    @property
    def venues(self) -> dict[str, Venue]:
        return {"binance": self.binance, "upbit": self.upbit}

    async def start(self) -> "Simulator":
        cfg = self.config
        recorded = cfg.recorded_path()
        binance_rec, upbit_rec = await asyncio.to_thread(lambda: (load_binance(recorded), load_upbit(recorded)))
        self.binance = BinanceVenue(cfg.binance, binance_rec, self.clock, self.ledger, cfg.ban)
        self.upbit = UpbitVenue(cfg.upbit, upbit_rec, self.clock, self.ledger, cfg.ban)
        try:
            port = await self._serve(self.binance, cfg.binance_port)
            self.binance_url, self.binance_ws_url = f"http://{cfg.host}:{port}", f"ws://{cfg.host}:{port}"
            port = await self._serve(self.upbit, cfg.upbit_port)
            self.upbit_url, self.upbit_ws_url = f"http://{cfg.host}:{port}", f"ws://{cfg.host}:{port}"
        except BaseException:
            await self.stop()
            raise
        if cfg.replay:
            for venue in self.venues.values():
                venue.start_replay(cfg.replay_speed)
        return self

    async def _serve(self, venue: Venue, port: int) -> int:
        app = web.Application(middlewares=[fault_middleware(
            self.faults, venue.name, venue.route_kind, self.ledger, self._closing, venue.error_body)])
        venue.add_routes(app)
        app.router.add_get("/__sim/ledger", self._ledger)
        app.router.add_get("/__sim/config", self._get_config)
        app.router.add_post("/__sim/config", self._set_config)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0, handle_signals=False)
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, self.config.host, port)
        await site.start()
        return runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop replay, release unanswered requests, close every connection and port."""
        self._closing.set()
        for name in ("binance", "upbit"):
            venue = getattr(self, name, None)
            if venue is not None:
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
        return self.ledger.snapshot({name: v.usage for name, v in self.venues.items()})

    def set_faults(self, faults: list[dict[str, Any]]) -> None:
        """Replace the fault rules (what ``POST /__sim/config`` does)."""
        self.faults.set(faults_from(faults))

    def urls(self) -> dict[str, str]:
        return {"BINANCE_URL": self.binance_url, "BINANCE_WS_URL": self.binance_ws_url,
                "UPBIT_URL": self.upbit_url, "UPBIT_WS_URL": self.upbit_ws_url}

    async def _ledger(self, request: web.Request) -> web.Response:
        return json_response(self.ledger_snapshot())

    async def _get_config(self, request: web.Request) -> web.Response:
        return json_response({"faults": self.faults.describe()})

    async def _set_config(self, request: web.Request) -> web.Response:
        try:
            body = msgspec.json.decode(await request.read())
            self.set_faults(body.get("faults", []))
        except (msgspec.DecodeError, AttributeError, ValueError) as e:
            return json_response({"error": str(e)}, 400)
        return json_response({"faults": self.faults.describe()})
