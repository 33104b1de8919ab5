"""Loopback venue simulator (a paper venue): Binance spot v3 and Upbit v1 over HTTP and
WebSocket, with recorded market data, matching, balances, rate limits and faults."""

from typing import Any

from services.simulator.clock import ManualClock
from services.simulator.config import Account, Fault, SimConfig, load_sim_config, sim_config


def __getattr__(name: str) -> Any:
    """``Simulator`` is imported on first use: reading the simulator's config (the CLI,
    config check) does not load its servers."""
    if name == "Simulator":
        from services.simulator.server import Simulator

        return Simulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Account", "Fault", "ManualClock", "SimConfig", "Simulator", "load_sim_config", "sim_config"]
