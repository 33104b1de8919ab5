"""The vault's records in JetStream KV bucket ``vault``: ciphertext only.

Keys:
- ``secret.<venue>.<account>``: a SecretRecord (envelope-encrypted credentials, or a
  revoked tombstone, so a revoked account is told apart from an unknown one);
- ``service.<service_id>``: a ServiceKey (Ed25519 public key of a registered service).
Request token ids (``jti``) are claimed create-only in bucket ``vault_jti``, whose age
limit outlives every acceptable token, so a replay is refused by any vault replica.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

import msgspec
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

from schemas.vault import KeyEnvironment
from services.bus.streams import KV_VAULT
from services.vault.crypto import EncryptedSecret, MasterKeyError, MasterKeyRing, decrypt_secret, rewrap_secret

KV_VAULT_JTI = "vault_jti"
BACKUP_FORMAT = "exbus-vault-backup/1"


class SecretRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Credentials of one venue account at rest."""

    venue: str
    account: str
    state: Literal["active", "revoked"]
    updated_ns: int
    secret: EncryptedSecret | None = None
    reason: str | None = None
    environment: KeyEnvironment = "live"
    """Copy of what the ciphertext holds, for listing (the grant uses the ciphertext's);
    records stored before it existed read as ``live``."""
    allowed_ips: tuple[str, ...] = ()
    """Copy of the key's IP allow-list at the venue, as in the ciphertext."""


class ServiceKey(msgspec.Struct, frozen=True, kw_only=True):
    """A registered service identity: its Ed25519 public key (PEM)."""

    service_id: str
    public_key_pem: str
    registered_ns: int


class Backup(msgspec.Struct, kw_only=True):
    """A vault backup: ciphertext records and the check values of the keys they need."""

    format: str
    created_ns: int
    key_checks: dict[int, str]
    secrets: list[SecretRecord]
    services: list[ServiceKey]


class Revision(msgspec.Struct, frozen=True, kw_only=True):
    """One stored version of a vault key (KV history): metadata only."""

    key: str
    revision: int
    created_ns: int


def expired_revisions(history: list[Revision], *, keep: int, max_age_s: float, now_ns: int) -> list[Revision]:
    """The revisions of one key that retention removes, oldest first: every one beyond
    the newest ``keep``, and every one older than ``max_age_s`` (0: no age limit). The
    newest revision (the key's current value) always stays."""
    ordered = sorted(history, key=lambda r: r.revision)
    max_age_ns = int(max_age_s * 1e9)
    gone = []
    for i, rev in enumerate(ordered[:-1]):
        beyond_count = len(ordered) - i > max(keep, 1)
        too_old = max_age_ns > 0 and now_ns - rev.created_ns > max_age_ns
        if beyond_count or too_old:
            gone.append(rev)
    return gone


class StoreError(Exception):
    """A vault store operation cannot be done (the message says why)."""


def _ns(created: Any) -> int:
    """Nanoseconds since the epoch of a KV entry's timestamp (a datetime in nats-py)."""
    return int(created.timestamp() * 1e9) if created is not None else 0


def secret_key(venue: str, account: str) -> str:
    return f"secret.{venue}.{account}"


def service_key(service_id: str) -> str:
    return f"service.{service_id}"


_enc = msgspec.json.Encoder()
_dec_secret = msgspec.json.Decoder(SecretRecord)
_dec_service = msgspec.json.Decoder(ServiceKey)


class VaultStore:
    """Add, read, list, revoke, re-wrap, back up and restore vault records."""

    def __init__(self, kv: KeyValue, jti_kv: KeyValue, js: JetStreamContext) -> None:
        self.kv = kv
        self.jti_kv = jti_kv
        self.js = js

    @classmethod
    async def open(cls, js: JetStreamContext, *, jti_ttl_s: float = 120.0) -> "VaultStore":
        """Bind to bucket ``vault`` (created by ensure_streams) and ``vault_jti`` (created here)."""
        kv = await js.key_value(KV_VAULT)
        try:
            jti_kv = await js.key_value(KV_VAULT_JTI)
            info = await js.stream_info(f"KV_{KV_VAULT_JTI}")
            if (info.config.max_age or 0) < jti_ttl_s:  # token ids must outlive every acceptable token
                info.config.max_age = jti_ttl_s
                await js.update_stream(info.config)
        except BucketNotFoundError:
            jti_kv = await js.create_key_value(KeyValueConfig(
                bucket=KV_VAULT_JTI, history=1, ttl=jti_ttl_s, storage=StorageType.FILE,
                description="vault request token ids seen (replay protection)"))
        return cls(kv, jti_kv, js)

    async def _keys(self, prefix: str) -> list[str]:
        try:
            keys = await self.kv.keys()
        except NoKeysError:
            return []
        return sorted(k for k in keys if k.startswith(prefix + "."))

    async def put_secret(self, venue: str, account: str, secret: EncryptedSecret, *,
                         environment: KeyEnvironment = "live", allowed_ips: tuple[str, ...] = ()) -> SecretRecord:
        """Store (or replace) the active credentials of venue/account; ``environment`` and
        ``allowed_ips`` repeat, in the clear, what the ciphertext holds."""
        record = SecretRecord(venue=venue, account=account, state="active", updated_ns=time.time_ns(), secret=secret,
                              environment=environment, allowed_ips=allowed_ips)
        await self.kv.put(secret_key(venue, account), _enc.encode(record))
        return record

    async def get_secret(self, venue: str, account: str) -> SecretRecord | None:
        """The record of venue/account, or None when there is none."""
        try:
            entry = await self.kv.get(secret_key(venue, account))
        except (KeyNotFoundError, KeyDeletedError):
            return None
        return _dec_secret.decode(entry.value) if entry.value else None

    async def list_secrets(self) -> list[SecretRecord]:
        """Every record (ciphertext and state; nothing is decrypted)."""
        records = []
        for key in await self._keys("secret"):
            try:
                entry = await self.kv.get(key)
            except (KeyNotFoundError, KeyDeletedError):
                continue
            if entry.value:
                records.append(_dec_secret.decode(entry.value))
        return records

    async def revoke(self, venue: str, account: str, reason: str) -> bool:
        """Replace the credentials of venue/account by a tombstone; False if it had none."""
        if await self.get_secret(venue, account) is None:
            return False
        tomb = SecretRecord(venue=venue, account=account, state="revoked", updated_ns=time.time_ns(), reason=reason)
        await self.kv.put(secret_key(venue, account), _enc.encode(tomb))
        return True

    async def rewrap_all(self, ring: MasterKeyRing) -> list[SecretRecord]:
        """Re-wrap every active record's data key under ``ring``'s current version,
        compare-and-swap on each record's revision (a concurrent change is re-read)."""
        changed = []
        for key in await self._keys("secret"):
            while True:
                try:
                    entry = await self.kv.get(key)
                except (KeyNotFoundError, KeyDeletedError):
                    break
                if not entry.value:
                    break
                record = _dec_secret.decode(entry.value)
                if record.secret is None or record.secret.key_version == ring.current_version:
                    break
                new = msgspec.structs.replace(
                    record, secret=rewrap_secret(ring, record.venue, record.account, record.secret),
                    updated_ns=time.time_ns())
                try:
                    await self.kv.update(key, _enc.encode(new), last=entry.revision)
                except KeyWrongLastSequenceError:
                    continue
                changed.append(new)
                break
        return changed

    async def versions_in_use(self) -> set[int]:
        """Master key versions some active record still needs."""
        return {r.secret.key_version for r in await self.list_secrets() if r.secret is not None}

    async def put_service_key(self, service_id: str, public_key_pem: str) -> ServiceKey:
        """Register (or replace) a service's Ed25519 public key."""
        record = ServiceKey(service_id=service_id, public_key_pem=public_key_pem, registered_ns=time.time_ns())
        await self.kv.put(service_key(service_id), _enc.encode(record))
        return record

    async def get_service_key(self, service_id: str) -> ServiceKey | None:
        try:
            entry = await self.kv.get(service_key(service_id))
        except (KeyNotFoundError, KeyDeletedError):
            return None
        return _dec_service.decode(entry.value) if entry.value else None

    async def list_service_keys(self) -> list[ServiceKey]:
        keys = []
        for key in await self._keys("service"):
            record = await self.get_service_key(key.split(".", 1)[1])
            if record is not None:
                keys.append(record)
        return keys

    async def claim_jti(self, jti: str) -> bool:
        """Record a token id; False if any replica has seen it before (a replay)."""
        try:
            await self.jti_kv.create(f"jti.{jti}", b"1")
        except KeyWrongLastSequenceError:
            return False
        return True

    async def revisions(self) -> dict[str, list[Revision]]:
        """Every stored revision of every key, oldest first; headers only, so no ciphertext
        is read."""
        watcher = await self.kv.watch(">", include_history=True, meta_only=True)
        history: dict[str, list[Revision]] = {}
        try:
            async for entry in watcher:
                if entry is None:  # end of what is stored
                    break
                history.setdefault(entry.key, []).append(Revision(
                    key=entry.key, revision=entry.revision or 0, created_ns=_ns(entry.created)))
        finally:
            await watcher.stop()
        return history

    async def purge_revisions(self, *, keep: int, max_age_s: float, now_ns: int | None = None,
                              dry_run: bool = False) -> list[Revision]:
        """Remove old versions of every key under the retention (see expired_revisions);
        returns what went (or, with ``dry_run``, what would go). A version written meanwhile
        is never touched: each key's purge stops below its oldest kept revision."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        gone: list[Revision] = []
        for key, history in sorted((await self.revisions()).items()):
            expired = expired_revisions(history, keep=keep, max_age_s=max_age_s, now_ns=now_ns)
            if expired and not dry_run:
                await self.js.purge_stream(f"KV_{KV_VAULT}", subject=f"$KV.{KV_VAULT}.{key}",
                                           seq=expired[-1].revision + 1)
            gone.extend(expired)
        return gone

    async def backup(self, ring: MasterKeyRing) -> bytes:
        """Every record as ciphertext, with the check values of the master keys they need."""
        secrets = await self.list_secrets()
        needed = {r.secret.key_version for r in secrets if r.secret is not None}
        checks = {v: c for v, c in ring.checks().items() if v in needed}
        backup = Backup(format=BACKUP_FORMAT, created_ns=time.time_ns(), key_checks=checks,
                        secrets=secrets, services=await self.list_service_keys())
        return msgspec.json.format(_enc.encode(backup), indent=2)

    async def restore(self, ring: MasterKeyRing, data: bytes) -> Backup:
        """Write a backup's records back; refuses (MasterKeyError, nothing written) unless
        every active record decrypts under ``ring``."""
        try:
            backup = msgspec.json.decode(data, type=Backup)
        except msgspec.DecodeError as e:
            raise StoreError(f"not an exbus vault backup: {e}") from None
        if backup.format != BACKUP_FORMAT:
            raise StoreError(f"unsupported backup format {backup.format!r}")
        for record in backup.secrets:
            if record.secret is not None:
                decrypt_secret(ring, record.venue, record.account, record.secret)  # proves the key
        for record in backup.secrets:
            await self.kv.put(secret_key(record.venue, record.account), _enc.encode(record))
        for service in backup.services:
            await self.kv.put(service_key(service.service_id), _enc.encode(service))
        return backup


class ServiceKeyCache:
    """Registered service keys kept current by a watch on ``service.*``, so authenticating
    a request reads no KV. A key the watch has not delivered yet (one registered a moment
    ago) is read directly; unknown services are never cached."""

    def __init__(self, store: VaultStore) -> None:
        self.store = store
        self._keys: dict[str, ServiceKey] = {}
        self._watcher: KeyValue.KeyWatcher | None = None
        self._follower: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Load every registered key and follow changes."""
        self._watcher = await self.store.kv.watch("service.*")
        self._follower = asyncio.create_task(self._follow(self._watcher), name="vault-service-keys")

    async def stop(self) -> None:
        if self._watcher is not None:
            await self._watcher.stop()
        if self._follower is not None:
            await self._follower

    async def _follow(self, watcher: KeyValue.KeyWatcher) -> None:
        async for entry in watcher:
            if entry is None:  # end of the initial values
                continue
            service_id = entry.key.split(".", 1)[1]
            try:
                self._keys[service_id] = _dec_service.decode(entry.value) if entry.operation is None else None
            except (msgspec.DecodeError, msgspec.ValidationError):
                self._keys[service_id] = None
            if self._keys[service_id] is None:  # deleted, purged or unreadable: ask KV when needed
                del self._keys[service_id]

    async def get(self, service_id: str) -> ServiceKey | None:
        """The service's registered key, or None when it is not registered."""
        cached = self._keys.get(service_id)
        return cached if cached is not None else await self.store.get_service_key(service_id)


__all__ = ["Backup", "MasterKeyError", "Revision", "SecretRecord", "ServiceKey", "ServiceKeyCache", "StoreError", "VaultStore", "KV_VAULT_JTI"]
