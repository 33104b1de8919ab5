"""Where executors get API credentials: the vault in production; a static provider for
the simulator's paper accounts in the demo and tests."""

from __future__ import annotations

from typing import Protocol

from schemas.vault import Credentials


class CredentialsUnavailable(Exception):
    """No credentials for (venue, account): the command fails with auth_error."""


class CredentialsProvider(Protocol):
    async def get(self, venue: str, account: str) -> Credentials:
        """Credentials of (venue, account), or raise CredentialsUnavailable."""
        ...


class StaticCredentials:
    """Credentials held in memory, for paper accounts (simulator) only."""

    def __init__(self, table: dict[tuple[str, str], Credentials]) -> None:
        self._table = dict(table)

    async def get(self, venue: str, account: str) -> Credentials:
        try:
            return self._table[(venue, account)]
        except KeyError:
            raise CredentialsUnavailable(f"no credentials for {venue}/{account}") from None

    def __repr__(self) -> str:
        return f"StaticCredentials({sorted(self._table)})"


def simulator_credentials(account: str = "demo") -> StaticCredentials:
    """The simulator's default paper keys (services/simulator/config.py) as ``account``."""
    from services.simulator.config import sim_config

    cfg = sim_config({})
    b, u = cfg.binance.accounts[0], cfg.upbit.accounts[0]
    return StaticCredentials({
        ("binance", account): Credentials(api_key=b.api_key, secret=b.secret),
        ("upbit", account): Credentials(api_key=u.api_key, secret=u.secret),
    })
