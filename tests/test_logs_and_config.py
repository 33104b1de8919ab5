"""Logs redact anything that looks like a secret; config comes from TOML plus env."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import structlog

from services.config import ConfigError, load_config
from services.logs import configure_logging, redact


def test_redaction_by_key_name_and_by_value_shape() -> None:
    event = {
        "event": "signed request",
        "secret": "s3cr3t",
        "api_key": "AK-1",
        "headers": {"X-MBX-APIKEY": "AK-2", "OK-ACCESS-PASSPHRASE": "pp", "API-Sign": "sig", "Content-Type": "json"},
        "Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.abc",
        "nested": [{"passphrase": "p2"}, {"token": "t"}],
        "note": "sent Bearer abc.def.ghi to the venue",
        "private_key": b"\x00" * 32,
        "symbol": "BTC-USDT",
    }
    out = redact(event)
    text = json.dumps(out)
    for secret in ("s3cr3t", "AK-1", "AK-2", '"pp"', '"sig"', "eyJhbGci", '"p2"', '"t"', "abc.def.ghi"):
        assert secret not in text, secret
    assert out["symbol"] == "BTC-USDT" and out["headers"]["Content-Type"] == "json"


def test_log_lines_never_carry_secrets() -> None:
    buf = io.StringIO()
    configure_logging("debug", "json", stream=buf)
    log = structlog.get_logger(component="test")
    log.info("credentials loaded", api_key="AK-visible", secret="s3cr3t", venue="binance")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("failure", signature="deadbeef")
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert lines[0]["venue"] == "binance" and lines[0]["secret"] == "<redacted>"
    assert "s3cr3t" not in buf.getvalue() and "AK-visible" not in buf.getvalue() and "deadbeef" not in buf.getvalue()
    assert "RuntimeError: boom" in lines[1]["exception"]


def test_config_from_toml_then_env(tmp_path: Path) -> None:
    cfg = tmp_path / "exbus.toml"
    cfg.write_text('[nats]\nurl = "nats://a:4222"\n[streams]\nreplicas = 3\n[log]\nlevel = "debug"\n')
    config = load_config(cfg, env={})
    assert config.nats.url == "nats://a:4222" and config.streams.replicas == 3 and config.log.level == "debug"
    config = load_config(cfg, env={"EXBUS_STREAMS_REPLICAS": "1", "EXBUS_STREAMS_MD_CAPTURE": "true", "NATS_URL": "nats://b:4222"})
    assert config.streams.replicas == 1 and config.streams.md_capture is True and config.nats.url == "nats://b:4222"


def test_defaults_mean_embedded_server() -> None:
    config = load_config(None, env={})
    assert config.nats.url == "" and config.embedded.data_dir == ".exbus/nats"


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ('[streams]\nreplicas = "three"\n', "$.streams.replicas"),
        ('[log]\nlevel = "loud"\n', "$.log.level"),
        ('[nats]\nurl_typo = "x"\n', "url_typo"),
        ("[nats\n", "exbus.toml"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, toml: str, named: str) -> None:
    cfg = tmp_path / "exbus.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_config(cfg, env={})
    assert named in str(err.value)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})


def test_the_nats_servers_own_password_variables_are_not_settings() -> None:
    """deploy/nats/exbus.conf reads EXBUS_NATS_<USER>_PASSWORD; a service started in the same
    environment (compose, a shell) must neither fail on them nor take them as its password."""
    env = {"EXBUS_NATS_VAULT_PASSWORD": "v", "EXBUS_NATS_ROUTE_PASSWORD": "r", "EXBUS_NATS_USER": "executor",
           "EXBUS_NATS_PASSWORD": "own"}
    config = load_config(None, env)
    assert (config.nats.user, config.nats.password) == ("executor", "own")
    with pytest.raises(ConfigError, match="nats"):
        load_config(None, {"EXBUS_NATS_BOGUS": "1"})  # other unknown keys still name themselves
