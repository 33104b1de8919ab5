"""Keys carry their environment and IP allow-list (issue 16 items 1 and 2, vault side):
`exbus keys add --environment --allowed-ip` round-trips into the Credentials an executor
is granted; records stored before these fields existed read as live with no list; bad
allow-list input is one stderr line and exit 2; a record whose clear-text copy was
altered is refused."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import msgspec
import pytest

from schemas.vault import Credentials
from services.vault.allowlist import AllowListError, is_allowed, parse_allowed_ips
from services.vault.crypto import encrypt_secret, write_master_keys
from services.vault.client import VaultDenied
from services.vault.store import secret_key
from tests.vault.conftest import VaultUnderTest

SECRET_JSON = {"api_key": "meta-test-key-31aa", "secret": "meta-test-secret-8e77c1"}


def _exbus(cmd: list[str], env: dict[str, str], cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([*cmd, *args], env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=60)


@pytest.fixture
def cli_env(vault: VaultUnderTest, clean_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The CLI on the vault under test's server, with its master key in a 0600 file."""
    write_master_keys(vault.ring, tmp_path / "master.key")
    return {**clean_env, "NATS_URL": vault.url, "EXBUS_VAULT_MASTER_KEY_FILE": str(tmp_path / "master.key")}


async def test_keys_add_environment_and_ips_reach_the_granted_credentials(
        vault: VaultUnderTest, cli_env: dict[str, str], exbus_cmd: list[str], tmp_path: Path) -> None:
    r = _exbus(exbus_cmd, cli_env, tmp_path, "keys", "add", "binance", "main", "--stdin", "--environment", "testnet",
               "--allowed-ip", "203.0.113.7", "--allowed-ip", "198.51.100.0/24, 2001:db8::/32,203.0.113.7",
               stdin=json.dumps(SECRET_JSON))
    assert r.returncode == 0, r.stderr
    assert "(testnet)" in r.stdout and "198.51.100.0/24" in r.stdout
    creds = await vault.client().get("binance", "main")
    assert (creds.api_key, creds.secret) == (SECRET_JSON["api_key"], SECRET_JSON["secret"])
    assert creds.environment == "testnet"
    assert creds.allowed_ips == ("203.0.113.7", "198.51.100.0/24", "2001:db8::/32")  # normalized, once each
    assert "testnet" in repr(creds) and "203.0.113.7" in repr(creds) and SECRET_JSON["secret"] not in repr(creds)

    r = _exbus(exbus_cmd, cli_env, tmp_path, "keys", "list")
    listed = json.loads(r.stdout)
    assert listed["environment"] == "testnet" and listed["allowed_ips"] == list(creds.allowed_ips)
    assert SECRET_JSON["secret"] not in r.stdout + r.stderr


async def test_keys_add_defaults_to_live_and_takes_the_list_from_stdin(
        vault: VaultUnderTest, cli_env: dict[str, str], exbus_cmd: list[str], tmp_path: Path) -> None:
    stdin = json.dumps({**SECRET_JSON, "allowed_ips": ["192.0.2.10"]})
    r = _exbus(exbus_cmd, cli_env, tmp_path, "keys", "add", "upbit", "demo", "--stdin", stdin=stdin)
    assert r.returncode == 0, r.stderr
    creds = await vault.client().get("upbit", "demo")
    assert creds.environment == "live" and creds.allowed_ips == ("192.0.2.10",)


async def test_records_stored_before_the_fields_read_as_live_without_a_list(vault: VaultUnderTest) -> None:
    class LegacyCredentials(msgspec.Struct, kw_only=True):  # the plaintext layout before issue 16
        api_key: str
        secret: str
        passphrase: str | None = None

    legacy = LegacyCredentials(api_key="legacy-key-5a", secret="legacy-secret-0f9e")
    secret = encrypt_secret(vault.ring, "binance", "old", legacy)  # type: ignore[arg-type]
    record = {"venue": "binance", "account": "old", "state": "active", "updated_ns": 1, "secret": secret}
    await vault.store.kv.put(secret_key("binance", "old"), msgspec.json.encode(record))
    stored = await vault.store.get_secret("binance", "old")
    assert stored is not None and (stored.environment, stored.allowed_ips) == ("live", ())
    creds = await vault.client().get("binance", "old")
    assert creds == Credentials(api_key="legacy-key-5a", secret="legacy-secret-0f9e")
    assert (creds.environment, creds.allowed_ips) == ("live", ())


async def test_a_record_whose_clear_copy_was_altered_is_refused(vault: VaultUnderTest) -> None:
    from services.vault import admin

    creds = Credentials(api_key="k-alt", secret="s-alt-77", environment="testnet", allowed_ips=("203.0.113.9",))
    await admin.add_credentials(vault.nc, vault.store, vault.ring, "binance", "alt", creds)
    record = await vault.store.get_secret("binance", "alt")
    assert record is not None
    moved = msgspec.structs.replace(record, environment="live")  # testnet key passed off as live
    await vault.store.kv.put(secret_key("binance", "alt"), msgspec.json.encode(moved))
    with pytest.raises(VaultDenied) as denied:
        await vault.client().get("binance", "alt")
    assert denied.value.code == "internal"


@pytest.mark.parametrize("args, stdin, fragment", [
    (["binance", "main", "--allowed-ip", "999.1.1.1"], "", "'999.1.1.1' is not an IP address or CIDR network"),
    (["binance", "main", "--allowed-ip", "10.0.0.5/24"], "", "has host bits set"),
    (["binance", "main", "--allowed-ip", "203.0.113.7,example.com"], "", "'example.com' is not an IP"),
    (["binance", "main", "--allowed-ip", "203.0.113.7", "--no-allowed-ip"], "", "contradict"),
    (["upbit", "main"], "", "Upbit requires allowed IPs"),
    (["korbit", "main", "--stdin"], json.dumps(SECRET_JSON), "Korbit requires allowed IPs"),
    (["binance", "main", "--stdin"], json.dumps({**SECRET_JSON, "allowed_ips": ["300.0.0.1"]}), "'300.0.0.1'"),
    (["binance", "main", "--stdin"], json.dumps({**SECRET_JSON, "environment": "paper"}), "$.environment"),
])
def test_bad_key_metadata_is_one_line_and_exit_2(args: list[str], stdin: str, fragment: str, exbus_cmd: list[str],
                                                 clean_env: dict[str, str], tmp_path: Path) -> None:
    # refused before any connection: no server is needed (NATS_URL points nowhere)
    env = {**clean_env, "NATS_URL": "nats://127.0.0.1:9", "EXBUS_VAULT_MASTER_KEY_FILE": str(tmp_path / "none.key")}
    r = _exbus(exbus_cmd, env, tmp_path, "keys", "add", *args, stdin=stdin)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert len(r.stderr.splitlines()) == 1 and fragment in r.stderr and "Traceback" not in r.stderr, r.stderr


async def test_upbit_key_without_list_is_accepted_when_the_operator_says_it_has_none(
        vault: VaultUnderTest, cli_env: dict[str, str], exbus_cmd: list[str], tmp_path: Path) -> None:
    r = _exbus(exbus_cmd, cli_env, tmp_path, "keys", "add", "upbit", "legacy", "--stdin", "--no-allowed-ip",
               stdin=json.dumps(SECRET_JSON))
    assert r.returncode == 0, r.stderr
    assert "allowed IPs: none recorded" in r.stdout


def test_allow_list_parsing_and_membership() -> None:
    assert parse_allowed_ips(["203.0.113.7, 2001:DB8::1", "198.51.100.0/24"]) == (
        "203.0.113.7", "2001:db8::1", "198.51.100.0/24")
    with pytest.raises(AllowListError):
        parse_allowed_ips(["203.0.113.0/33"])
    allowed = ("203.0.113.7", "198.51.100.0/24", "2001:db8::/32")
    assert is_allowed("203.0.113.7", allowed) and is_allowed("198.51.100.200", allowed)
    assert is_allowed("2001:db8:1::5", allowed) and is_allowed("::ffff:198.51.100.1", allowed)
    assert not is_allowed("203.0.113.8", allowed) and not is_allowed("2001:db9::1", allowed)
