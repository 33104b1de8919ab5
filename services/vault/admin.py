"""Operator actions on the vault, each audited on VAULT_AUDIT and, when holders must
drop credentials, announced on ``vault.revoked.<venue>.<account>``.

Audit comes first for changes that widen access (add, restore, register): if the
audit trail is down, nothing changes. Revocation and rotation take effect first and
are audited after, so an audit outage never keeps a leaked key alive.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from schemas import encode
from schemas.subjects import vault_revoked
from schemas.vault import Credentials, Revocation
from services.vault import audit
from services.vault.crypto import MasterKeyError, MasterKeyRing, encrypt_secret
from services.vault.settings import VaultSettings
from services.vault.store import Backup, Revision, SecretRecord, VaultStore


async def announce_revocation(nc: Any, venue: str, account: str, reason: str) -> None:
    """Tell every holder of venue/account credentials to drop them."""
    revocation = Revocation(venue=venue, account=account, reason=reason, ts=time.time_ns())  # type: ignore[arg-type]
    await nc.publish(vault_revoked(venue, account), encode(revocation))
    await nc.flush()


async def add_credentials(nc: Any, store: VaultStore, ring: MasterKeyRing, venue: str, account: str,
                          credentials: Credentials, *, actor: str = "operator") -> SecretRecord:
    """Encrypt and store credentials; replacing existing ones revokes the old leases."""
    existed = await store.get_secret(venue, account) is not None
    await audit.record(nc.jetstream(), audit.audit_event("add", actor, "ok", venue=venue, account=account,
                                             key_version=ring.current_version,
                                             reason="replaced" if existed else None))
    record = await store.put_secret(venue, account, encrypt_secret(ring, venue, account, credentials),
                                    environment=credentials.environment, allowed_ips=credentials.allowed_ips)
    if existed:
        await announce_revocation(nc, venue, account, "credentials replaced")
    return record


async def revoke_credentials(nc: Any, store: VaultStore, venue: str, account: str, reason: str,
                             *, actor: str = "operator") -> bool:
    """Revoke venue/account (tombstone + announcement + audit); False if it was unknown."""
    found = await store.revoke(venue, account, reason)
    if found:
        await announce_revocation(nc, venue, account, reason)
    await audit.record(nc.jetstream(), audit.audit_event("revoke", actor, "ok" if found else "error",
                                             venue=venue, account=account, reason=reason))
    return found


async def rotate_master_key(nc: Any, store: VaultStore, ring: MasterKeyRing,
                            *, actor: str = "operator") -> list[SecretRecord]:
    """Re-wrap every record under ``ring``'s current version (already written to the key
    file/env by the caller, so vault replicas can load it), then announce each account
    so holders take a lease under the new version."""
    changed = await store.rewrap_all(ring)
    for record in changed:
        await announce_revocation(nc, record.venue, record.account, "master key rotated")
    await audit.record(nc.jetstream(), audit.audit_event("rotate", actor, "ok", key_version=ring.current_version,
                                             reason=f"re-wrapped {len(changed)} records"))
    return changed


async def retire_old_versions(nc: Any, store: VaultStore, ring: MasterKeyRing,
                              *, actor: str = "operator") -> MasterKeyRing:
    """The ring without versions older than the current one; MasterKeyError if a record
    still needs one (rotate first)."""
    in_use = await store.versions_in_use()
    old = sorted(v for v in in_use if v < ring.current_version)
    if old:
        raise MasterKeyError(f"records still use master key versions {old}; run `exbus vault rotate` first")
    await audit.record(nc.jetstream(), audit.audit_event("retire", actor, "ok", key_version=ring.current_version,
                                             reason=f"retired versions below {ring.current_version}"))
    return ring.without_versions_below(ring.current_version)


async def backup_vault(nc: Any, store: VaultStore, ring: MasterKeyRing, *, actor: str = "operator") -> bytes:
    """Ciphertext backup of every record (audited)."""
    data = await store.backup(ring)
    await audit.record(nc.jetstream(), audit.audit_event("backup", actor, "ok", key_version=ring.current_version))
    return data


async def restore_vault(nc: Any, store: VaultStore, ring: MasterKeyRing, data: bytes,
                        *, actor: str = "operator") -> Backup:
    """Restore a backup (refused unless every record decrypts under ``ring``); the
    refusal is audited too."""
    try:
        backup = await store.restore(ring, data)
    except MasterKeyError as e:
        await audit.record(nc.jetstream(), audit.audit_event("restore", actor, "denied", reason=str(e)))
        raise
    await audit.record(nc.jetstream(), audit.audit_event("restore", actor, "ok",
                                             reason=f"{len(backup.secrets)} secrets, {len(backup.services)} services"))
    for record in backup.secrets:
        await announce_revocation(nc, record.venue, record.account, "restored from backup")
    return backup


async def register_service(nc: Any, store: VaultStore, service_id: str, public_key_pem: str,
                           *, actor: str = "operator") -> None:
    """Register a service's Ed25519 public key (audited first)."""
    await audit.record(nc.jetstream(), audit.audit_event("add", actor, "ok", reason=f"service {service_id} registered"))
    await store.put_service_key(service_id, public_key_pem)


@dataclass
class PurgeReport:
    """What a retention run removed (or, dry, would remove)."""

    revisions: list[Revision]
    """Old versions of vault keys."""
    audit_entries: int
    """Audit entries older than the audit trail's age limit."""
    audit_max_age_s: float


async def purge_vault(nc: Any, store: VaultStore, settings: VaultSettings, audit_max_age_s: float, *,
                      dry_run: bool = False, now_ns: int | None = None, actor: str = "operator") -> PurgeReport:
    """Apply the retention: old key versions go (``retain_versions``,
    ``retain_version_age_s``) and the audit stream gets the age limit ``audit_max_age_s``,
    which drops older entries. Narrowing, so it takes effect first and is audited after;
    ``dry_run`` changes nothing and records nothing; ``now_ns`` is the clock key versions
    are aged by. Backups hold current records only and stay restorable."""
    gone = await store.purge_revisions(keep=settings.retain_versions, max_age_s=settings.retain_version_age_s,
                                       now_ns=now_ns, dry_run=dry_run)
    old_audit = await audit.entries_older_than(nc, audit_max_age_s)  # the server's clock decides these
    report = PurgeReport(revisions=gone, audit_entries=old_audit, audit_max_age_s=audit_max_age_s)
    if dry_run:
        return report
    await audit.apply_age_limit(nc.jetstream(), audit_max_age_s)
    if gone or old_audit:
        await audit.record(nc.jetstream(), audit.audit_event(
            "purge", actor, "ok", reason=f"{len(gone)} old key versions, {old_audit} audit entries"))
    return report
