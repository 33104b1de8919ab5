"""OKX v5 as the simulator speaks it, on the simulator core.

(Being written: routes, authentication and replies follow.)
"""

from __future__ import annotations

from decimal import Decimal

from services.simulator.config import Account
from services.simulator.dialect import Dialect

_BALANCES = {a: Decimal(n) for a, n in {"USDT": "10000000", "USDC": "10000000", "BTC": "100", "ETH": "1000"}.items()}


class OkxDialect(Dialect):
    name = "okx"
    ROUTES = []
    MARKETS = []
    DEFAULT_ACCOUNTS = [
        Account(name="demo", api_key="sim-okx-demo-key", secret="SIMOKXDEMOSECRET0000000000000000", passphrase="sim-okx-demo-passphrase", balances=_BALANCES),
        Account(name="taker", api_key="sim-okx-taker-key", secret="SIMOKXTAKERSECRET000000000000000", passphrase="sim-okx-taker-passphrase", balances=_BALANCES),
    ]
    """Paper accounts of the simulator (not anyone's secrets): ``demo`` for strategies and
    the demo, ``taker`` for the other side of the market in tests."""


DIALECT = OkxDialect
