"""Vault denials reach the bus as alerts: ``alerts.critical.vault_denial`` for a request
that may be an attack (bad token, outside policy, replayed, malformed),
``alerts.warning.vault_denial`` for a misconfiguration (unknown or revoked account);
never with a secret in them."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from schemas import decode, encode
from schemas.alerts import Alert
from schemas.vault import CredentialDenial, CredentialRequest, VaultReply
from services.vault import admin
from services.vault.crypto import raw_public
from services.vault.tokens import issue_token


def request(key: Ed25519PrivateKey, venue: str, account: str, service_id: str = "executor") -> CredentialRequest:
    epk = raw_public(X25519PrivateKey.generate())
    return CredentialRequest(request_id=uuid.uuid4().hex, venue=venue, account=account, service_id=service_id,
                             token=issue_token(key, service_id, venue, account, epk), ephemeral_public_key=epk)


async def ask(vault: Any, req: CredentialRequest) -> VaultReply:
    return decode((await vault.nc.request("vault.credentials.get", encode(req), timeout=5)).data, VaultReply)  # type: ignore[arg-type]


def alerts_seen(vault: Any) -> list[tuple[str, Alert]]:
    return [(s, decode(d, Alert)) for s, _, d in vault.sniffed if s.startswith("alerts.")]


async def test_denials_are_alerted_by_severity_without_secrets(vault: Any) -> None:
    await admin.add_credentials(vault.nc, vault.store, vault.ring, "binance", "main", vault.secret)
    forged = await ask(vault, request(Ed25519PrivateKey.generate(), "binance", "main"))  # not the registered key
    missing = await ask(vault, request(vault.executor_key, "binance", "nobody"))
    assert isinstance(forged, CredentialDenial) and forged.code == "unauthenticated"
    assert isinstance(missing, CredentialDenial) and missing.code == "not_found"
    for _ in range(50):
        if len(alerts_seen(vault)) >= 2:
            break
        await asyncio.sleep(0.02)
    seen = alerts_seen(vault)
    assert [(s, a.details["code"], a.account) for s, a in seen] == [
        ("alerts.critical.vault_denial", "unauthenticated", "main"),
        ("alerts.warning.vault_denial", "not_found", "nobody"),
    ]
    assert all(a.service == "vault" and a.venue == "binance" and "executor" in a.summary for _, a in seen)
    assert vault.secret.secret.encode() not in vault.everything_seen()
    assert vault.secret.api_key.encode() not in vault.everything_seen()
