"""Where executors get API credentials: the vault in production; a static provider for
the simulator's paper accounts in the demo and tests."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Protocol

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


class CheckedCredentials:
    """A provider whose keys are checked on first use: ``check(venue, account, creds)``
    runs in the background (never delaying the request) the first time a key is held,
    and again when its IP allow-list changes (a replaced key)."""

    def __init__(self, provider: CredentialsProvider,
                 check: Callable[[str, str, Credentials], Awaitable[Any]]) -> None:
        self.provider = provider
        self._check = check
        self._seen: dict[tuple[str, str], tuple[str, ...]] = {}
        self._started: list[asyncio.Task[Any]] = []

    async def get(self, venue: str, account: str) -> Credentials:
        credentials = await self.provider.get(venue, account)
        if self._seen.get((venue, account)) != credentials.allowed_ips:
            self._seen[(venue, account)] = credentials.allowed_ips
            self._started.append(asyncio.create_task(self._check(venue, account, credentials),
                                                     name=f"check-{venue}-{account}"))
        return credentials

    async def checked(self) -> list[Any]:
        """The outcomes of the checks started since the last call, once they are done."""
        started, self._started = self._started, []
        return list(await asyncio.gather(*started))

    def __repr__(self) -> str:
        return f"CheckedCredentials({self.provider!r})"


def paper_keys() -> dict[tuple[str, str], Credentials]:
    """The simulator's default paper accounts on every venue, by (venue, account name):
    ``demo`` for strategies and the demo, ``taker`` for the other side of the market."""
    from services.simulator.config import DIALECT_VENUES, sim_config
    from services.simulator.dialect import dialect_class

    cfg = sim_config({})
    accounts = {"binance": cfg.binance.accounts, "upbit": cfg.upbit.accounts}
    for venue in DIALECT_VENUES:
        accounts[venue] = dialect_class(venue).DEFAULT_ACCOUNTS
    return {(venue, a.name): Credentials(api_key=a.api_key, secret=a.secret, passphrase=a.passphrase or None)
            for venue, listed in accounts.items() for a in listed}


def simulator_credentials(account: str = "demo") -> StaticCredentials:
    """The simulator's paper keys: its ``demo`` account on every venue as ``account``, and
    every other paper account under its own name (``taker``)."""
    return StaticCredentials({(venue, account if name == "demo" else name): creds
                              for (venue, name), creds in paper_keys().items()})
