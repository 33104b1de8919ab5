"""Vault messages: credential requests on ``vault.credentials.get``, sealed grants,
denials, audit events (stream ``VAULT_AUDIT``) and revocations
(``vault.revoked.<venue>.<account>``).

No plaintext secret is ever part of these messages: a grant carries the credentials
sealed to the requester's ephemeral X25519 key.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

import msgspec
from msgspec import Meta

from schemas.common import Account, Nanos, ServiceId, Venue

X25519PublicKey = Annotated[bytes, Meta(min_length=32, max_length=32, description="Raw X25519 public key")]


class CredentialRequest(msgspec.Struct, frozen=True, tag_field="type", tag="credential_request", kw_only=True):
    """An executor asks for the credentials of (venue, account).

    ``token`` is a short-lived EdDSA JWT signed with the requesting service's own key
    (audience, expiry and a unique ``jti``, so it cannot be replayed).
    """

    request_id: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    venue: Venue
    account: Account
    service_id: ServiceId
    token: str
    ephemeral_public_key: X25519PublicKey


class SealedBox(msgspec.Struct, frozen=True, kw_only=True):
    """Ciphertext for one recipient: X25519(sender_ephemeral, recipient_ephemeral) ->
    HKDF-SHA256 -> AEAD key; ``ciphertext`` includes the tag."""

    sender_public_key: X25519PublicKey
    nonce: bytes
    ciphertext: bytes


class CredentialGrant(msgspec.Struct, frozen=True, tag_field="type", tag="credential_grant", kw_only=True):
    """The vault's yes: credentials sealed to the request's ephemeral key, under a lease."""

    request_id: str
    lease_id: str
    ttl_s: Annotated[int, Meta(gt=0)]
    expires_at: Nanos
    key_version: int
    sealed: SealedBox


DenialCode = Literal[
    "malformed", "unauthenticated", "forbidden", "not_found", "revoked", "replayed",
    "audit_unavailable", "internal",
]


class CredentialDenial(msgspec.Struct, frozen=True, tag_field="type", tag="credential_denial", kw_only=True):
    """The vault's no, always explicit."""

    request_id: str
    code: DenialCode
    reason: str


VaultReply = Union[CredentialGrant, CredentialDenial]

AuditAction = Literal["grant", "deny", "add", "rotate", "revoke", "restore", "backup", "retire", "purge"]


class AuditEvent(msgspec.Struct, frozen=True, tag_field="type", tag="audit", kw_only=True):
    """One access to or change of the vault: who, what, when, outcome. Never a secret."""

    event_id: str
    action: AuditAction
    actor: str
    outcome: Literal["ok", "denied", "error"]
    ts: Nanos
    venue: Venue | None = None
    account: Account | None = None
    reason: str | None = None
    lease_id: str | None = None
    key_version: int | None = None


class Revocation(msgspec.Struct, frozen=True, tag_field="type", tag="revocation", kw_only=True):
    """Holders of (venue, account) credentials must drop them now."""

    venue: Venue
    account: Account
    reason: str
    ts: Nanos


KeyEnvironment = Literal["live", "testnet"]
"""Which endpoints a venue key was issued for: the venue's live ones or its test ones
(testnet, demo or sandbox)."""


class Credentials(msgspec.Struct, frozen=True, kw_only=True):
    """Plaintext exchange credentials. Exists only inside a sealed box or in process
    memory; its repr never shows the secret values.

    ``environment`` and ``allowed_ips`` (the IP allow-list the key was registered with at
    the venue: addresses or CIDR networks) are not secret; they travel encrypted with the
    key so they cannot be changed apart from it. Keys stored before they existed read as
    ``live`` with no allow-list."""

    api_key: str
    secret: str
    passphrase: str | None = None
    environment: KeyEnvironment = "live"
    allowed_ips: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return ("Credentials(api_key=<redacted>, secret=<redacted>, passphrase=<redacted>, "
                f"environment={self.environment!r}, allowed_ips={list(self.allowed_ips)!r})")

    __str__ = __repr__
