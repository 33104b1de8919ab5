"""Envelope encryption, master keys and sealed boxes (services.vault.crypto)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from schemas.vault import Credentials
from services.vault.crypto import (
    MasterKeyError, MasterKeyRing, SealError, VaultCryptoError, decrypt_secret, encrypt_secret,
    load_master_keys, raw_public, rewrap_secret, seal, unseal, write_master_keys,
)

CREDS = Credentials(api_key="AKIA-test-key", secret="s3cr3t-value-never-logged", passphrase="pp")


def test_round_trip_and_fresh_data_key_per_secret() -> None:
    ring = MasterKeyRing.generate()
    a = encrypt_secret(ring, "binance", "main", CREDS)
    b = encrypt_secret(ring, "binance", "main", CREDS)
    assert a.wrapped_key != b.wrapped_key and a.ciphertext != b.ciphertext
    assert CREDS.secret.encode() not in a.ciphertext
    assert decrypt_secret(ring, "binance", "main", a) == CREDS


def test_account_is_associated_data() -> None:
    ring = MasterKeyRing.generate()
    sealed = encrypt_secret(ring, "binance", "main", CREDS)
    with pytest.raises(VaultCryptoError, match="binance/other"):
        decrypt_secret(ring, "binance", "other", sealed)


def test_wrong_master_key_is_a_clear_error() -> None:
    sealed = encrypt_secret(MasterKeyRing.generate(), "okx", "main", CREDS)
    with pytest.raises(MasterKeyError, match="wrong master key for version 1"):
        decrypt_secret(MasterKeyRing.generate(), "okx", "main", sealed)


def test_rewrap_keeps_old_versions_readable_until_retired() -> None:
    ring1 = MasterKeyRing.generate()
    old = encrypt_secret(ring1, "kraken", "main", CREDS)
    ring2 = ring1.with_new_version()
    assert decrypt_secret(ring2, "kraken", "main", old) == CREDS  # old version still loaded
    new = rewrap_secret(ring2, "kraken", "main", old)
    assert new.key_version == 2 and new.ciphertext == old.ciphertext
    retired = ring2.without_versions_below(2)
    assert decrypt_secret(retired, "kraken", "main", new) == CREDS
    with pytest.raises(MasterKeyError, match="version 1 is not loaded"):
        decrypt_secret(retired, "kraken", "main", old)


def test_key_file_must_be_private(tmp_path: Path) -> None:
    ring = MasterKeyRing.generate()
    path = tmp_path / "master.key"
    write_master_keys(ring, path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_master_keys(path, "UNUSED").checks() == ring.checks()
    os.chmod(path, 0o644)
    with pytest.raises(MasterKeyError, match="readable by others"):
        load_master_keys(path, "UNUSED")
    with pytest.raises(MasterKeyError, match="already exists"):
        write_master_keys(ring, path)


def test_key_from_environment_and_repr_hides_it() -> None:
    ring = MasterKeyRing.generate().with_new_version()
    text = ring.dumps().strip().replace("\n", ",")
    loaded = load_master_keys(None, "EXBUS_TEST_MASTER_KEY", {"EXBUS_TEST_MASTER_KEY": text})
    assert loaded.checks() == ring.checks() and loaded.current_version == 2
    assert text.split(",")[0].split(":")[1] not in repr(loaded)
    with pytest.raises(MasterKeyError, match="EXBUS_TEST_MASTER_KEY"):
        load_master_keys(None, "EXBUS_TEST_MASTER_KEY", {})
    with pytest.raises(MasterKeyError, match="malformed"):
        MasterKeyRing.loads("1:not-base64!")


def test_seal_opens_only_with_the_recipient_key_and_context() -> None:
    recipient = X25519PrivateKey.generate()
    box = seal(b"payload", raw_public(recipient), b"ctx-1")
    assert unseal(box, recipient, b"ctx-1") == b"payload"
    with pytest.raises(SealError):
        unseal(box, recipient, b"ctx-2")
    with pytest.raises(SealError):
        unseal(box, X25519PrivateKey.generate(), b"ctx-1")
