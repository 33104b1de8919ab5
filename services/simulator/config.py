"""Simulator configuration: accounts (API keys, secrets, starting balances), venue
limits and fees, market replay, and injected faults.

Built from a dict (a TOML table, a test's literal) with :func:`sim_config`; every field
has a default, so ``sim_config({})`` is a working simulator with one paper account per
venue. The default credentials below are paper keys of the simulator only.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import msgspec

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RECORDED_DIR = PROJECT_ROOT.parent / "shared" / "data" / "recorded"
"""Recorded exchange traffic (../shared/data/recorded beside the project)."""


class Account(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One API key of a venue account and the balances it starts with."""

    name: str
    """Account label: the ledger reports usage and orders under it."""
    api_key: str
    """The venue's key id (Coinbase: the key name ``organizations/.../apiKeys/...``)."""
    secret: str
    """The signing secret (Coinbase: the EC private key, PEM; Kraken: base64)."""
    passphrase: str = ""
    """OKX's API key passphrase (other venues have none)."""
    balances: dict[str, Decimal] = {}
    """Starting balances by exbus asset name (BTC, USD, KRW)."""

    def __repr__(self) -> str:  # the secret never reaches a log or a traceback
        return f"Account(name={self.name!r}, api_key={self.api_key!r}, secret=<redacted>)"

    __str__ = __repr__


FaultKind = Literal["latency", "error_5xx", "timeout", "drop", "malformed"]


class Fault(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A fault injected into matching requests.

    - ``latency``: wait ``latency_ms`` before handling the request.
    - ``error_5xx``: answer ``status`` with the venue's error body; ``when="before"``
      (default) the request is not processed, ``"after"`` it is (outcome unknown to the client).
    - ``timeout``: process the request, then never answer (until the simulator stops).
    - ``drop``: process the request, then close the connection without an answer.
    - ``malformed``: process the request, then answer 200 with a truncated, non-JSON body.
    """

    kind: FaultKind
    ratio: float = 1.0
    """Probability that a matching request gets the fault (seeded; 1.0 = every one)."""
    venue: Literal["", "binance", "coinbase", "kraken", "bitfinex", "okx", "upbit", "bithumb", "korbit", "coinone"] = ""
    """Only this venue ("" = every venue)."""
    route: str = "place"
    """``place`` (new orders), ``cancel``, ``*`` (every venue route), ``/path`` or ``METHOD /path``."""
    count: int = 0
    """Fire at most this many times (0 = no limit)."""
    latency_ms: float = 0.0
    status: int = 503
    """Status of an ``error_5xx`` answer (429 or 418 stand for the venue's rate-limit answers)."""
    retry_after_s: int = 0
    """``Retry-After`` header of an ``error_5xx`` answer (0 = none)."""
    when: Literal["", "before", "after"] = ""
    """Whether the request is processed before the fault ("" = the kind's default)."""


class BanPolicy(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """429 -> 418 escalation. Binance: "Repeatedly violating rate limits and/or failing to
    back off after receiving 429s will result in an automated IP ban (HTTP status 418)",
    bans "scale in duration for repeat offenders, from 2 minutes to 3 days" (rest-api.md).
    Upbit documents the same 429 -> 418 pattern with growing blocks."""

    requests_after_429: int = 3
    """Requests a client may still send while told to back off; the next one is banned."""
    first_ban_s: int = 120
    max_ban_s: int = 3 * 86400


class BinanceLimits(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Binance spot rate limits (rest-api.md LIMITS; exchangeInfo rateLimits). The RAW_REQUESTS
    value follows the 2026-04-02 change noted in research/execution.md section 3."""

    request_weight_1m: int = 6000
    raw_requests_5m: int = 300_000
    orders_10s: int = 100
    orders_1d: int = 200_000


class BinanceSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    accounts: list[Account] = msgspec.field(default_factory=lambda: [Account(
        name=name, api_key=f"sim-binance-{name}-key", secret=f"sim-binance-{name}-secret-" + "0" * (44 - len(name)),
        balances={a: Decimal(v) for a, v in {
            "USDT": "100000", "BTC": "10", "ETH": "100", "EUR": "100000",
            "NKN": "100000", "BLZ": "100000", "LRC": "100000", "RUNE": "10000",
        }.items()},
    ) for name in ("demo", "taker")])
    """``demo`` for strategies and the demo, ``taker`` for the other side of the market in tests."""
    maker_commission: Decimal = Decimal("0.001")
    taker_commission: Decimal = Decimal("0.001")
    limits: BinanceLimits = msgspec.field(default_factory=BinanceLimits)


class UpbitSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    accounts: list[Account] = msgspec.field(default_factory=lambda: [Account(
        name=name, api_key=f"sim-upbit-{name}-access", secret=f"sim-upbit-{name}-secret-" + "0" * (46 - len(name)),
        balances={a: Decimal(v) for a, v in {
            "KRW": "100000000", "BTC": "10", "LAMB": "1000000", "WAVES": "10000",
            "ITAM": "100000", "PAX": "100000", "XTZ": "10000",
        }.items()},
    ) for name in ("demo", "taker")])
    fees: dict[str, Decimal] = msgspec.field(default_factory=lambda: {
        "KRW": Decimal("0.0005"), "BTC": Decimal("0.0025"), "USDT": Decimal("0.0025"),
    })
    """Trading fee by quote currency (maker = taker)."""
    min_total: dict[str, Decimal] = msgspec.field(default_factory=lambda: {
        "KRW": Decimal("5000"), "BTC": Decimal("0.00005"), "USDT": Decimal("0.5"),
    })
    """Minimum order total by quote currency (under_min_total_bid/ask below it)."""
    rate_limits: dict[str, int] = msgspec.field(default_factory=lambda: {
        "market": 10, "ticker": 10, "orderbook": 10, "trade": 10, "candle": 10,
        "default": 30, "order": 12,
    })
    """Requests per second by Remaining-Req group (docs.upbit.com rate-limits; order 8 -> 12
    from 2026-08-21). Quotation groups count per IP, exchange groups per account."""


class VenueSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One venue served by a dialect on the simulator core (every venue but Binance and
    Upbit, which keep their sections above). Every field is optional: without accounts
    the dialect's paper accounts (``DEFAULT_ACCOUNTS`` of its module) are used."""

    port: int = 0
    """0: a free port chosen by the OS."""
    accounts: list[Account] = []
    maker_fee: Decimal | None = None
    """Fee rates (None: the dialect's default)."""
    taker_fee: Decimal | None = None
    rate_limits: dict[str, int] = {}
    """Overrides of the dialect's ``LIMITS`` capacities by name (requests per window)."""


DIALECT_VENUES = ("coinbase", "kraken", "bitfinex", "okx", "bithumb", "korbit", "coinone")
"""The venues configured by :class:`VenueSettings`."""


class SimConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The whole simulator configuration."""

    host: str = "127.0.0.1"
    binance_port: int = 0
    """0: a free port chosen by the OS."""
    upbit_port: int = 0
    recorded_dir: str = ""
    """Directory of the recorded files ("" = ../shared/data/recorded)."""
    replay: bool = True
    """Replay the recorded streams in a loop (moving books, trades that fill resting orders)."""
    replay_speed: float = 1.0
    seed: int = 0
    """Seed of the fault dice."""
    ban: BanPolicy = msgspec.field(default_factory=BanPolicy)
    binance: BinanceSettings = msgspec.field(default_factory=BinanceSettings)
    upbit: UpbitSettings = msgspec.field(default_factory=UpbitSettings)
    coinbase: VenueSettings = msgspec.field(default_factory=VenueSettings)
    kraken: VenueSettings = msgspec.field(default_factory=VenueSettings)
    bitfinex: VenueSettings = msgspec.field(default_factory=VenueSettings)
    okx: VenueSettings = msgspec.field(default_factory=VenueSettings)
    bithumb: VenueSettings = msgspec.field(default_factory=VenueSettings)
    korbit: VenueSettings = msgspec.field(default_factory=VenueSettings)
    coinone: VenueSettings = msgspec.field(default_factory=VenueSettings)
    venues: list[Literal["binance", "coinbase", "kraken", "bitfinex", "okx", "upbit", "bithumb", "korbit", "coinone"]] = []
    """The venues to serve ([] = all nine)."""
    faults: list[Fault] = []

    def recorded_path(self) -> Path:
        return Path(self.recorded_dir) if self.recorded_dir else DEFAULT_RECORDED_DIR


def sim_config(data: SimConfig | dict[str, Any] | None = None) -> SimConfig:
    """A SimConfig from a dict (TOML-shaped) or an existing one; raises ValueError naming the bad key."""
    if isinstance(data, SimConfig):
        return data
    try:
        return msgspec.convert(data or {}, SimConfig, strict=False)
    except msgspec.ValidationError as e:
        raise ValueError(f"simulator config: {e}") from None


def faults_from(data: list[dict[str, Any]]) -> list[Fault]:
    """Fault list from dicts (the body of ``POST /__sim/config``)."""
    try:
        return msgspec.convert(data, list[Fault], strict=False)
    except msgspec.ValidationError as e:
        raise ValueError(f"faults: {e}") from None


def load_sim_config(path: str | Path, *, table_only: bool = False) -> SimConfig:
    """Read a TOML file: its ``[sim]`` table if there is one, else the whole file
    (``table_only``: else the defaults, for the exbus config file)."""
    try:
        raw = tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: {e}") from None
    return sim_config(raw.get("sim", {} if table_only else raw))
