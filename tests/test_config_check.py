"""`exbus config check`: every error of a broken config at once, each naming its key;
"ok" and exit 0 on the shipped configs; secrets never echoed."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import msgspec
import pytest

from services.config import Config
from services.config_check import check_file, check_raw

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "deploy" / "exbus.example.toml"

BROKEN = """
[nats]
url = "nats://a:4222, http://b:4222"
conect_timeout_s = 3
password = "s3cret-pw"

[streams]
replicas = "three"

[log]
level = "verbose"

[ingestor.venues.binanse]
symbols = ["BTC-USDT"]

[ingestor.venues.okx]
symbols = ["BTCUSDT", "eth-usdt", "ETH-USDT"]
channels = ["trades", "book"]
url = "https://ws.okx.com"

[executor]
concurrency = 0
venue_urls = { kraken = "ftp://kraken", mtgox = "http://mtgox" }

[vault]
lease_ttl_s = "long"

[vault.policy]
executor = ["binance/*", "mtgox/main", "kraken"]

[observability]
vault_port = 70000

[embedded]
port = -1

[sim]
upbit_port = 123456

[metrics]
port = 9100
"""

EXPECTED_KEYS = {
    "nats.url (server 2)", "nats.conect_timeout_s", "nats.user", "streams.replicas", "log.level",
    "ingestor.venues.binanse", "ingestor.venues.okx.symbols[0]", "ingestor.venues.okx.symbols[1]",
    "ingestor.venues.okx.channels[0]", "ingestor.venues.okx.url", "executor.concurrency",
    "executor.venue_urls.kraken", "executor.venue_urls.mtgox", "vault.lease_ttl_s",
    "vault.policy.executor[1]", "vault.policy.executor[2]", "observability.vault_port",
    "embedded.port", "sim.upbit_port", "metrics",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exbus.toml"
    path.write_text(text)
    return path


def test_every_error_is_reported_at_once_naming_its_key(tmp_path: Path) -> None:
    file, issues = check_file(write(tmp_path, BROKEN), env={})
    assert {issue.key for issue in issues} == EXPECTED_KEYS
    by_key = {issue.key: issue.message for issue in issues}
    assert "did you mean 'connect_timeout_s'" in by_key["nats.conect_timeout_s"]
    assert "unknown venue 'binanse'" in by_key["ingestor.venues.binanse"]
    assert "bad symbol 'BTCUSDT'" in by_key["ingestor.venues.okx.symbols[0]"]
    assert "names no known venue" in by_key["vault.policy.executor[1]"]
    assert "out of range" in by_key["observability.vault_port"]
    assert "Expected `int`" in by_key["streams.replicas"]
    assert "is not one of debug" in by_key["log.level"]
    assert "scheme must be one of ws, wss" in by_key["ingestor.venues.okx.url"]


def test_the_same_file_is_refused_by_the_loader_too(tmp_path: Path) -> None:
    from services.config import ConfigError, load_config

    with pytest.raises(ConfigError):
        load_config(write(tmp_path, BROKEN), env={})


@pytest.mark.parametrize("text,key,fragment", [
    ("[nats]\nurl = 'nats://h:0'\n", "nats.url", "port 0"),
    ("[nats]\nurl = 'nats://'\n", "nats.url", "no host"),
    ("[nats]\ntls_cert = 'c.pem'\n", "nats.tls_cert", "go together"),
    ("[streams]\nreplicas = 7\n", "streams.replicas", "1..5"),
    ("[executor]\nrate_limit_margin = 1.5\n", "executor.rate_limit_margin", "(0, 1]"),
    ("[executor]\negress = 'eu west'\n", "executor.egress", "KV keys"),
    ("[executor]\npoll_only = ['binance', 'krakken']\n", "executor.poll_only[1]", "unknown venue"),
    ("[ingestor.venues.kraken]\nchannels = ['book']\n", "ingestor.venues.kraken.symbols", "missing required key"),
    ("[ingestor.venues.upbit]\nsymbols = []\n", "ingestor.venues.upbit.symbols", "no symbols"),
    ("[ingestor.venues.upbit]\nsymbols = ['BTC-KRW']\nrest_url = 'ws://x'\n", "ingestor.venues.upbit.rest_url", "http, https"),
    ("[vault.service_keys]\nexecutor = 'not a key'\n", "vault.service_keys.executor", "not a PEM public key"),
    ("[vault]\nmaster_key_env = 'EXBUS_VAULT_KEY'\n", "vault.master_key_env", "config overrides"),
    ("[vault.policy]\nexecutor = ['binance/Main']\n", "vault.policy.executor[0]", "bad account pattern"),
    ("[observability]\nexecutor_port = 9101\n", "observability.executor_port", "also observability.ingestor_port"),
    ("nats = 'nats://x'\n", "nats", "expected a table"),
    ("[sim]\nfaults = [{ kind = 'boom' }]\n", "sim.faults[0].kind", "is not one of"),
])
def test_one_broken_key(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    _, issues = check_file(write(tmp_path, text), env={})
    assert [i.key for i in issues] == [key], issues
    assert fragment in issues[0].message


def test_environment_overrides_are_checked_under_their_variable(tmp_path: Path) -> None:
    _, issues = check_file(write(tmp_path, "[log]\nlevel = 'info'\n"),
                           env={"EXBUS_LOG_LEVEL": "loud", "NATS_URL": "http://nope", "EXBUS_NATS_BOGUS": "x",
                                "EXBUS_NATS_VAULT_PASSWORD": "nats-server's own variable, not a setting"})
    keys = {i.key for i in issues}
    assert keys == {"log.level (from $EXBUS_LOG_LEVEL)", "nats.url (from $NATS_URL)",
                    "nats.bogus (from $EXBUS_NATS_BOGUS)"}


def test_toml_syntax_error_and_missing_file(tmp_path: Path) -> None:
    _, issues = check_file(write(tmp_path, "[nats\nurl = 1\n"), env={})
    assert len(issues) == 1 and "not valid TOML" in issues[0].message and "line 1" in issues[0].message
    _, issues = check_file(tmp_path / "absent.toml", env={})
    assert [i.message for i in issues] == ["file does not exist"]


def test_example_documents_every_key_and_passes() -> None:
    raw = tomllib.loads(EXAMPLE.read_text())
    for section in msgspec.structs.fields(Config):
        assert section.name in raw, f"[{section.name}] missing from the example"
        for key in msgspec.structs.fields(section.type):
            assert key.name in raw[section.name], f"{section.name}.{key.name} missing from the example"
    assert check_raw(raw) == []


def test_cli_reports_errors_with_exit_1_and_never_echoes_secrets(tmp_path: Path, exbus_cmd, clean_env) -> None:
    path = write(tmp_path, BROKEN.replace('"nats://a:4222, http://b:4222"', '"nats://a:4222, http://u:pw-in-url@b"'))
    done = subprocess.run([*exbus_cmd, "config", "check", str(path)], capture_output=True, text=True,
                          env=clean_env, timeout=60)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert len(lines) == len(EXPECTED_KEYS)
    assert all(line.startswith(f"{path}: ") for line in lines)
    assert f"{len(EXPECTED_KEYS)} error(s)" in done.stderr
    assert "pw-in-url" not in done.stdout + done.stderr and "s3cret-pw" not in done.stdout + done.stderr


def test_cli_prints_ok_summary_with_exit_0(exbus_cmd, clean_env) -> None:
    done = subprocess.run([*exbus_cmd, "--config", str(EXAMPLE), "config", "check"], capture_output=True,
                          text=True, env=clean_env, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"ok: {EXAMPLE}: embedded nats-server, stream replicas 1, ingestor 2 venue(s)")
