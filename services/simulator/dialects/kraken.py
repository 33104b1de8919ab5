"""Kraken spot as the simulator speaks it, on the simulator core.

(Being written: routes, authentication and replies follow.)
"""

from __future__ import annotations

from decimal import Decimal

from services.simulator.config import Account
from services.simulator.dialect import Dialect

_BALANCES = {a: Decimal(n) for a, n in {"USD": "10000000", "EUR": "10000000", "CHF": "10000000", "BTC": "100", "ETH": "1000", "XMR": "10000", "ADA": "10000000", "SC": "100000000", "WAVES": "100000", "OMG": "100000", "KSM": "10000", "OCEAN": "1000000", "GRT": "1000000"}.items()}


class KrakenDialect(Dialect):
    name = "kraken"
    ROUTES = []
    MARKETS = []
    DEFAULT_ACCOUNTS = [
        Account(name="demo", api_key="sim-kraken-demo-key", secret="c2ltLWtyYWtlbi1kZW1vLXNlY3JldC0wMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMA==", balances=_BALANCES),
        Account(name="taker", api_key="sim-kraken-taker-key", secret="c2ltLWtyYWtlbi10YWtlci1zZWNyZXQtMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMA==", balances=_BALANCES),
    ]
    """Paper accounts of the simulator (not anyone's secrets): ``demo`` for strategies and
    the demo, ``taker`` for the other side of the market in tests."""


DIALECT = KrakenDialect
