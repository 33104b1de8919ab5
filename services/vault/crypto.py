"""Vault cryptography: envelope encryption under a versioned master key, and sealing
to a requester's ephemeral X25519 key.

Envelope: each secret gets a fresh 256-bit data key; the secret is AES-256-GCM
encrypted under it with ``venue/account`` as associated data, and the data key is
AES-256-GCM wrapped by the current master key version (associated data binds it to
the same ``venue/account`` and version). Rotation re-wraps data keys only.

Master keys: a key ring of ``version -> 32 bytes``; the highest version is current.
Text form, one per line (file) or comma-separated (environment variable):
``<version>:<base64 key>``. A key file must not be readable by group or others.

Sealed boxes: X25519(sender ephemeral, recipient ephemeral) -> HKDF-SHA256 ->
ChaCha20-Poly1305; the associated data names the request and the account.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
from pathlib import Path
from typing import Mapping

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from schemas.vault import Credentials, SealedBox

KEY_BYTES = 32
NONCE_BYTES = 12
_CHECK_LABEL = b"exbus-vault master key check v1"
_SEAL_INFO = b"exbus-vault seal v1"


class VaultCryptoError(Exception):
    """A vault cryptographic operation failed; the message never contains key material."""


class MasterKeyError(VaultCryptoError):
    """The master key is missing, malformed, too widely readable, or not the one the data
    was encrypted under."""


class SealError(VaultCryptoError):
    """A sealed box does not open with this key and context."""


class EncryptedSecret(msgspec.Struct, frozen=True, kw_only=True):
    """One secret at rest: ciphertext plus its data key wrapped by master key ``key_version``."""

    key_version: int
    key_check: str
    """Check value of the master key version that wrapped the data key (tells a wrong
    master key apart from corrupt data)."""
    wrap_nonce: bytes
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes


def key_check(key: bytes) -> str:
    """A short public fingerprint of a master key (HMAC of a fixed label), to detect a wrong key."""
    return hmac.new(key, _CHECK_LABEL, hashlib.sha256).hexdigest()[:16]


class MasterKeyRing:
    """Master key versions; the highest is the one new secrets are wrapped under."""

    def __init__(self, keys: Mapping[int, bytes]) -> None:
        if not keys:
            raise MasterKeyError("master key ring is empty")
        for version, key in keys.items():
            if version < 1 or len(key) != KEY_BYTES:
                raise MasterKeyError(f"master key version {version} is malformed (need {KEY_BYTES} bytes, version >= 1)")
        self._keys = dict(sorted(keys.items()))

    @property
    def current_version(self) -> int:
        return max(self._keys)

    @property
    def versions(self) -> list[int]:
        return list(self._keys)

    def checks(self) -> dict[int, str]:
        """Check value per version (safe to store and print)."""
        return {v: key_check(k) for v, k in self._keys.items()}

    def key(self, version: int, expected_check: str | None = None) -> bytes:
        """The key of ``version``; MasterKeyError if absent or not matching ``expected_check``."""
        try:
            key = self._keys[version]
        except KeyError:
            raise MasterKeyError(
                f"master key version {version} is not loaded (loaded: {self.versions}); "
                "was it retired, or is this the wrong master key?") from None
        if expected_check is not None and not hmac.compare_digest(key_check(key), expected_check):
            raise MasterKeyError(f"wrong master key for version {version}: its check value does not match")
        return key

    def with_new_version(self) -> "MasterKeyRing":
        """A ring with one more, freshly generated, version (for rotation)."""
        keys = dict(self._keys)
        keys[self.current_version + 1] = AESGCM.generate_key(bit_length=256)
        return MasterKeyRing(keys)

    def without_versions_below(self, version: int) -> "MasterKeyRing":
        """A ring keeping only versions >= ``version`` (retiring the older ones)."""
        return MasterKeyRing({v: k for v, k in self._keys.items() if v >= version})

    def dumps(self) -> str:
        """Text form, one ``version:base64`` per line."""
        return "".join(f"{v}:{base64.b64encode(k).decode()}\n" for v, k in self._keys.items())

    @classmethod
    def loads(cls, text: str) -> "MasterKeyRing":
        """Parse the text form (lines or comma-separated entries)."""
        keys: dict[int, bytes] = {}
        for item in text.replace(",", "\n").splitlines():
            item = item.strip()
            if not item or item.startswith("#"):
                continue
            version, sep, b64 = item.partition(":")
            try:
                if not sep:
                    raise ValueError
                keys[int(version)] = base64.b64decode(b64, validate=True)
            except ValueError:
                raise MasterKeyError("master key entry is malformed (expected <version>:<base64>)") from None
        return cls(keys)

    @classmethod
    def generate(cls) -> "MasterKeyRing":
        """A new ring with version 1."""
        return cls({1: AESGCM.generate_key(bit_length=256)})

    def __repr__(self) -> str:
        return f"MasterKeyRing(versions={self.versions}, master_key=<redacted>)"


def load_master_keys(key_file: str | Path | None, env_var: str, env: Mapping[str, str] | None = None) -> MasterKeyRing:
    """The master key ring from ``key_file`` (mode 0600 or stricter) or, when no file is
    set, from the environment variable ``env_var``."""
    env = os.environ if env is None else env
    if key_file:
        path = Path(key_file)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise MasterKeyError(f"master key file {path} does not exist (run `exbus vault init`)") from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise MasterKeyError(f"master key file {path} is readable by others (mode {oct(st.st_mode & 0o777)}); "
                                 "chmod 600 it")
        return MasterKeyRing.loads(path.read_text())
    text = env.get(env_var, "")
    if not text:
        raise MasterKeyError(f"no master key: set vault.master_key_file or the {env_var} environment variable")
    return MasterKeyRing.loads(text)


def write_master_keys(ring: MasterKeyRing, key_file: str | Path, *, overwrite: bool = False) -> None:
    """Write the ring to ``key_file`` with mode 0600 (atomically replaced when ``overwrite``)."""
    path = Path(key_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not overwrite:
        raise MasterKeyError(f"master key file {path} already exists; refusing to overwrite it")
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, ring.dumps().encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _secret_aad(venue: str, account: str) -> bytes:
    return f"exbus-vault secret|{venue}/{account}".encode()


def _wrap_aad(venue: str, account: str, version: int) -> bytes:
    return f"exbus-vault data key|{venue}/{account}|v{version}".encode()


def encrypt_secret(ring: MasterKeyRing, venue: str, account: str, credentials: Credentials) -> EncryptedSecret:
    """Encrypt ``credentials`` under a fresh data key wrapped by the current master key."""
    version = ring.current_version
    master = ring.key(version)
    data_key = AESGCM.generate_key(bit_length=256)
    nonce, wrap_nonce = os.urandom(NONCE_BYTES), os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(data_key).encrypt(nonce, msgspec.json.encode(credentials), _secret_aad(venue, account))
    wrapped = AESGCM(master).encrypt(wrap_nonce, data_key, _wrap_aad(venue, account, version))
    return EncryptedSecret(key_version=version, key_check=key_check(master), wrap_nonce=wrap_nonce,
                           wrapped_key=wrapped, nonce=nonce, ciphertext=ciphertext)


def _unwrap(ring: MasterKeyRing, venue: str, account: str, secret: EncryptedSecret) -> bytes:
    master = ring.key(secret.key_version, secret.key_check)
    try:
        return AESGCM(master).decrypt(secret.wrap_nonce, secret.wrapped_key,
                                      _wrap_aad(venue, account, secret.key_version))
    except InvalidTag:
        raise VaultCryptoError(f"data key of {venue}/{account} does not authenticate "
                               "(record corrupt or moved to another account)") from None


def decrypt_secret(ring: MasterKeyRing, venue: str, account: str, secret: EncryptedSecret) -> Credentials:
    """Decrypt a stored secret; MasterKeyError for a wrong/absent master key, never garbage."""
    data_key = _unwrap(ring, venue, account, secret)
    try:
        plaintext = AESGCM(data_key).decrypt(secret.nonce, secret.ciphertext, _secret_aad(venue, account))
    except InvalidTag:
        raise VaultCryptoError(f"secret of {venue}/{account} does not authenticate (record corrupt)") from None
    return msgspec.json.decode(plaintext, type=Credentials)


def rewrap_secret(ring: MasterKeyRing, venue: str, account: str, secret: EncryptedSecret) -> EncryptedSecret:
    """The same ciphertext with its data key re-wrapped under the ring's current version."""
    version = ring.current_version
    if secret.key_version == version:
        return secret
    data_key = _unwrap(ring, venue, account, secret)
    master = ring.key(version)
    wrap_nonce = os.urandom(NONCE_BYTES)
    wrapped = AESGCM(master).encrypt(wrap_nonce, data_key, _wrap_aad(venue, account, version))
    return msgspec.structs.replace(secret, key_version=version, key_check=key_check(master),
                                   wrap_nonce=wrap_nonce, wrapped_key=wrapped)


def _seal_key(shared: bytes, sender_pub: bytes, recipient_pub: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=sender_pub + recipient_pub,
                info=_SEAL_INFO).derive(shared)


def raw_public(key: X25519PrivateKey | X25519PublicKey) -> bytes:
    """Raw 32-byte form of an X25519 public key (of a private key's public half)."""
    pub = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def seal(plaintext: bytes, recipient_public_key: bytes, context: bytes) -> SealedBox:
    """Seal ``plaintext`` to a raw X25519 public key with a fresh sender key; ``context``
    is authenticated (request id and account) so a box cannot be replayed elsewhere."""
    try:
        recipient = X25519PublicKey.from_public_bytes(recipient_public_key)
    except ValueError:
        raise SealError("recipient public key is not a valid X25519 key") from None
    sender = X25519PrivateKey.generate()
    sender_pub = raw_public(sender)
    key = _seal_key(sender.exchange(recipient), sender_pub, recipient_public_key)
    nonce = os.urandom(NONCE_BYTES)
    return SealedBox(sender_public_key=sender_pub, nonce=nonce,
                     ciphertext=ChaCha20Poly1305(key).encrypt(nonce, plaintext, context))


def unseal(box: SealedBox, recipient: X25519PrivateKey, context: bytes) -> bytes:
    """Open a box sealed to ``recipient``; SealError if the key or context is wrong."""
    sender_pub = X25519PublicKey.from_public_bytes(box.sender_public_key)
    key = _seal_key(recipient.exchange(sender_pub), box.sender_public_key, raw_public(recipient))
    try:
        return ChaCha20Poly1305(key).decrypt(box.nonce, box.ciphertext, context)
    except InvalidTag:
        raise SealError("sealed box does not open with this key and context") from None


def seal_context(request_id: str, venue: str, account: str) -> bytes:
    """Associated data of a credential grant's sealed box."""
    return f"exbus-vault grant|{request_id}|{venue}/{account}".encode()
