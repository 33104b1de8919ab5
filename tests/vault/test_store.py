"""Vault records in KV on a real nats-server: add/list/revoke, rotation, backup/restore."""

from __future__ import annotations

import nats
import pytest

from schemas.vault import Credentials
from services.bus.streams import ensure_streams
from services.config import StreamSettings
from services.vault.crypto import MasterKeyError, MasterKeyRing, decrypt_secret, encrypt_secret
from services.vault.store import StoreError, VaultStore

CREDS = Credentials(api_key="store-test-key", secret="store-test-secret-xyz")


@pytest.fixture
async def store(nats_url: str):
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await ensure_streams(js, StreamSettings())
    yield await VaultStore.open(js)
    await nc.drain()


async def test_add_list_revoke(store: VaultStore) -> None:
    ring = MasterKeyRing.generate()
    await store.put_secret("binance", "main", encrypt_secret(ring, "binance", "main", CREDS))
    await store.put_secret("upbit", "main", encrypt_secret(ring, "upbit", "main", CREDS))
    listed = await store.list_secrets()
    assert [(r.venue, r.account, r.state) for r in listed] == [("binance", "main", "active"), ("upbit", "main", "active")]
    record = await store.get_secret("binance", "main")
    assert record is not None and record.secret is not None
    assert decrypt_secret(ring, "binance", "main", record.secret) == CREDS
    assert await store.revoke("binance", "main", "leaked")
    tomb = await store.get_secret("binance", "main")
    assert tomb is not None and tomb.state == "revoked" and tomb.secret is None
    assert not await store.revoke("okx", "main", "never added")
    assert await store.get_secret("okx", "main") is None


async def test_rotation_rewraps_every_record_and_history_keeps_old_ciphertext(store: VaultStore) -> None:
    ring = MasterKeyRing.generate()
    for account in ("a", "b", "c"):
        await store.put_secret("kraken", account, encrypt_secret(ring, "kraken", account, CREDS))
    ring2 = ring.with_new_version()
    changed = await store.rewrap_all(ring2)
    assert len(changed) == 3 and await store.versions_in_use() == {2}
    retired = ring2.without_versions_below(2)
    for record in await store.list_secrets():
        assert record.secret is not None and decrypt_secret(retired, "kraken", record.account, record.secret) == CREDS
    assert await store.rewrap_all(ring2) == []  # idempotent


async def test_backup_restore_round_trip_and_wrong_key_refused(store: VaultStore) -> None:
    ring = MasterKeyRing.generate()
    await store.put_secret("okx", "main", encrypt_secret(ring, "okx", "main", CREDS))
    await store.put_service_key("executor", "-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n")
    data = await store.backup(ring)
    assert CREDS.secret.encode() not in data and CREDS.api_key.encode() not in data
    await store.revoke("okx", "main", "before restore")
    with pytest.raises(MasterKeyError, match="wrong master key"):
        await store.restore(MasterKeyRing.generate(), data)
    still = await store.get_secret("okx", "main")
    assert still is not None and still.state == "revoked"  # nothing written on refusal
    restored = await store.restore(ring, data)
    assert len(restored.secrets) == 1
    record = await store.get_secret("okx", "main")
    assert record is not None and record.secret is not None
    assert decrypt_secret(ring, "okx", "main", record.secret) == CREDS
    assert (await store.get_service_key("executor")) is not None
    with pytest.raises(StoreError, match="not an exbus vault backup"):
        await store.restore(ring, b"{}")


async def test_jti_claimed_once(store: VaultStore) -> None:
    assert await store.claim_jti("abc")
    assert not await store.claim_jti("abc")


async def test_jti_memory_is_extended_to_the_longest_token(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await ensure_streams(js, StreamSettings())
    await VaultStore.open(js, jti_ttl_s=30)
    await VaultStore.open(js, jti_ttl_s=400)
    await VaultStore.open(js, jti_ttl_s=60)  # never shortened
    assert (await js.stream_info("KV_vault_jti")).config.max_age == 400
    await nc.drain()
