"""`exbus config check [FILE]`: every error of a config file at once, each naming its key.

``load_config`` stops at the first problem msgspec finds; an operator editing a file
wants the whole list. The check walks the file against the sections of
services.config.Config (plus the simulator's ``[sim]`` table), so a section added there
is checked here without change, then applies the rules a type cannot say: venue ids,
``BASE-QUOTE`` symbols, channels, URL schemes, ports, replica counts, vault policy
patterns naming known venues, service public keys. Environment overrides
(``EXBUS_<SECTION>_<KEY>``, ``NATS_URL``) are checked too, as the services would load
them, and reported under the variable's name. Values that may hold secrets are never
echoed.
"""

from __future__ import annotations

import argparse
import difflib
import fnmatch
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from decimal import Decimal
from typing import Any, Callable, Iterator, Literal, Mapping, Union
from urllib.parse import urlsplit

import msgspec
from msgspec import inspect as mi

from schemas.common import VENUES
from schemas.market import CHANNELS
from services.config import Config, ConfigFileError, _env_overrides, config_path, read_tables
from services.simulator.config import SimConfig

SYMBOL = re.compile(r"^[A-Z0-9]{1,16}-[A-Z0-9]{1,16}$")
ACCOUNT_PATTERN = re.compile(r"^[a-z0-9_*?\[\]-]{1,32}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_WORDS = ("password", "secret", "api_key", "passphrase", "token", "master_key", "key_file")
MAX_STREAM_REPLICAS = 5
"""JetStream keeps at most 5 replicas of a stream."""

EXTRA_SECTIONS: dict[str, Any] = {"sim": SimConfig}
"""Tables of the config file read by something other than Config (``exbus sim --config``)."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem: the dotted key (``ingestor.venues.binance.symbols[1]``) and what is wrong."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" if self.key else self.message


def _looks_secret(key: str) -> bool:
    return any(word in key.lower() for word in SECRET_WORDS)


def _shown(key: str, value: Any) -> str:
    """A value for a message: redacted under secret-looking keys, URLs without userinfo."""
    if _looks_secret(key):
        return "<redacted>"
    if isinstance(value, str) and "@" in value and "://" in value:
        return re.sub(r"://[^/@]*@", "://<redacted>@", value)
    return repr(value)


# --- structure: unknown keys, wrong types, missing keys ------------------------------------

def _structure(value: Any, t: Any, key: str) -> Iterator[ConfigIssue]:
    """Issues of ``value`` against the msgspec type ``t``; containers are walked so every
    bad leaf is reported, leaves are converted exactly as load_config does (strict=False)."""
    if isinstance(t, mi.StructType):
        if not isinstance(value, dict):
            yield ConfigIssue(key, f"expected a table, got {type(value).__name__}")
            return
        fields = {f.encode_name: f for f in t.fields}
        for name, item in value.items():
            sub = f"{key}.{name}" if key else name
            field = fields.get(name)
            if field is None:
                close = difflib.get_close_matches(name, fields, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                yield ConfigIssue(sub, f"unknown key{hint}; known: {', '.join(fields)}")
                continue
            yield from _structure(item, field.type, sub)
        for field in t.fields:
            if field.required and field.encode_name not in value:
                yield ConfigIssue(f"{key}.{field.encode_name}" if key else field.encode_name, "missing required key")
    elif isinstance(t, mi.DictType):
        if not isinstance(value, dict):
            yield ConfigIssue(key, f"expected a table, got {type(value).__name__}")
            return
        for name, item in value.items():
            yield from _structure(item, t.value_type, f"{key}.{name}")
    elif isinstance(t, mi.ListType):
        if not isinstance(value, list):
            yield ConfigIssue(key, f"expected an array, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            yield from _structure(item, t.item_type, f"{key}[{i}]")
    elif isinstance(t, mi.LiteralType) and value not in t.values:
        yield ConfigIssue(key, f"{_shown(key, value)} is not one of {', '.join(map(str, t.values))}")
    else:
        try:
            msgspec.convert(value, _python_type(t), strict=False)
        except msgspec.ValidationError as e:
            yield ConfigIssue(key, str(e).split(" - at ")[0])


_LEAVES: dict[type, Any] = {
    mi.IntType: int, mi.FloatType: float, mi.BoolType: bool, mi.StrType: str,
    mi.DecimalType: Decimal, mi.NoneType: None,
}


def _python_type(t: Any) -> Any:
    """The annotation msgspec.convert needs for a leaf type (Any for what we do not know)."""
    if isinstance(t, mi.LiteralType):
        return Literal[t.values]  # type: ignore[valid-type]
    if isinstance(t, mi.UnionType):
        return Union[tuple(_python_type(x) for x in t.types)]  # type: ignore[return-value]
    return _LEAVES.get(type(t), Any)


# --- rules a type cannot say ----------------------------------------------------------------

def _url_issue(key: str, value: Any, schemes: tuple[str, ...]) -> ConfigIssue | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as e:
        return ConfigIssue(key, f"invalid URL {_shown(key, value)}: {e}")
    if parts.scheme not in schemes:
        return ConfigIssue(key, f"invalid URL {_shown(key, value)}: scheme must be one of {', '.join(schemes)}")
    if not parts.hostname:
        return ConfigIssue(key, f"invalid URL {_shown(key, value)}: no host")
    if port == 0:
        return ConfigIssue(key, f"invalid URL {_shown(key, value)}: port 0")
    return None


def _venue_issue(key: str, venue: Any) -> ConfigIssue | None:
    if venue in VENUES:
        return None
    return ConfigIssue(key, f"unknown venue {venue!r}; venues: {' '.join(VENUES)}")


def _walk_ports(value: Any, key: str) -> Iterator[ConfigIssue]:
    """Every ``port`` / ``*_port`` integer in the file: 0 (pick a free one) .. 65535."""
    if isinstance(value, dict):
        for name, item in value.items():
            sub = f"{key}.{name}" if key else name
            if (name == "port" or name.endswith("_port")) and isinstance(item, int) and not isinstance(item, bool):
                if not 0 <= item <= 65535:
                    yield ConfigIssue(sub, f"port {item} out of range 0..65535")
            else:
                yield from _walk_ports(item, sub)


def _table(raw: Mapping[str, Any], *path: str) -> dict[str, Any]:
    node: Any = raw
    for name in path:
        node = node.get(name) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def _numbers(raw: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    rules: list[tuple[str, str, Callable[[float], bool], str]] = [
        ("streams", "replicas", lambda v: 1 <= v <= MAX_STREAM_REPLICAS, f"must be 1..{MAX_STREAM_REPLICAS} (3 on a cluster)"),
        ("executor", "concurrency", lambda v: v >= 1, "must be >= 1"),
        ("executor", "max_deliver", lambda v: v >= 1, "must be >= 1"),
        ("executor", "rate_limit_margin", lambda v: 0 < v <= 1, "must be in (0, 1]"),
        ("executor", "ack_wait_s", lambda v: v >= 1, "must be >= 1 (10 s: above a NATS leader election)"),
        ("executor", "tracker_interval_s", lambda v: v > 0, "must be > 0"),
        ("executor", "request_timeout_s", lambda v: v > 0, "must be > 0"),
        ("nats", "connect_timeout_s", lambda v: v > 0, "must be > 0"),
        ("nats", "ping_interval_s", lambda v: v > 0, "must be > 0"),
        ("ingestor", "reconnect_initial_s", lambda v: v > 0, "must be > 0"),
        ("ingestor", "reconnect_max_s", lambda v: v > 0, "must be > 0"),
        ("vault", "lease_ttl_s", lambda v: v > 0, "must be > 0"),
        ("vault", "token_max_age_s", lambda v: v > 0, "must be > 0"),
        ("vault", "request_timeout_s", lambda v: v > 0, "must be > 0"),
        ("vault", "retain_versions", lambda v: v >= 1, "must be >= 1 (the current version always stays)"),
        ("vault", "retain_version_age_s", lambda v: v >= 0, "must be >= 0 (0: no age limit)"),
        ("vault", "purge_interval_s", lambda v: v >= 0, "must be >= 0 (0: only `exbus vault purge`)"),
    ]
    for section, name, ok, message in rules:
        value = _table(raw, section).get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not ok(value):
            yield ConfigIssue(f"{section}.{name}", f"{value} {message}")


def _nats(raw: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    nats = _table(raw, "nats")
    url = nats.get("url")
    if isinstance(url, str):
        for i, one in enumerate(u.strip() for u in url.split(",") if u.strip()):
            issue = _url_issue("nats.url" + (f" (server {i + 1})" if "," in url else ""), one,
                               ("nats", "tls", "ws", "wss"))
            if issue:
                yield issue
    if bool(nats.get("tls_cert")) != bool(nats.get("tls_key")):
        yield ConfigIssue("nats.tls_cert", "tls_cert and tls_key go together")
    if nats.get("password") and not nats.get("user"):
        yield ConfigIssue("nats.user", "a password without a user")
    if nats.get("creds_file") and nats.get("user"):
        yield ConfigIssue("nats.creds_file", "use either creds_file or user/password, not both")


def _ingestor(raw: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    for venue, feed in _table(raw, "ingestor", "venues").items():
        key = f"ingestor.venues.{venue}"
        if issue := _venue_issue(key, venue):
            yield issue
        if not isinstance(feed, dict):
            continue
        symbols = feed.get("symbols")
        if isinstance(symbols, list):
            if not symbols:
                yield ConfigIssue(f"{key}.symbols", "no symbols")
            for i, symbol in enumerate(symbols):
                if isinstance(symbol, str) and not SYMBOL.match(symbol):
                    yield ConfigIssue(f"{key}.symbols[{i}]", f"bad symbol {symbol!r}: BASE-QUOTE in upper case, e.g. BTC-USDT")
        channels = feed.get("channels")
        if isinstance(channels, list):
            for i, channel in enumerate(channels):
                if isinstance(channel, str) and channel not in CHANNELS:
                    yield ConfigIssue(f"{key}.channels[{i}]", f"unknown channel {channel!r}; channels: {', '.join(CHANNELS)}")
        for name, schemes in (("url", ("ws", "wss")), ("rest_url", ("http", "https"))):
            if issue := _url_issue(f"{key}.{name}", feed.get(name), schemes):
                yield issue


def _executor(raw: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    for venue, url in _table(raw, "executor", "venue_urls").items():
        key = f"executor.venue_urls.{venue}"
        if issue := _venue_issue(key, venue):
            yield issue
        if issue := _url_issue(key, url, ("http", "https")):
            yield issue
    polled = _table(raw, "executor").get("poll_only")
    for i, venue in enumerate(polled if isinstance(polled, list) else []):
        if issue := _venue_issue(f"executor.poll_only[{i}]", venue):
            yield issue
    egress = _table(raw, "executor").get("egress")
    if isinstance(egress, str) and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", egress):
        yield ConfigIssue("executor.egress", f"{egress!r}: 1-64 of A-Z a-z 0-9 _ - (it is part of KV keys)")
    egress_ip = _table(raw, "executor").get("egress_ip")
    if isinstance(egress_ip, str) and egress_ip and not _is_ip(egress_ip):
        yield ConfigIssue("executor.egress_ip", f"{egress_ip!r} is not an IP address")
    if issue := _url_issue("executor.egress_echo_url", _table(raw, "executor").get("egress_echo_url"), ("http", "https")):
        yield issue


def _is_ip(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _venues(raw: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    """``[venues.<venue>]``: a known venue; ``testnet`` only where the venue has one, or
    where every URL the services need for it is given explicitly."""
    from services.venues.environments import TESTNETS, NoTestnet, feed_uses_rest

    for venue, table in _table(raw, "venues").items():  # unknown venues: reported as unknown keys
        key = f"venues.{venue}"
        if venue not in TESTNETS or not isinstance(table, dict) or table.get("environment") != "testnet":
            continue
        testnet = TESTNETS[venue]
        if testnet.rest_url is None and not _table(raw, "executor", "venue_urls").get(venue):
            yield ConfigIssue(f"{key}.environment", f"the executor: {NoTestnet(venue, 'REST')}")
        feed = _table(raw, "ingestor", "venues", venue)
        if feed and testnet.ws_url is None and not feed.get("url"):
            yield ConfigIssue(f"{key}.environment", f"the ingestor: {NoTestnet(venue, 'WebSocket')}")
        elif feed and testnet.rest_url is None and not feed.get("rest_url") and feed_uses_rest(venue):
            yield ConfigIssue(f"{key}.environment", f"the ingestor: {NoTestnet(venue, 'market-data REST')}")


def _vault(raw: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    vault = _table(raw, "vault")
    for service, patterns in _table(raw, "vault", "policy").items():
        if not isinstance(patterns, list):
            continue
        for i, pattern in enumerate(patterns):
            key = f"vault.policy.{service}[{i}]"
            if not isinstance(pattern, str):
                continue
            venue, sep, account = pattern.partition("/")
            if not sep or not account:
                yield ConfigIssue(key, f"{pattern!r}: expected VENUE/ACCOUNT (patterns allowed: binance/*)")
            elif not fnmatch.filter(VENUES, venue):
                yield ConfigIssue(key, f"{pattern!r} names no known venue; venues: {' '.join(VENUES)}")
            elif not ACCOUNT_PATTERN.match(account):
                yield ConfigIssue(key, f"{pattern!r}: bad account pattern (lower case a-z 0-9 _ - and * ? [])")
    for service, pem in _table(raw, "vault", "service_keys").items():
        if isinstance(pem, str) and (issue := _public_key_issue(f"vault.service_keys.{service}", pem)):
            yield issue
    env = vault.get("master_key_env")
    if isinstance(env, str) and not ENV_NAME.match(env):
        yield ConfigIssue("vault.master_key_env", f"{env!r} is not an environment variable name")
    elif isinstance(env, str) and env.startswith("EXBUS_VAULT_"):
        yield ConfigIssue("vault.master_key_env", "EXBUS_VAULT_* names are config overrides; pick another name")


def _public_key_issue(key: str, pem: str) -> ConfigIssue | None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        loaded = load_pem_public_key(pem.encode())
    except ValueError:
        return ConfigIssue(key, "not a PEM public key")
    if not isinstance(loaded, Ed25519PublicKey):
        return ConfigIssue(key, "not an Ed25519 public key")
    return None


def _observability(raw: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    """Two services on one metrics port clash under `exbus up` (one process, one host)."""
    defaults = msgspec.to_builtins(Config().observability)
    obs = {**defaults, **_table(raw, "observability")}
    ports: dict[int, str] = {}
    for name, value in obs.items():
        if name.endswith("_port") and isinstance(value, int) and value > 0:
            if value in ports:
                yield ConfigIssue(f"observability.{name}", f"port {value} is also {ports[value]} (`exbus up` runs both)")
            ports[value] = f"observability.{name}"


RULES: list[Callable[[Mapping[str, Any]], Iterator[ConfigIssue]]] = [
    _nats, _numbers, _ingestor, _executor, _venues, _vault, _observability,
    lambda raw: _walk_ports(raw, ""),
]


# --- the whole check ----------------------------------------------------------------------

def _schema() -> mi.StructType:
    config = mi.type_info(Config)
    assert isinstance(config, mi.StructType)
    extra = tuple(
        mi.Field(name=name, encode_name=name, type=mi.type_info(t), required=False,
                 default=msgspec.NODEFAULT, default_factory=t)
        for name, t in EXTRA_SECTIONS.items()
    )
    return mi.StructType(cls=Config, fields=config.fields + extra, tag_field=None, tag=None,
                         array_like=False, forbid_unknown_fields=True)


def check_raw(raw: Mapping[str, Any], env_keys: Mapping[str, str] | None = None) -> list[ConfigIssue]:
    """Every issue of a parsed config (TOML tables); ``env_keys`` maps dotted keys that
    came from the environment to their variable, so an issue names where to fix it."""
    issues = list(_structure(dict(raw), _schema(), ""))
    for rule in RULES:
        issues.extend(rule(raw))
    if env_keys:
        issues = [_from_env(issue, env_keys) for issue in issues]
    return issues


def _from_env(issue: ConfigIssue, env_keys: Mapping[str, str]) -> ConfigIssue:
    for key, variable in env_keys.items():
        if issue.key == key or issue.key.startswith(key + "[") or issue.key.startswith(key + " "):
            return ConfigIssue(f"{issue.key} (from ${variable})", issue.message)
    return issue


def _env_layer(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The config tables set by the environment, and dotted key -> variable name."""
    layer: dict[str, Any] = {}
    _env_overrides(layer, env)
    keys: dict[str, str] = {}
    for section, table in layer.items():
        for name, item in table.items():
            if section == "venues" and isinstance(item, dict):  # EXBUS_VENUES_<VENUE>_<KEY>
                keys.update({f"venues.{name}.{k}": f"EXBUS_VENUES_{name}_{k}".upper() for k in item})
                continue
            variable = f"EXBUS_{section}_{name}".upper()
            keys[f"{section}.{name}"] = variable if variable in env else "NATS_URL"
    return layer, keys


def check_file(path: str | Path | None, env: Mapping[str, str] | None = None) -> tuple[Path | None, list[ConfigIssue]]:
    """Check the config file that applies (``path``, else $EXBUS_CONFIG, else ./exbus.toml)
    with the environment's overrides; returns the file and every issue."""
    env = os.environ if env is None else env
    file = config_path(str(path) if path else None, env)
    try:
        raw = read_tables(file)
    except ConfigFileError as e:
        return file, [ConfigIssue("", e.problem)]
    layer, env_keys = _env_layer(env)
    for section, table in layer.items():
        if isinstance(raw.get(section), dict):
            raw[section] = {**raw[section], **table}
        else:
            raw[section] = table
    return file, check_raw(raw, env_keys)


def summary(file: Path | None) -> str:
    """The one-line "ok" report of a valid config."""
    from services.config import load_config

    config = load_config(file)
    venues = config.ingestor.venues
    symbols = sum(len(feed.symbols) for feed in venues.values())
    where = str(file) if file else "defaults (no config file)"
    nats = "embedded nats-server" if not config.nats.url else f"{len(config.nats.url.split(','))} NATS server(s)"
    return (f"ok: {where}: {nats}, stream replicas {config.streams.replicas}, "
            f"ingestor {len(venues)} venue(s) / {symbols} symbol(s), "
            f"executor venue URLs {len(config.executor.venue_urls)}, "
            f"vault policy for {len(config.vault.policy)} service(s)"
            + "".join(f", {venue} on testnet" for venue, env in sorted(config.environments().items()) if env == "testnet"))


# --- the command ------------------------------------------------------------------------------

def register(sub: Any) -> None:
    p = sub.add_parser("config", help="configuration tools")
    cs = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    c = cs.add_parser("check", help="report every error of a config file at once (exit 1 if any)")
    c.add_argument("file", nargs="?", help="config file (default: --config, $EXBUS_CONFIG or ./exbus.toml)")
    c.set_defaults(handler=cmd_config_check)


def cmd_config_check(args: argparse.Namespace) -> int:
    from services.errors import CommandError

    named = config_path(args.file or getattr(args, "config", None))
    if named is not None and not named.is_file():
        raise CommandError(f"{named}: {'not a file' if named.exists() else 'no such file'}")
    if named is not None and not os.access(named, os.R_OK):
        raise CommandError(f"{named}: not readable")
    file, issues = check_file(named)
    if issues:
        where = f"{file}" if file else "environment"
        for issue in issues:
            print(f"{where}: {issue}")
        print(f"{len(issues)} error(s)", file=sys.stderr)
        return 1
    print(summary(file))
    return 0
