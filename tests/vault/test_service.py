"""The vault service end to end on a real nats-server: grants, every denial case with
its audit event, rotation, revocation, and no plaintext secret on the bus or in logs.

``vault`` is the fixture of tests/vault/conftest.py (a VaultUnderTest)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from schemas import decode, encode
from schemas.vault import CredentialDenial, CredentialGrant, CredentialRequest, VaultReply
from services.bus.streams import VAULT_AUDIT
from services.executor.credentials import CredentialsUnavailable
from services.vault import admin
from services.vault.client import VaultDenied
from services.vault.crypto import raw_public
from services.vault.tokens import issue_token, public_key_pem



def _request(key: Ed25519PrivateKey, venue: str, account: str, *, service_id: str = "executor",
             now: float | None = None) -> CredentialRequest:
    epk = raw_public(X25519PrivateKey.generate())
    return CredentialRequest(request_id=uuid.uuid4().hex, venue=venue, account=account, service_id=service_id,
                             token=issue_token(key, service_id, venue, account, epk, now=now),
                             ephemeral_public_key=epk)


async def _ask(vault: Any, request: CredentialRequest) -> VaultReply:
    msg = await vault.nc.request("vault.credentials.get", encode(request), timeout=5)
    return decode(msg.data, VaultReply)  # type: ignore[arg-type]


async def _wait_revoked(client) -> None:
    await asyncio.wait_for(client.revoked.wait(), 5)
    client.revoked.clear()


async def test_grant_rotation_revocation_never_show_the_secret(vault: Any) -> None:
    await admin.add_credentials(vault.nc, vault.store, vault.ring, "binance", "main", vault.secret)
    client = vault.client()
    assert await client.get("binance", "main") == vault.secret
    assert client.holds("binance", "main")
    assert await client.get("binance", "main") == vault.secret  # from the lease cache

    # rotation: new master key version; the vault reloads it; holders re-fetch
    vault.ring = vault.ring.with_new_version()
    changed = await admin.rotate_master_key(vault.nc, vault.store, vault.ring)
    assert [(r.venue, r.account, r.secret.key_version) for r in changed] == [("binance", "main", 2)]
    await _wait_revoked(client)
    assert not client.holds("binance", "main")
    assert await client.get("binance", "main") == vault.secret
    grants = [e for e in await vault.audit_events() if e.action == "grant"]
    assert [g.key_version for g in grants] == [1, 2]

    await admin.revoke_credentials(vault.nc, vault.store, "binance", "main", "key leaked")
    await _wait_revoked(client)
    assert not client.holds("binance", "main")
    with pytest.raises(VaultDenied) as denied:
        await client.get("binance", "main")
    assert denied.value.code == "revoked"
    await client.close()

    seen = vault.everything_seen()
    assert b"credential_grant" in seen and b"vault.revoked.binance.main" in seen  # the sniffer saw it all
    for plaintext in (vault.secret.secret, vault.secret.api_key, vault.secret.passphrase):
        assert plaintext is not None and plaintext.encode() not in seen, plaintext[:4]
    actions = [e.action for e in await vault.audit_events()]
    assert actions.count("grant") == 2 and "rotate" in actions and "revoke" in actions and "add" in actions


async def test_each_request_uses_a_new_ephemeral_key(vault: Any) -> None:
    await admin.add_credentials(vault.nc, vault.store, vault.ring, "upbit", "demo", vault.secret)
    client = vault.client()
    await client.get("upbit", "demo")
    client._leases.clear()
    await client.get("upbit", "demo")
    requests = [decode(d, CredentialRequest) for s, _, d in vault.sniffed if s == "vault.credentials.get" and d != b"{}"]
    assert len(requests) == 2 and requests[0].ephemeral_public_key != requests[1].ephemeral_public_key
    await client.close()


async def test_every_denial_is_explicit_and_audited(vault: Any) -> None:
    for venue, account in (("binance", "main"), ("binance", "old"), ("okx", "main")):
        await admin.add_credentials(vault.nc, vault.store, vault.ring, venue, account, vault.secret)
    await admin.revoke_credentials(vault.nc, vault.store, "binance", "old", "retired account")
    key = vault.executor_key
    replay = _request(key, "binance", "main")
    assert isinstance(await _ask(vault, replay), CredentialGrant)

    cases = {
        "unknown service": (_request(Ed25519PrivateKey.generate(), "binance", "main", service_id="ghost"),
                            "unauthenticated", "unknown service"),
        "bad signature": (_request(Ed25519PrivateKey.generate(), "binance", "main"), "unauthenticated", "signature"),
        "expired token": (_request(key, "binance", "main", now=time.time() - 600), "unauthenticated", "expired"),
        "replayed jti": (replay, "replayed", "already used"),
        "policy forbids": (_request(key, "okx", "main"), "forbidden", "may not read okx/main"),
        "revoked": (_request(key, "binance", "old"), "revoked", "revoked"),
        "unknown account": (_request(key, "binance", "nobody"), "not_found", "no credentials"),
    }
    for name, (request, code, reason) in cases.items():
        reply = await _ask(vault, request)
        assert isinstance(reply, CredentialDenial), name
        assert (reply.code, reply.request_id) == (code, request.request_id), name
        assert reason in reply.reason, name
    malformed = decode((await vault.nc.request("vault.credentials.get", b'{"request_id":"r1"}', timeout=5)).data,
                       VaultReply)  # type: ignore[arg-type]
    assert isinstance(malformed, CredentialDenial) and (malformed.code, malformed.request_id) == ("malformed", "r1")

    denials = [e for e in await vault.audit_events() if e.action == "deny"]
    assert len(denials) == len(cases) + 1 and all(e.outcome == "denied" for e in denials)
    for (_, code, _), event in zip(cases.values(), denials):
        assert event.reason is not None and event.reason.startswith(code)
    assert [(e.actor, e.venue, e.account) for e in denials[:2]] == [("ghost", "binance", "main"),
                                                                   ("executor", "binance", "main")]


async def test_token_for_another_account_or_key_is_refused(vault: Any) -> None:
    await admin.add_credentials(vault.nc, vault.store, vault.ring, "binance", "main", vault.secret)
    stolen = _request(vault.executor_key, "binance", "main")
    other_key = raw_public(X25519PrivateKey.generate())
    swapped = CredentialRequest(request_id=stolen.request_id, venue="binance", account="main", service_id="executor",
                                token=stolen.token, ephemeral_public_key=other_key)
    reply = await _ask(vault, swapped)
    assert isinstance(reply, CredentialDenial) and reply.code == "unauthenticated"
    assert "another request" in reply.reason


async def test_no_grant_without_audit(vault: Any) -> None:
    await admin.add_credentials(vault.nc, vault.store, vault.ring, "binance", "main", vault.secret)
    await vault.nc.jetstream().delete_stream(VAULT_AUDIT)
    reply = await _ask(vault, _request(vault.executor_key, "binance", "main"))
    assert isinstance(reply, CredentialDenial) and reply.code == "audit_unavailable"
    with pytest.raises(CredentialsUnavailable, match="audit_unavailable"):
        await vault.client().get("binance", "main")


async def test_a_service_registered_while_the_vault_runs_is_served_at_once(vault: Any) -> None:
    """Service keys are followed by a KV watch; one the watch has not delivered yet is read
    directly, so registration needs no vault restart and no wait."""
    await admin.add_credentials(vault.nc, vault.store, vault.ring, "upbit", "demo", vault.secret)
    late_key = Ed25519PrivateKey.generate()
    await admin.register_service(vault.nc, vault.store, "executor-late", public_key_pem(late_key))
    late = await _ask(vault, _request(late_key, "upbit", "demo", service_id="executor-late"))
    assert isinstance(late, CredentialDenial) and late.code == "forbidden"  # authenticated; POLICY has no rule for it
    impostor = await _ask(vault, _request(Ed25519PrivateKey.generate(), "upbit", "demo", service_id="executor-late"))
    assert isinstance(impostor, CredentialDenial) and impostor.code == "unauthenticated"
