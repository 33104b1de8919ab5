"""Real exbus processes for fleet tests and the executor benchmark: the venue simulator
(`exbus sim`) and executor replicas (`exbus execute`), each its own OS process, as they
run in production. Output goes to log files, never to pipes nobody reads."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
EXBUS = [sys.executable, "-m", "services.cli"]

UNLIMITED = 10**9


def _lifted_limits() -> str:
    from services.simulator.config import DIALECT_VENUES
    from services.simulator.dialect import dialect_class

    toml = ("[sim.binance.limits]\n"
            f"request_weight_1m = {UNLIMITED}\nraw_requests_5m = {UNLIMITED}\norders_10s = {UNLIMITED}\norders_1d = {UNLIMITED}\n"
            "[sim.upbit.rate_limits]\n"
            + "".join(f"{g} = {UNLIMITED}\n" for g in ("market", "ticker", "orderbook", "trade", "candle", "default", "order")))
    for venue in DIALECT_VENUES:
        names = dialect_class(venue).LIMITS
        if names:
            toml += f"[sim.{venue}.rate_limits]\n" + "".join(f'"{n}" = {UNLIMITED}\n' for n in names)
    return toml


LIFTED_SIM_LIMITS = _lifted_limits()
"""Simulator limits out of the way, on every venue (throughput runs: the venue must not be the bottleneck)."""
LIFTED_MARGIN = 10_000.0
"""Executor rate-limit margin matching LIFTED_SIM_LIMITS: exbus's leases allow 10,000x each
venue's real limits, which the lifted simulator accepts (at 100x, Binance's order limit
held the fleet to ~900 orders/s, below what the executors now do)."""


def process_env(**extra: str) -> dict[str, str]:
    """The environment of an exbus child: no NATS_URL/EXBUS_* from the caller's shell."""
    env = {k: v for k, v in os.environ.items() if not (k.startswith("EXBUS_") or k == "NATS_URL")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


class SimProcess:
    """`exbus sim` in its own process; ``urls`` holds what it printed (``<VENUE>_URL``, ``<VENUE>_WS_URL``, LEDGER)."""

    def __init__(self, workdir: Path, config_toml: str = "[sim]\nreplay = false\n") -> None:
        self.workdir = workdir
        self.config_toml = config_toml
        self.urls: dict[str, str] = {}
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, timeout_s: float = 60.0) -> "SimProcess":
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "sim.toml"
        config.write_text(self.config_toml)
        self._log = open(self.workdir / "sim.log", "wb")
        self.proc = await asyncio.create_subprocess_exec(
            *EXBUS, "sim", "--sim-config", str(config), env=process_env(EXBUS_LOG_LEVEL="warning"),
            stdout=asyncio.subprocess.PIPE, stderr=self._log, cwd=ROOT)
        assert self.proc.stdout is not None
        while "LEDGER" not in self.urls:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout_s)
            if not line:
                raise RuntimeError(f"exbus sim exited: {(self.workdir / 'sim.log').read_text()[-2000:]}")
            name, _, value = line.decode().strip().partition("=")
            self.urls[name] = value
        return self

    @property
    def venue_urls(self) -> dict[str, str]:
        """Venue -> the REST base URL the simulator printed (``<VENUE>_URL``)."""
        return {name[:-4].lower(): url for name, url in self.urls.items()
                if name.endswith("_URL") and not name.endswith("_WS_URL")}

    async def ledger(self) -> dict[str, Any]:
        """GET /__sim/ledger."""
        async with aiohttp.ClientSession() as http:
            async with http.get(self.urls["LEDGER"], timeout=aiohttp.ClientTimeout(total=60)) as r:
                r.raise_for_status()
                return await r.json()

    async def set_faults(self, faults: list[dict[str, Any]]) -> None:
        """POST /__sim/config: replace the fault rules."""
        async with aiohttp.ClientSession() as http:
            async with http.post(self.urls["BINANCE_URL"] + "/__sim/config", json={"faults": faults}) as r:
                r.raise_for_status()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self._log.close()

    async def __aenter__(self) -> "SimProcess":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def executor_env(nats_url: str, venue_urls: dict[str, str], **settings: Any) -> dict[str, str]:
    """EXBUS_EXECUTOR_* settings for `exbus execute` (values as TOML scalars)."""
    table = ", ".join(f'{v} = "{u}"' for v, u in venue_urls.items())
    env = {"NATS_URL": nats_url, "EXBUS_EXECUTOR_VENUE_URLS": "{" + table + "}", "EXBUS_LOG_LEVEL": "warning",
           "EXBUS_OBSERVABILITY_HOST": "127.0.0.1", "EXBUS_OBSERVABILITY_EXECUTOR_PORT": "0"}  # replicas side by side
    env.update({f"EXBUS_EXECUTOR_{k.upper()}": str(v) for k, v in settings.items()})
    return env


class ExbusProcess:
    """One `exbus ...` child process, its output in ``<workdir>/<name>.log``; ``kill`` is
    SIGKILL (no drain), ``stop`` SIGTERM and wait."""

    def __init__(self, name: str, workdir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.workdir = workdir
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def argv(self) -> list[str]:
        """The exbus arguments (after ``exbus``)."""
        raise NotImplementedError

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = await asyncio.create_subprocess_exec(*EXBUS, *self.argv(), env=process_env(**self.env),
                                                             stdout=log, stderr=log, cwd=ROOT)
        self.starts += 1

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def stop(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM and wait (an executor drains and finishes what it started)."""
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout_s)
            except asyncio.TimeoutError:
                await self.kill()
        return self.proc.returncode

    def log_tail(self, chars: int = 1500) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


class ExecutorProcess(ExbusProcess):
    """One `exbus execute --sim-credentials` process."""

    def __init__(self, name: str, workdir: Path, env: dict[str, str], replicas: int = 1) -> None:
        super().__init__(name, workdir, env)
        self.replicas = replicas

    def argv(self) -> list[str]:
        return ["execute", "--sim-credentials", "--replicas", str(self.replicas)]
