"""The executor's side of the vault: ask for credentials with a signed token and a
fresh ephemeral X25519 key, open the sealed grant, hold it in memory until its lease
ends or a revocation for the account arrives.

``CredentialsClient`` satisfies the executor's provider protocol
(``async get(venue, account) -> Credentials``, CredentialsUnavailable on failure).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from schemas import decode, encode
from schemas.subjects import VAULT_CREDENTIALS_GET, VAULT_REVOKED_ALL
from schemas.vault import CredentialDenial, CredentialRequest, Credentials, Revocation, VaultReply
from services.executor.credentials import CredentialsUnavailable
from services.logs import get_logger
from services.vault.crypto import SealError, raw_public, seal_context, unseal
from services.vault.tokens import issue_token

log = get_logger("vault-client")

LEASE_MARGIN_NS = 2_000_000_000
"""Drop a lease this long before the vault's expiry."""


class VaultDenied(CredentialsUnavailable):
    """The vault refused the request; ``code`` is the CredentialDenial code."""

    def __init__(self, venue: str, account: str, code: str, reason: str) -> None:
        super().__init__(f"vault denied {venue}/{account}: {code}: {reason}")
        self.code = code
        self.reason = reason


class _Lease(msgspec.Struct):
    credentials: Credentials
    lease_id: str
    expires_at: int


class CredentialsClient:
    """Credentials from the vault for one service identity, cached per lease."""

    def __init__(self, nc: Any, service_id: str, private_key: Ed25519PrivateKey, *,
                 timeout_s: float = 5.0, token_ttl_s: int = 30) -> None:
        self.nc = nc
        self.service_id = service_id
        self._private_key = private_key
        self.timeout_s = timeout_s
        self.token_ttl_s = token_ttl_s
        self._leases: dict[tuple[str, str], _Lease] = {}
        self._generation: dict[tuple[str, str], int] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._sub: Any = None
        self.revoked = asyncio.Event()
        """Set each time a revocation is applied (reset by whoever waits on it)."""

    async def start(self) -> None:
        """Listen for revocations (done by the first get() when not called)."""
        if self._sub is None:
            self._sub = await self.nc.subscribe(VAULT_REVOKED_ALL, cb=self._on_revoked)

    async def close(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None
        self._leases.clear()

    async def _on_revoked(self, msg: Any) -> None:
        try:
            revocation = decode(msg.data, Revocation)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        key = (revocation.venue, revocation.account)
        self._generation[key] = self._generation.get(key, 0) + 1
        if self._leases.pop(key, None) is not None:
            log.info("credentials dropped", venue=key[0], account=key[1], reason=revocation.reason)
        self.revoked.set()

    def holds(self, venue: str, account: str) -> bool:
        """True while a live lease for venue/account is cached."""
        lease = self._leases.get((venue, account))
        return lease is not None and lease.expires_at - LEASE_MARGIN_NS > time.time_ns()

    async def get(self, venue: str, account: str) -> Credentials:
        """Credentials of venue/account: the cached lease, else a new grant from the vault."""
        await self.start()
        key = (venue, account)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if self.holds(venue, account):
                return self._leases[key].credentials
            generation = self._generation.get(key, 0)
            lease = await self._request(venue, account)
            if self._generation.get(key, 0) == generation:  # no revocation while asking
                self._leases[key] = lease
            return lease.credentials

    async def _request(self, venue: str, account: str) -> _Lease:
        ephemeral = X25519PrivateKey.generate()
        ephemeral_pub = raw_public(ephemeral)
        request = CredentialRequest(
            request_id=uuid.uuid4().hex, venue=venue, account=account, service_id=self.service_id,  # type: ignore[arg-type]
            token=issue_token(self._private_key, self.service_id, venue, account, ephemeral_pub,
                              ttl_s=self.token_ttl_s),
            ephemeral_public_key=ephemeral_pub,
        )
        try:
            msg = await self.nc.request(VAULT_CREDENTIALS_GET, encode(request), timeout=self.timeout_s)
        except Exception as e:  # timeout, no responders, permissions
            raise CredentialsUnavailable(f"vault did not answer for {venue}/{account}: {type(e).__name__}") from None
        try:
            reply = decode(msg.data, VaultReply)  # type: ignore[arg-type]
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise CredentialsUnavailable(f"vault reply for {venue}/{account} does not decode") from None
        if isinstance(reply, CredentialDenial):
            raise VaultDenied(venue, account, reply.code, reply.reason)
        if reply.request_id != request.request_id:
            raise CredentialsUnavailable(f"vault reply for {venue}/{account} answers another request")
        try:
            plaintext = unseal(reply.sealed, ephemeral, seal_context(request.request_id, venue, account))
            credentials = msgspec.json.decode(plaintext, type=Credentials)
        except (SealError, ValueError, msgspec.DecodeError):
            raise CredentialsUnavailable(f"vault grant for {venue}/{account} does not open") from None
        return _Lease(credentials=credentials, lease_id=reply.lease_id, expires_at=reply.expires_at)

    def __repr__(self) -> str:
        return f"CredentialsClient(service_id={self.service_id!r}, leases={sorted(self._leases)})"
