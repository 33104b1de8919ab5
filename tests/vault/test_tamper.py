"""A record tampered with in KV ``vault`` is refused explicitly (code ``internal``, a
``deny`` audit event), never answered with garbage: every field of the envelope is
authenticated (AES-GCM tags on the data key and the secret, venue/account as
associated data, a check value per master key version).

``vault`` is the fixture of tests/vault/conftest.py (a VaultUnderTest)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from services.vault import admin
from services.vault.client import VaultDenied
from services.vault.store import SecretRecord, secret_key


def _flip(data: bytes, at: int) -> bytes:
    """``data`` with one bit of byte ``at`` (counted from the end when negative) flipped."""
    b = bytearray(data)
    b[at] ^= 0x01
    return bytes(b)


def _tampered(record: SecretRecord, field: str) -> SecretRecord:
    assert record.secret is not None
    value = getattr(record.secret, field)
    changed = _flip(value, len(value) // 2) if isinstance(value, bytes) else value[:-1] + ("0" if value[-1] != "0" else "1")
    return msgspec.structs.replace(record, secret=msgspec.structs.replace(record.secret, **{field: changed}))


@pytest.mark.parametrize("field", ["ciphertext", "nonce", "wrapped_key", "wrap_nonce", "key_check"])
async def test_a_flipped_byte_in_the_stored_record_is_an_explicit_denial(vault: Any, field: str) -> None:
    await admin.add_credentials(vault.nc, vault.store, vault.ring, "binance", "main", vault.secret)
    record = await vault.store.get_secret("binance", "main")
    assert record is not None
    await vault.store.kv.put(secret_key("binance", "main"), msgspec.json.encode(_tampered(record, field)))

    client = vault.client()
    with pytest.raises(VaultDenied) as denied:
        await client.get("binance", "main")
    assert denied.value.code == "internal", field
    assert "cannot be decrypted" in denied.value.reason, field
    assert not client.holds("binance", "main")
    await client.close()

    denials = [e for e in await vault.audit_events() if e.action == "deny"]
    assert [(d.venue, d.account, d.outcome) for d in denials] == [("binance", "main", "denied")]
    assert vault.secret.secret.encode() not in vault.everything_seen()


async def test_a_record_moved_to_another_account_does_not_open(vault: Any) -> None:
    """Cut and paste: binance/main's (intact) record stored under binance/other is refused,
    because the account is associated data of both the data key and the secret."""
    await admin.add_credentials(vault.nc, vault.store, vault.ring, "binance", "main", vault.secret)
    await admin.add_credentials(vault.nc, vault.store, vault.ring, "binance", "other", vault.secret)
    main = await vault.store.get_secret("binance", "main")
    assert main is not None
    moved = msgspec.structs.replace(main, account="other")
    await vault.store.kv.put(secret_key("binance", "other"), msgspec.json.encode(moved))

    client = vault.client()
    with pytest.raises(VaultDenied) as denied:
        await client.get("binance", "other")
    assert denied.value.code == "internal"
    assert await client.get("binance", "main") == vault.secret  # the original still opens
    await client.close()
