"""Live and test environments per venue: the one table of every venue's published test
endpoints, and how a service picks its endpoints for a venue.

A venue's config says ``environment = "live"`` (the default) or ``"testnet"``
(``[venues.<venue>]``, read by the executor and the ingestor alike). Live endpoints are the
venue modules' own (``base_url`` of ``<venue>/rest.py``, ``url`` of ``ws.py`` and
``private.py``); :data:`TESTNETS` holds what the venue publishes for testing, per
surface: REST, public WebSocket, private WebSocket, extra REST headers. A surface the
venue does not offer in its test environment is ``None``: a service that needs it refuses
the venue (:class:`NoTestnet`) and never falls back to live. An explicit URL override
(``executor.venue_urls``, ``ingestor.venues.<v>.url`` / ``rest_url``, the simulator's
URLs under ``exbus up --sim``) always wins; the venue's environment still says which
keys it takes (live keys for live, testnet keys for testnet).
"""

from __future__ import annotations

from typing import Literal

import msgspec

Environment = Literal["live", "testnet"]
ENVIRONMENTS: tuple[str, ...] = ("live", "testnet")


class Testnet(msgspec.Struct, frozen=True, kw_only=True):
    """A venue's published test environment. ``None``: no test endpoint for that surface."""

    name: str
    """What the venue calls it."""
    rest_url: str | None
    ws_url: str | None
    """Public market-data WebSocket."""
    private_ws_url: str | None
    """Private order stream."""
    rest_headers: dict[str, str] = {}
    """Headers added to every REST request (OKX: ``x-simulated-trading: 1``)."""
    keys: str = ""
    """Where its API keys come from."""
    notes: str = ""
    source: str = ""

    @property
    def exists(self) -> bool:
        return self.rest_url is not None or self.ws_url is not None


def _none(notes: str, source: str) -> Testnet:
    return Testnet(name="", rest_url=None, ws_url=None, private_ws_url=None, notes=notes, source=source)


TESTNETS: dict[str, Testnet] = {
    "binance": Testnet(
        name="Spot Test Network",
        rest_url="https://testnet.binance.vision",
        ws_url="wss://stream.testnet.binance.vision/stream",
        private_ws_url="wss://ws-api.testnet.binance.vision/ws-api/v3",
        keys="own keys, made at testnet.binance.vision (GitHub login)",
        notes="balances and books are the testnet's own, reset from time to time; Binance's separate "
              "Demo Mode (demo-api.binance.com) is not used",
        source="binance-spot-api-docs testnet/general-info.md",
    ),
    "okx": Testnet(
        name="Demo Trading",
        rest_url="https://www.okx.com",
        ws_url="wss://wspap.okx.com:8443/ws/v5/public",
        private_ws_url="wss://wspap.okx.com:8443/ws/v5/private",
        rest_headers={"x-simulated-trading": "1"},
        keys="demo-trading keys, made under Demo Trading on okx.com",
        notes="the live REST host with header x-simulated-trading: 1; demo WebSocket hosts (EEA: wseeapap.okx.com)",
        source="okx.com/docs-v5/en 'Demo Trading Services'",
    ),
    "coinbase": Testnet(
        name="Advanced Trade static sandbox",
        rest_url="https://api-sandbox.coinbase.com",
        ws_url=None,
        private_ws_url=None,
        keys="none: the sandbox takes requests without authentication",
        notes="REST for Accounts and Orders only, with static, pre-defined answers (a wiring check, not "
              "trading); no market-data endpoints and no WebSocket sandbox: the ingestor refuses coinbase, "
              "the executor polls its orders",
        source="docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/sandbox",
    ),
    "bitfinex": Testnet(
        name="paper trading",
        rest_url="https://api.bitfinex.com",
        ws_url="wss://api-pub.bitfinex.com/ws/2",
        private_ws_url="wss://api.bitfinex.com/ws/2",
        keys="keys of a paper-trading sub-account",
        notes="the live hosts: the sub-account's keys make it paper, and only TEST pairs trade there "
              "(TESTBTC-TESTUSD = tTESTBTC:TESTUSD); exbus cannot tell a paper key from a live one by "
              "its endpoint, so the vault's key environment is the only guard",
        source="support.bitfinex.com/hc/en-us/articles/115003363429",
    ),
    "kraken": _none("spot has none; the Futures demo is futures only", "support.kraken.com 360000919926"),
    "upbit": _none("no test environment published", "docs.upbit.com"),
    "bithumb": _none("no test environment published", "apidocs.bithumb.com"),
    "korbit": _none("no hosted test environment; Korbit publishes a self-hosted mock (korbit-sandbox.mjs) "
                    "that exbus can use through URL overrides", "docs.korbit.co.kr sandbox"),
    "coinone": _none("no test environment published", "docs.coinone.co.kr"),
}
"""Every venue's test environment (exbus venue ids, schemas.common.VENUES)."""


OVERRIDES = {"REST": "executor.venue_urls.{venue}", "WebSocket": "ingestor.venues.{venue}.url",
             "market-data REST": "ingestor.venues.{venue}.rest_url"}
"""The explicit URL that stands in for a missing test endpoint, by surface."""


class NoTestnet(ValueError):
    """The venue runs in testnet, and its test environment lacks what a service needs."""

    def __init__(self, venue: str, surface: str) -> None:
        t = TESTNETS.get(venue)
        if t is None or not t.exists:
            why = f"{venue} has no testnet" + (f" ({t.notes})" if t is not None and t.notes else "")
        else:
            why = f"{venue}'s {t.name} has no {surface}"
        override = OVERRIDES.get(surface, "").format(venue=venue)
        super().__init__(f"{why}; exbus never falls back to live: set [venues.{venue}] environment = \"live\""
                         + (f", or point {override} at a test server of your own" if override else ""))
        self.venue = venue
        self.surface = surface


class Endpoints(msgspec.Struct, frozen=True, kw_only=True):
    """Where a service connects for one venue. ``None``: the venue module's own (live)."""

    environment: Environment = "live"
    rest_url: str | None = None
    ws_url: str | None = None
    private_ws_url: str | None = None
    rest_headers: dict[str, str] = {}


def endpoints(venue: str, environment: str = "live", *, rest_url: str | None = None,
              ws_url: str | None = None) -> Endpoints:
    """The endpoints of ``venue`` in ``environment``; ``rest_url`` / ``ws_url`` are explicit
    overrides and win. Surfaces the test environment lacks stay ``None`` here: ask
    :func:`require` before using one."""
    if environment not in ENVIRONMENTS:
        raise ValueError(f"{venue}: unknown environment {environment!r}; one of {', '.join(ENVIRONMENTS)}")
    if environment == "live":
        return Endpoints(rest_url=rest_url or None, ws_url=ws_url or None)
    t = TESTNETS.get(venue) or _none("unknown venue", "")
    return Endpoints(environment="testnet", rest_url=rest_url or t.rest_url, ws_url=ws_url or t.ws_url,
                     # an overridden REST host (the simulator) also serves the private stream
                     private_ws_url=None if rest_url else t.private_ws_url,
                     # kept with an override too: a proxy in front of OKX stays in demo trading
                     rest_headers=dict(t.rest_headers))


def require(venue: str, environment: str,
            surface: Literal["REST", "WebSocket", "private WebSocket", "market-data REST"],
            url: str | None, overridden: bool = False) -> str | None:
    """``url`` for use; raises :class:`NoTestnet` when the venue runs in testnet without one
    (``overridden``: an explicit override stands in, e.g. the simulator's host)."""
    if environment == "testnet" and url is None and not overridden:
        raise NoTestnet(venue, surface)
    return url


def feed_uses_rest(venue: str) -> bool:
    """The venue's market-data feed also fetches over REST (book snapshots, trade backfill),
    so a testnet feed needs the testnet's REST too."""
    from services.venues.wsbase import ws_adapter

    cls = ws_adapter(venue)
    return cls.resync == "rest" or bool(cls.trades_page_limit)


__all__ = ["ENVIRONMENTS", "Endpoints", "Environment", "NoTestnet", "TESTNETS", "Testnet", "endpoints",
           "feed_uses_rest", "require"]
