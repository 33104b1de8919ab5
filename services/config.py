"""exbus configuration: one TOML file plus environment overrides.

Sources, later wins:
1. defaults below;
2. the TOML file (``--config``, else ``$EXBUS_CONFIG``, else ``./exbus.toml`` if present);
3. ``EXBUS_<SECTION>_<KEY>`` environment variables (``EXBUS_NATS_URL``, ``EXBUS_LOG_LEVEL``,
   ``EXBUS_STREAMS_REPLICAS`` ...), values parsed as TOML scalars where they can be;
4. ``NATS_URL``, the NATS convention, for ``nats.url``.

An empty ``nats.url`` means: start the embedded nats-server.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal, Mapping

import msgspec

from schemas.common import VENUES
from services.executor.settings import ExecutorSettings
from services.ingestor.settings import IngestorSettings
from services.observability.settings import ObservabilitySettings
from services.vault.settings import VaultSettings


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


class NatsSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How services reach NATS."""

    url: str = ""
    """Comma-separated server URLs; empty: run the embedded server."""
    creds_file: str = ""
    """NATS credentials file (JWT + nkey seed) for decentralized auth."""
    user: str = ""
    password: str = ""
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    connect_timeout_s: float = 5.0
    ping_interval_s: float = 2.0
    """PING every this often; two unanswered mark the connection dead and it reconnects
    (a node that hangs without closing its sockets: ~6 s instead of nats-py's 4 minutes)."""
    name: str = "exbus"


class EmbeddedSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The embedded nats-server started when ``nats.url`` is empty."""

    data_dir: str = ".exbus/nats"
    port: int = 0
    """0: a free port chosen by the server."""
    config_file: str = ""
    """Optional nats-server config (e.g. deploy/nats/single.conf with permissions)."""


class StreamSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """JetStream streams and KV buckets (see services.bus.streams)."""

    replicas: int = 1
    """1 on a single server; 3 on a JetStream cluster."""
    orders_duplicate_window_s: float = 120.0
    orders_max_age_s: float = 86400.0
    order_events_max_age_s: float = 7 * 86400.0
    md_capture: bool = False
    """Create stream MD capturing all market data."""
    md_max_age_s: float = 3600.0
    md_max_bytes: int = 1 << 30
    vault_audit_max_age_s: float = 400 * 86400.0
    orders_kv_ttl_s: float = 7 * 86400.0


class LogSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"
    """auto: console on a TTY, JSON otherwise."""


class VenueSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One venue, for every service (``[venues.<venue>]``)."""

    environment: Literal["live", "testnet"] = "live"
    """``testnet``: the venue's published test endpoints for REST, public and private
    WebSocket (services.venues.environments), and only keys marked testnet. A venue
    without a testnet is refused, never run live."""


VenuesSettings = msgspec.defstruct(
    "VenuesSettings", [(venue, VenueSettings, msgspec.field(default_factory=VenueSettings)) for venue in VENUES],
    kw_only=True, forbid_unknown_fields=True, module=__name__)
"""The ``[venues]`` section: one ``[venues.<venue>]`` table per venue id (schemas.common.VENUES)."""


class Config(msgspec.Struct, kw_only=True):
    """The whole configuration. Sections of later services are added here."""

    nats: NatsSettings = msgspec.field(default_factory=NatsSettings)
    embedded: EmbeddedSettings = msgspec.field(default_factory=EmbeddedSettings)
    streams: StreamSettings = msgspec.field(default_factory=StreamSettings)
    log: LogSettings = msgspec.field(default_factory=LogSettings)
    ingestor: IngestorSettings = msgspec.field(default_factory=IngestorSettings)
    executor: ExecutorSettings = msgspec.field(default_factory=ExecutorSettings)
    vault: VaultSettings = msgspec.field(default_factory=VaultSettings)
    observability: ObservabilitySettings = msgspec.field(default_factory=ObservabilitySettings)
    venues: VenuesSettings = msgspec.field(default_factory=VenuesSettings)  # type: ignore[valid-type]

    def environments(self) -> dict[str, str]:
        """Venue -> ``live`` / ``testnet``, for every venue."""
        return {venue: getattr(self.venues, venue).environment for venue in VENUES}


def _parse_scalar(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


SERVER_ONLY_ENV = re.compile(r"^EXBUS_NATS_[A-Z]+_PASSWORD$")
"""Variables nats-server reads (deploy/nats/exbus.conf: one password per service user,
the route password); they are not exbus settings, so a service that sees them ignores them."""


def _env_overrides(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    sections = {name: field for name, field in _section_names()}
    for key, value in env.items():
        if not key.startswith("EXBUS_") or key == "EXBUS_CONFIG" or SERVER_ONLY_ENV.match(key):
            continue
        rest = key[len("EXBUS_"):].lower()
        for section in sorted(sections, key=len, reverse=True):
            if rest.startswith(section + "_"):
                name = rest[len(section) + 1:]
                table = raw.setdefault(section, {})
                if section == "venues":  # EXBUS_VENUES_<VENUE>_<KEY>: one venue's table
                    venue, _, name = name.partition("_")
                    table = table.setdefault(venue, {})
                table[name] = _parse_scalar(value)
                break
    if env.get("NATS_URL"):
        raw.setdefault("nats", {})["url"] = env["NATS_URL"]


def _section_names() -> list[tuple[str, Any]]:
    return [(f.name, f.type) for f in msgspec.structs.fields(Config)]


def config_path(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """The config file that applies, or None when there is none."""
    env = os.environ if env is None else env
    if explicit:
        return Path(explicit)
    if env.get("EXBUS_CONFIG"):
        return Path(env["EXBUS_CONFIG"])
    default = Path("exbus.toml")
    return default if default.exists() else None


class ConfigFileError(ConfigError):
    """The config file cannot be read as TOML; ``problem`` says why, without the path."""

    def __init__(self, file: Path, problem: str) -> None:
        super().__init__(f"config file {file}: {problem}")
        self.problem = problem


def read_tables(file: Path | None) -> dict[str, Any]:
    """The TOML tables of ``file`` ({} when there is none); raises ConfigFileError."""
    if file is None:
        return {}
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigFileError(file, "file does not exist") from None
    except OSError as e:  # a directory, no permission, ...
        raise ConfigFileError(file, f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigFileError(file, f"not UTF-8 text (byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigFileError(file, f"not valid TOML: {e}") from None


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load defaults <- TOML file <- environment; raises ConfigError naming the bad key."""
    env = os.environ if env is None else env
    file = config_path(str(path) if path else None, env)
    raw = read_tables(file)
    _env_overrides(raw, env)
    try:
        return msgspec.convert(raw, Config, strict=False)
    except msgspec.ValidationError as e:
        where = f"{file}" if file else "environment"
        raise ConfigError(f"{where}: {e}") from None


def config_for_command(args: Any) -> Config:
    """Load the config named by a parsed command line (``--config``) and set up logging.

    Raises ConfigError ("config error: <file>: <what, at which key>") when the config is
    invalid; the ``exbus`` command reports it as one line, exit status 2.
    """
    from services.logs import configure_logging

    try:
        config = load_config(getattr(args, "config", None))
    except ConfigError as e:
        raise ConfigError(f"config error: {e}") from None
    configure_logging(config.log.level, config.log.format)
    return config
