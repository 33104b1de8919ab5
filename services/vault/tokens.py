"""Request tokens: short-lived EdDSA JWTs a service signs with its own Ed25519 key.

Claims: ``iss`` (the service id), ``aud`` = ``exbus-vault``, ``iat``, ``exp``, a unique
``jti``, and two that bind the token to one request: ``res`` (``venue/account``) and
``epk`` (SHA-256 of the request's ephemeral X25519 public key), so a token seen on the
wire cannot fetch another account or have the grant sealed to another key.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

AUDIENCE = "exbus-vault"
ALGORITHM = "EdDSA"


class TokenError(Exception):
    """A token is not acceptable; ``code`` is the denial code, the message the reason."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _epk_hash(ephemeral_public_key: bytes) -> str:
    return hashlib.sha256(ephemeral_public_key).hexdigest()


def issue_token(private_key: Ed25519PrivateKey, service_id: str, venue: str, account: str,
                ephemeral_public_key: bytes, *, ttl_s: int = 30, now: float | None = None) -> str:
    """A token for one credential request of ``service_id``."""
    iat = int(time.time() if now is None else now)
    claims = {
        "iss": service_id, "aud": AUDIENCE, "iat": iat, "exp": iat + ttl_s, "jti": uuid.uuid4().hex,
        "res": f"{venue}/{account}", "epk": _epk_hash(ephemeral_public_key),
    }
    return jwt.encode(claims, private_key, algorithm=ALGORITHM)


def verify_token(token: str, public_key: Ed25519PublicKey, service_id: str, venue: str, account: str,
                 ephemeral_public_key: bytes, *, max_age_s: int, leeway_s: int, now: float | None = None) -> str:
    """Check signature, audience, issuer, expiry, lifetime and request binding; returns
    the ``jti``. Raises TokenError with the denial code and reason."""
    try:
        claims = jwt.decode(
            token, public_key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=service_id, leeway=leeway_s,
            options={"require": ["exp", "iat", "jti", "iss", "aud", "res", "epk"], "verify_iat": True},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("unauthenticated", "token expired") from None
    except jwt.InvalidSignatureError:
        raise TokenError("unauthenticated", "token signature does not verify with the service's key") from None
    except jwt.DecodeError:
        raise TokenError("malformed", "token is not a decodable JWT") from None
    except jwt.InvalidTokenError as e:
        raise TokenError("unauthenticated", f"token rejected: {e}") from None
    current = time.time() if now is None else now
    if not isinstance(claims["exp"], int) or not isinstance(claims["iat"], int):
        raise TokenError("unauthenticated", "token times are not integers")
    if claims["exp"] - claims["iat"] > max_age_s or claims["iat"] > current + leeway_s:
        raise TokenError("unauthenticated", f"token lifetime exceeds {max_age_s}s or starts in the future")
    if claims["res"] != f"{venue}/{account}" or claims["epk"] != _epk_hash(ephemeral_public_key):
        raise TokenError("unauthenticated", "token was issued for another request")
    jti = claims["jti"]
    if not isinstance(jti, str) or not 8 <= len(jti) <= 64 or not jti.replace("-", "").replace("_", "").isalnum():
        raise TokenError("unauthenticated", "token id (jti) is not acceptable")
    return jti


def public_key_pem(private_key: Ed25519PrivateKey) -> str:
    """PEM (SubjectPublicKeyInfo) of a service key's public half."""
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_key(pem: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; ValueError for anything else."""
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def write_service_key(private_key: Ed25519PrivateKey, path: str | Path) -> None:
    """Write a service's private key (PKCS#8 PEM) with mode 0600; refuses to overwrite."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
    finally:
        os.close(fd)


def load_service_key(path: str | Path) -> Ed25519PrivateKey:
    """A service's private key from a 0600 PEM file."""
    path = Path(path)
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PermissionError(f"service key file {path} is readable by others; chmod 600 it")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key
