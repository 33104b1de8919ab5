"""Signing recipes shared by venues: HMAC digests in hex or base64, and the JWT with a
query hash that Upbit and Bithumb use. Secrets are taken as str, turned into bytes only
inside these functions, and never logged."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Literal

import jwt

Digest = Literal["sha256", "sha384", "sha512"]


def hmac_hex(secret: str | bytes, message: str | bytes, digest: Digest = "sha256") -> str:
    """Lower-case hex HMAC of ``message``."""
    key = secret.encode() if isinstance(secret, str) else secret
    msg = message.encode() if isinstance(message, str) else message
    return hmac.new(key, msg, digest).hexdigest()


def hmac_b64(secret: str | bytes, message: str | bytes, digest: Digest = "sha256") -> str:
    """Base64 HMAC of ``message``."""
    key = secret.encode() if isinstance(secret, str) else secret
    msg = message.encode() if isinstance(message, str) else message
    return base64.b64encode(hmac.new(key, msg, digest).digest()).decode()


def query_hash_jwt(access_key: str, secret: str, nonce: str, query: str, *, algorithm: str = "HS256",
                   extra: dict[str, object] | None = None) -> str:
    """``Bearer`` token of Upbit/Bithumb: claims access_key, nonce and, when there are
    parameters, query_hash = hex SHA512 of the query string, signed with the raw secret."""
    claims: dict[str, object] = {"access_key": access_key, "nonce": nonce}
    if extra:
        claims.update(extra)
    if query:
        claims["query_hash"] = hashlib.sha512(query.encode()).hexdigest()
        claims["query_hash_alg"] = "SHA512"
    return jwt.encode(claims, secret, algorithm=algorithm)
