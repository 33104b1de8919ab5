"""The vault service: answers ``vault.credentials.get`` in queue group ``vault``.

One request: decode -> token (registered Ed25519 key, audience, expiry, request
binding) -> policy -> jti claimed once across replicas, record read in the same round
trip -> decrypt -> seal to the request's ephemeral key -> audit (acknowledged) -> grant.
Any failed step is an explicit CredentialDenial with a code, and is audited too. If the
grant's audit event cannot be stored, the grant is refused.

Service keys come from a KV watch (parsed once per key), so a request costs two round
trips to the server: the jti claim with the record read, and the audit event. Data keys
are unwrapped per request, never cached.
"""

from __future__ import annotations

import asyncio
import fnmatch
import functools
import time
import uuid
from typing import Any, Callable

import msgspec
from nats.js import JetStreamContext

from schemas import VENUES, decode, encode
from schemas.subjects import VAULT_CREDENTIALS_GET
from schemas.vault import CredentialDenial, CredentialGrant, CredentialRequest, VaultReply
from services.logs import get_logger
from services.observability.alerts import AlertPublisher
from services.observability.catalog import VAULT as METRICS
from services.vault import audit
from services.vault.crypto import (
    MasterKeyError, MasterKeyRing, VaultCryptoError, decrypt_secret, load_master_keys, seal, seal_context,
)
from services.vault.settings import VaultSettings
from services.vault.store import ServiceKeyCache, VaultStore
from services.vault.tokens import TokenError, load_public_key, verify_token

log = get_logger("vault")

QUEUE_GROUP = "vault"

SUSPICIOUS_DENIALS = frozenset({"unauthenticated", "forbidden", "replayed", "malformed"})
"""Denials that may be an attack rather than a misconfiguration: critical alerts."""

_public_key = functools.lru_cache(maxsize=1024)(load_public_key)
"""Ed25519 key objects, parsed once per registered PEM."""


class Denied(Exception):
    """A request is refused with ``code`` and ``reason``."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def allowed(policy: dict[str, list[str]], service_id: str, venue: str, account: str) -> bool:
    """True when ``service_id``'s patterns (fnmatch, ``venue/account``) cover the account."""
    target = f"{venue}/{account}"
    return any(fnmatch.fnmatchcase(target, pattern) for pattern in policy.get(service_id, []))


class VaultService:
    """Decides credential requests; one instance per vault replica."""

    def __init__(self, js: JetStreamContext, store: VaultStore, settings: VaultSettings,
                 load_ring: Callable[[], MasterKeyRing]) -> None:
        self.js = js
        self.store = store
        self.service_keys = ServiceKeyCache(store)
        """Started by run_vault; read directly from KV until then."""
        self.settings = settings
        self._load_ring = load_ring
        self.ring = load_ring()
        self.alerts: AlertPublisher | None = None
        """Where denials are alerted (alerts.<severity>.vault_denial)."""

    async def answer(self, data: bytes) -> VaultReply:
        """The reply to one request (grant or denial), its audit event stored first."""
        try:
            request = decode(data, CredentialRequest)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            reason = f"request does not decode: {e}"
            await self._audit_denial("unknown", None, None, reason, code="malformed")
            METRICS.denials.labels("malformed").inc()
            return CredentialDenial(request_id=_request_id_of(data), code="malformed", reason=reason)
        try:
            grant, key_version = await self._grant(request)
        except Denied as d:
            await self._audit_denial(request.service_id, request.venue, request.account, f"{d.code}: {d.reason}",
                                     code=d.code)
            METRICS.denials.labels(d.code).inc()
            return CredentialDenial(request_id=request.request_id, code=d.code, reason=d.reason)  # type: ignore[arg-type]
        event = audit.audit_event("grant", request.service_id, "ok", venue=request.venue, account=request.account,
                                  lease_id=grant.lease_id, key_version=key_version)
        try:
            await audit.record(self.js, event)
        except audit.AuditUnavailable as e:
            log.error("grant refused: audit unavailable", service=request.service_id,
                      venue=request.venue, account=request.account, error=str(e))
            METRICS.denials.labels("audit_unavailable").inc()
            return CredentialDenial(request_id=request.request_id, code="audit_unavailable",
                                    reason="the audit trail is unavailable; no credentials are granted without it")
        METRICS.grants.labels(request.venue).inc()
        log.info("credentials granted", service=request.service_id, venue=request.venue,
                 account=request.account, lease_id=grant.lease_id)
        return grant

    async def _grant(self, req: CredentialRequest) -> tuple[CredentialGrant, int]:
        jti = await self._authenticate(req)
        if not allowed(self.settings.policy, req.service_id, req.venue, req.account):
            raise Denied("forbidden", f"service {req.service_id} may not read {req.venue}/{req.account}")
        # one round trip for both: the claim must succeed before the record is used
        claimed, record = await asyncio.gather(self.store.claim_jti(jti),
                                               self.store.get_secret(req.venue, req.account))
        if not claimed:
            raise Denied("replayed", "token id (jti) was already used")
        if record is None:
            raise Denied("not_found", f"no credentials for {req.venue}/{req.account}")
        if record.state == "revoked" or record.secret is None:
            raise Denied("revoked", f"credentials of {req.venue}/{req.account} are revoked")
        try:
            credentials = self._decrypt(req.venue, req.account, record.secret)
        except VaultCryptoError as e:
            log.error("stored secret does not decrypt", venue=req.venue, account=req.account, error=str(e))
            raise Denied("internal", "the stored credentials cannot be decrypted") from None
        if (credentials.environment, credentials.allowed_ips) != (record.environment, record.allowed_ips):
            log.error("record metadata differs from its ciphertext", venue=req.venue, account=req.account)
            raise Denied("internal", "the stored record was altered (environment or allowed IPs)")
        box = seal(msgspec.json.encode(credentials), req.ephemeral_public_key,
                   seal_context(req.request_id, req.venue, req.account))
        del credentials
        ttl = self.settings.lease_ttl_s
        grant = CredentialGrant(request_id=req.request_id, lease_id=uuid.uuid4().hex, ttl_s=ttl,
                                expires_at=time.time_ns() + ttl * 1_000_000_000,
                                key_version=record.secret.key_version, sealed=box)
        return grant, record.secret.key_version

    async def _authenticate(self, req: CredentialRequest) -> str:
        """Check the token against the service's registered key; returns its jti."""
        registered = await self.service_keys.get(req.service_id)
        pem = registered.public_key_pem if registered else self.settings.service_keys.get(req.service_id)
        if pem is None:
            raise Denied("unauthenticated", f"unknown service {req.service_id}")
        try:
            public_key = _public_key(pem)
        except ValueError:
            raise Denied("internal", f"registered key of {req.service_id} is not an Ed25519 public key") from None
        try:
            jti = verify_token(req.token, public_key, req.service_id, req.venue, req.account,
                               req.ephemeral_public_key, max_age_s=self.settings.token_max_age_s,
                               leeway_s=self.settings.clock_skew_s)
        except TokenError as e:
            raise Denied(e.code, e.reason) from None
        return jti

    def _decrypt(self, venue: str, account: str, secret: Any) -> Any:
        try:
            return decrypt_secret(self.ring, venue, account, secret)
        except MasterKeyError:
            if secret.key_version <= self.ring.current_version:
                raise
        self.ring = self._load_ring()  # rotated by another process: pick up the new version
        log.info("master key ring reloaded", versions=self.ring.versions)
        return decrypt_secret(self.ring, venue, account, secret)

    async def _audit_denial(self, actor: str, venue: str | None, account: str | None, reason: str,
                            code: str = "") -> None:
        event = audit.audit_event("deny", actor, "denied", venue=venue, account=account, reason=reason[:500])
        try:
            await audit.record(self.js, event)
        except audit.AuditUnavailable as e:
            log.error("denial not audited", actor=actor, venue=venue, account=account, error=str(e))
        log.info("credentials denied", actor=actor, venue=venue, account=account, reason=reason)
        if self.alerts is not None:
            severity = "critical" if code in SUSPICIOUS_DENIALS else "warning"
            await self.alerts.alert(severity, "vault_denial", f"vault refused {actor} for {venue or '?'}/{account or '?'}: {reason}",
                                    key=f"{actor}.{venue or '-'}.{account or '-'}.{code}",
                                    venue=venue if venue in VENUES else None, account=account,
                                    details={"service_id": actor[:100], "code": code})


def _request_id_of(data: bytes) -> str:
    try:
        rid = msgspec.json.decode(data, type=dict).get("request_id")
    except msgspec.DecodeError:
        return "unknown"
    return rid if isinstance(rid, str) and len(rid) <= 64 else "unknown"


def ring_loader(settings: VaultSettings) -> Callable[[], MasterKeyRing]:
    """Loads the master key ring from the configured file or environment variable."""
    return lambda: load_master_keys(settings.master_key_file or None, settings.master_key_env)


async def run_vault(nc: Any, config: Any, stop: asyncio.Event, *,
                    load_ring: Callable[[], MasterKeyRing] | None = None, ready: asyncio.Event | None = None) -> None:
    """Serve ``vault.credentials.get`` on ``nc`` (queue group ``vault``) until ``stop``;
    ``ready`` is set once the subscription is live on the server."""
    settings: VaultSettings = config.vault
    js = nc.jetstream()
    store = await VaultStore.open(js, jti_ttl_s=settings.token_max_age_s + 2 * settings.clock_skew_s)
    service = VaultService(js, store, settings, load_ring or ring_loader(settings))
    service.alerts = AlertPublisher(nc, "vault")
    await service.service_keys.start()

    async def on_request(msg: Any) -> None:
        if not msg.reply:
            return
        try:
            reply: VaultReply = await service.answer(msg.data)
        except Exception as e:  # a fault of ours still gets an explicit answer
            log.error("request failed", error=f"{type(e).__name__}: {e}")
            reply = CredentialDenial(request_id=_request_id_of(msg.data), code="internal", reason="vault error")
            METRICS.denials.labels("internal").inc()
        await msg.respond(encode(reply))

    sub = await nc.subscribe(VAULT_CREDENTIALS_GET, queue=QUEUE_GROUP, cb=on_request)
    await nc.flush()
    if ready is not None:
        ready.set()
    log.info("vault serving", subject=VAULT_CREDENTIALS_GET, key_versions=service.ring.versions)
    retention = asyncio.create_task(apply_retention(nc, store, settings, config.streams.vault_audit_max_age_s, stop),
                                    name="vault-retention")
    try:
        await stop.wait()
    finally:
        await retention
        await sub.drain()
        await service.service_keys.stop()
        log.info("vault stopped")


async def apply_retention(nc: Any, store: VaultStore, settings: VaultSettings, audit_max_age_s: float,
                          stop: asyncio.Event) -> None:
    """Purge old key versions (and apply the audit age limit) every ``purge_interval_s``
    until ``stop``; a failed run is logged and the next one goes on."""
    from services.vault.admin import purge_vault

    if settings.purge_interval_s <= 0:
        return
    while True:
        try:
            await asyncio.wait_for(stop.wait(), settings.purge_interval_s)
            return
        except asyncio.TimeoutError:
            pass
        try:
            report = await purge_vault(nc, store, settings, audit_max_age_s, actor="vault")
        except Exception as e:  # bus trouble: the next run tries again
            log.warning("retention run failed", error=f"{type(e).__name__}: {e}")
            continue
        if report.revisions or report.audit_entries:
            log.info("retention applied", key_versions_purged=len(report.revisions),
                     audit_entries_dropped=report.audit_entries)
