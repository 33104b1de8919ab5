"""Loopback venue simulator (a paper venue): Binance spot v3 and Upbit v1 over HTTP and
WebSocket, with recorded market data, matching, balances, rate limits and faults."""

from services.simulator.clock import ManualClock
from services.simulator.config import Account, Fault, SimConfig, load_sim_config, sim_config
from services.simulator.server import Simulator

__all__ = ["Account", "Fault", "ManualClock", "SimConfig", "Simulator", "load_sim_config", "sim_config"]
