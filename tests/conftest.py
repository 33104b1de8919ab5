"""Shared fixtures: a real, private nats-server per test (JetStream, free loopback port)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, AsyncIterator

import pytest
from hypothesis import HealthCheck, settings


from services.bus.embedded import EmbeddedNats

if TYPE_CHECKING:
    from services.simulator import Simulator

# Shared machines are slow and busy: no per-example deadline, no too-slow health check.
settings.register_profile("exbus", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("exbus")

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
"""Real exchange payloads (../shared/data beside the project)."""


@pytest.fixture
def shared_data() -> Path:
    """Path of ../shared/data; fails loudly when it is missing."""
    assert SHARED_DATA.is_dir(), f"{SHARED_DATA} missing: ../shared must sit beside the project"
    return SHARED_DATA


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[EmbeddedNats]:
    """A private nats-server process with JetStream, stopped after the test."""
    async with EmbeddedNats(tmp_path / "nats") as server:
        yield server


@pytest.fixture
async def nats_url(nats_server: EmbeddedNats) -> str:
    """URL of a private nats-server started for this test."""
    return nats_server.url


@pytest.fixture
def exbus_cmd() -> list[str]:
    """argv prefix that runs the exbus command with this interpreter."""
    return [sys.executable, "-m", "services.cli"]


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """Environment for exbus subprocesses: no NATS_URL/EXBUS_* leaking in from the shell."""
    env = {k: v for k, v in os.environ.items() if not (k.startswith("EXBUS_") or k == "NATS_URL")}
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.fixture
async def simulator() -> AsyncIterator["Simulator"]:
    """The venue simulator (Binance, Upbit) on free loopback ports with its default paper
    accounts and still books; ``simulator.binance_url``, ``.binance_ws_url``, ``.upbit_url``,
    ``.upbit_ws_url``. Build ``Simulator(settings)`` directly for other accounts or faults."""
    from services.simulator import Simulator

    async with Simulator({"replay": False}) as sim:
        yield sim
