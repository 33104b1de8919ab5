"""Coinbase Advanced Trade as the simulator speaks it, on the simulator core.

(Being written: routes, authentication and replies follow.)
"""

from __future__ import annotations

from decimal import Decimal

from services.simulator.config import Account
from services.simulator.dialect import Dialect

_BALANCES = {a: Decimal(n) for a, n in {"USD": "10000000", "USDC": "10000000", "BTC": "100", "ETH": "1000"}.items()}


class CoinbaseDialect(Dialect):
    name = "coinbase"
    ROUTES = []
    MARKETS = []
    DEFAULT_ACCOUNTS = [
        Account(name="demo", api_key="organizations/sim-org/apiKeys/sim-coinbase-demo", secret='-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIM/ekPZFWOO/GhvOy6f8TdMGQXqmP+OGn3KbLEmZ9QbFoAoGCCqGSM49\nAwEHoUQDQgAE3a3L+7sQr1o36uKJGHTQH8nu2XAVmfBErmH6VlQaR9bPULWjTnrd\nWJECNRJA+idguyYLk/Q5RRCrzrX5omufkg==\n-----END EC PRIVATE KEY-----\n', balances=_BALANCES),
        Account(name="taker", api_key="organizations/sim-org/apiKeys/sim-coinbase-taker", secret='-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIPVPsqLIkVrkk99RAccaBocyJzBkZiCplkxEKRtPzfnCoAoGCCqGSM49\nAwEHoUQDQgAEiVKz0+TSdvbs/4DLy6SIO14uNVkJXlsIY4FKHtWqeB5I6f/9rP4W\nTBpGz5oX/yrYiLd7RJMKxPIcapa708pttQ==\n-----END EC PRIVATE KEY-----\n', balances=_BALANCES),
    ]
    """Paper accounts of the simulator (not anyone's secrets): ``demo`` for strategies and
    the demo, ``taker`` for the other side of the market in tests."""


DIALECT = CoinbaseDialect
