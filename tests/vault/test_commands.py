"""The vault's CLI against a real nats-server: init, keys add/list/revoke, service
register, rotate/retire, backup/restore (wrong key refused), dev bootstrap."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nats

from schemas import decode
from schemas.vault import AuditEvent
from services.bus.streams import VAULT_AUDIT

SECRET_JSON = {"api_key": "cli-test-key-77aa", "secret": "cli-test-secret-e5f0b2", "passphrase": None}


def _exbus(cmd: list[str], env: dict[str, str], cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([*cmd, *args], env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=60)


async def test_operator_workflow(nats_url: str, exbus_cmd: list[str], clean_env: dict[str, str], tmp_path: Path) -> None:
    env = {**clean_env, "NATS_URL": nats_url, "EXBUS_VAULT_MASTER_KEY_FILE": str(tmp_path / "master.key")}
    run = lambda *a, stdin="": _exbus(exbus_cmd, env, tmp_path, *a, stdin=stdin)  # noqa: E731
    outputs = []

    r = run("vault", "init")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
    assert run("vault", "init").returncode == 1  # never overwrites a master key

    r = run("keys", "add", "binance", "main", "--stdin", stdin=json.dumps(SECRET_JSON))
    assert r.returncode == 0, r.stderr
    outputs.append(r)
    r = run("service", "register", "executor")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / ".exbus/vault/executor.key").stat().st_mode & 0o777 == 0o600

    r = run("vault", "rotate")
    assert r.returncode == 0 and "version 2" in r.stdout, r.stderr
    r = run("vault", "retire")
    assert r.returncode == 0 and "[2]" in r.stdout, r.stderr

    r = run("vault", "backup", "backup.json")
    assert r.returncode == 0, r.stderr
    r = run("keys", "revoke", "binance", "main", "--reason", "test")
    assert r.returncode == 0, r.stderr
    r = run("keys", "list")
    listed = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(x["venue"], x["account"], x["state"]) for x in listed] == [("binance", "main", "revoked")]
    outputs.append(r)

    wrong = {**env, "EXBUS_VAULT_MASTER_KEY_FILE": str(tmp_path / "other.key")}
    assert _exbus(exbus_cmd, wrong, tmp_path, "vault", "init").returncode == 0
    r = _exbus(exbus_cmd, wrong, tmp_path, "vault", "restore", "backup.json")
    assert r.returncode == 1 and "wrong master key" in r.stderr
    r = run("vault", "restore", "backup.json")
    assert r.returncode == 0, r.stderr
    r = run("keys", "list")
    assert json.loads(r.stdout)["state"] == "active" and json.loads(r.stdout)["key_version"] == 2
    outputs.append(r)

    backup = (tmp_path / "backup.json").read_text()
    for o in outputs:
        for value in (SECRET_JSON["api_key"], SECRET_JSON["secret"]):
            assert value not in o.stdout + o.stderr and value not in backup

    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    info = await js.stream_info(VAULT_AUDIT)
    actions = [decode((await js.get_msg(VAULT_AUDIT, s)).data, AuditEvent)
               for s in range(info.state.first_seq, info.state.last_seq + 1)]
    await nc.close()
    assert [(a.action, a.outcome) for a in actions] == [
        ("add", "ok"), ("add", "ok"), ("rotate", "ok"), ("retire", "ok"), ("backup", "ok"), ("revoke", "ok"),
        ("restore", "denied"), ("restore", "ok"),
    ]


def test_keys_add_takes_no_secret_from_argv(exbus_cmd: list[str], clean_env: dict[str, str], tmp_path: Path) -> None:
    r = _exbus(exbus_cmd, clean_env, tmp_path, "keys", "add", "binance", "main", "--secret", "x")
    assert r.returncode == 2 and "unrecognized arguments" in r.stderr
