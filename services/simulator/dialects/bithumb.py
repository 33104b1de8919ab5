"""Bithumb as the simulator speaks it, on the simulator core.

(Being written: routes, authentication and replies follow.)
"""

from __future__ import annotations

from decimal import Decimal

from services.simulator.config import Account
from services.simulator.dialect import Dialect

_BALANCES = {a: Decimal(n) for a, n in {"KRW": "100000000000", "BTC": "100", "ETH": "1000"}.items()}


class BithumbDialect(Dialect):
    name = "bithumb"
    ROUTES = []
    MARKETS = []
    DEFAULT_ACCOUNTS = [
        Account(name="demo", api_key="sim-bithumb-demo-access", secret="sim-bithumb-demo-secret-0000000000000000000000000000000000000000", balances=_BALANCES),
        Account(name="taker", api_key="sim-bithumb-taker-access", secret="sim-bithumb-taker-secret-000000000000000000000000000000000000000", balances=_BALANCES),
    ]
    """Paper accounts of the simulator (not anyone's secrets): ``demo`` for strategies and
    the demo, ``taker`` for the other side of the market in tests."""


DIALECT = BithumbDialect
