"""Coinone v2.1 as the simulator speaks it, on the simulator core.

(Being written: routes, authentication and replies follow.)
"""

from __future__ import annotations

from decimal import Decimal

from services.simulator.config import Account
from services.simulator.dialect import Dialect

_BALANCES = {a: Decimal(n) for a, n in {"KRW": "100000000000", "BTC": "100", "ETH": "1000"}.items()}


class CoinoneDialect(Dialect):
    name = "coinone"
    ROUTES = []
    MARKETS = []
    DEFAULT_ACCOUNTS = [
        Account(name="demo", api_key="sim-coinone-demo-access", secret="SIM-COINONE-DEMO-SECRET-000000000000", balances=_BALANCES),
        Account(name="taker", api_key="sim-coinone-taker-access", secret="SIM-COINONE-TAKER-SECRET-00000000000", balances=_BALANCES),
    ]
    """Paper accounts of the simulator (not anyone's secrets): ``demo`` for strategies and
    the demo, ``taker`` for the other side of the market in tests."""


DIALECT = CoinoneDialect
