"""Vault retention (issue 16 item 6) on a real nats-server: old key versions leave the
bucket's history by count and by age, the current ones stay and still decrypt; audit
entries older than the audit age limit go, newer ones stay; `exbus vault purge --dry-run`
lists without removing; a backup taken before a purge restores after it; the vault
service applies the retention on its own."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

from schemas.vault import Credentials
from services.vault import admin, audit
from services.vault.crypto import decrypt_secret, write_master_keys
from services.vault.service import apply_retention
from services.vault.settings import VaultSettings
from services.vault.store import Revision, expired_revisions
from tests.vault.conftest import VaultUnderTest


def creds(n: int) -> Credentials:
    return Credentials(api_key=f"retention-key-{n}", secret=f"retention-secret-{n}-9d1f")


async def _add_versions(vault: VaultUnderTest, venue: str, account: str, count: int) -> None:
    for n in range(count):
        await admin.add_credentials(vault.nc, vault.store, vault.ring, venue, account, creds(n))


def _per_key(history: dict[str, list[Revision]]) -> dict[str, int]:
    return {key: len(revs) for key, revs in history.items() if key.startswith("secret.")}


def test_expired_revisions_by_count_and_age() -> None:
    now = 1_000 * 10**9
    history = [Revision(key="k", revision=r, created_ns=now - (10 - r) * 60 * 10**9) for r in range(1, 11)]
    assert [r.revision for r in expired_revisions(history, keep=3, max_age_s=0, now_ns=now)] == list(range(1, 8))
    # by age: revisions older than 5 min go even though the count would keep them
    assert [r.revision for r in expired_revisions(history, keep=10, max_age_s=300, now_ns=now)] == [1, 2, 3, 4]
    # the current revision stays whatever its age
    assert [r.revision for r in expired_revisions(history, keep=1, max_age_s=1, now_ns=now * 2)] == list(range(1, 10))
    assert expired_revisions(history[:1], keep=1, max_age_s=1, now_ns=now * 2) == []


async def test_purge_keeps_the_newest_versions_and_the_current_ones_decrypt(vault: VaultUnderTest) -> None:
    await _add_versions(vault, "binance", "main", 5)
    await _add_versions(vault, "binance", "spare", 2)
    await vault.store.revoke("binance", "spare", "leaked")  # current = tombstone, older = the leaked key
    assert _per_key(await vault.store.revisions()) == {"secret.binance.main": 5, "secret.binance.spare": 3}

    settings = VaultSettings(retain_versions=2)
    dry = await admin.purge_vault(vault.nc, vault.store, settings, 3600.0, dry_run=True)
    assert [r.key for r in dry.revisions] == ["secret.binance.main"] * 3 + ["secret.binance.spare"]
    assert dry.audit_entries == 0
    assert _per_key(await vault.store.revisions()) == {"secret.binance.main": 5, "secret.binance.spare": 3}

    report = await admin.purge_vault(vault.nc, vault.store, settings, 3600.0)
    assert [(r.key, r.revision) for r in report.revisions] == [(r.key, r.revision) for r in dry.revisions]
    assert _per_key(await vault.store.revisions()) == {"secret.binance.main": 2, "secret.binance.spare": 2}
    assert await vault.client().get("binance", "main") == creds(4)
    tomb = await vault.store.get_secret("binance", "spare")
    assert tomb is not None and tomb.state == "revoked"
    purges = [(e.action, e.outcome, e.reason) for e in await vault.audit_events() if e.action == "purge"]
    assert purges == [("purge", "ok", "4 old key versions, 0 audit entries")]  # the dry run recorded nothing

    # by age (the clock comes in as an argument): everything but the current versions
    aged = await admin.purge_vault(vault.nc, vault.store, VaultSettings(retain_versions=10, retain_version_age_s=60),
                                   3600.0, now_ns=time.time_ns() + 120 * 10**9)
    assert len(aged.revisions) == 2
    assert _per_key(await vault.store.revisions()) == {"secret.binance.main": 1, "secret.binance.spare": 1}
    assert await vault.client().get("binance", "main") == creds(4)


async def test_audit_entries_older_than_the_age_limit_go_and_newer_ones_stay(vault: VaultUnderTest) -> None:
    js = vault.nc.jetstream()
    for n in range(3):
        await audit.record(js, audit.audit_event("backup", "old", "ok", reason=f"old {n}"))
    await asyncio.sleep(1.2)  # the entries above must be older than the 1 s limit below
    for n in range(2):
        await audit.record(js, audit.audit_event("backup", "new", "ok", reason=f"new {n}"))
    before = await vault.audit_events()
    old = [e for e in before if e.actor != "new"]

    dry = await admin.purge_vault(vault.nc, vault.store, VaultSettings(), 1.0, dry_run=True)
    assert dry.audit_entries == len(old) and len(await vault.audit_events()) == len(before)

    report = await admin.purge_vault(vault.nc, vault.store, VaultSettings(), 1.0)
    assert report.audit_entries == len(old)
    kept = await vault.audit_events()
    assert [e.actor for e in kept] == ["new", "new", "operator"]  # the purge itself is audited
    assert kept[-1].action == "purge" and kept[-1].reason == f"0 old key versions, {len(old)} audit entries"


async def test_backup_taken_before_a_purge_restores_after_it(vault: VaultUnderTest) -> None:
    await _add_versions(vault, "binance", "restored", 3)
    vault.ring = vault.ring.with_new_version()
    await admin.rotate_master_key(vault.nc, vault.store, vault.ring)  # one more version, re-wrapped
    backup = await admin.backup_vault(vault.nc, vault.store, vault.ring)

    await admin.purge_vault(vault.nc, vault.store, VaultSettings(retain_versions=1), 3600.0)
    assert _per_key(await vault.store.revisions()) == {"secret.binance.restored": 1}
    await vault.store.revoke("binance", "restored", "lost")  # the live record is gone; only the backup has the key

    restored = await admin.restore_vault(vault.nc, vault.store, vault.ring, backup)
    assert [(r.venue, r.account) for r in restored.secrets] == [("binance", "restored")]
    record = await vault.store.get_secret("binance", "restored")
    assert record is not None and record.secret is not None and record.secret.key_version == 2
    assert decrypt_secret(vault.ring, "binance", "restored", record.secret) == creds(2)
    assert await vault.client().get("binance", "restored") == creds(2)


async def test_the_vault_service_applies_the_retention_periodically(vault: VaultUnderTest) -> None:
    await _add_versions(vault, "binance", "periodic", 4)
    stop = asyncio.Event()
    task = asyncio.create_task(apply_retention(vault.nc, vault.store, VaultSettings(retain_versions=1, purge_interval_s=0.1),
                                               3600.0, stop))
    try:
        deadline = time.monotonic() + 10
        while _per_key(await vault.store.revisions()) != {"secret.binance.periodic": 1}:
            assert time.monotonic() < deadline, "retention not applied within 10 s"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert (await vault.audit_events())[-1].actor == "vault"
    assert await vault.client().get("binance", "periodic") == creds(3)


async def test_vault_purge_command(vault: VaultUnderTest, exbus_cmd: list[str], clean_env: dict[str, str],
                                   tmp_path: Path) -> None:
    await _add_versions(vault, "binance", "main", 4)
    write_master_keys(vault.ring, tmp_path / "master.key")
    env = {**clean_env, "NATS_URL": vault.url, "EXBUS_VAULT_MASTER_KEY_FILE": str(tmp_path / "master.key"),
           "EXBUS_VAULT_RETAIN_VERSIONS": "2"}
    run = lambda *a: subprocess.run([*exbus_cmd, *a], env=env, cwd=tmp_path, capture_output=True, text=True,  # noqa: E731
                                    timeout=60)
    r = run("vault", "purge", "--dry-run")
    assert r.returncode == 0, r.stderr
    listed = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert [x["key"] for x in listed] == ["secret.binance.main"] * 2
    assert "would purge 2 old key versions (keeping 2 per key)" in r.stdout
    assert _per_key(await vault.store.revisions()) == {"secret.binance.main": 4}

    r = run("vault", "purge")
    assert r.returncode == 0 and "purged 2 old key versions" in r.stdout, r.stderr
    assert _per_key(await vault.store.revisions()) == {"secret.binance.main": 2}
    r = run("vault", "purge")
    assert "purged 0 old key versions" in r.stdout
    for value in (creds(3).secret, creds(0).secret):
        assert value not in r.stdout + r.stderr
