"""A running vault on a private nats-server, with a registered executor identity and
a sniffer subscribed to every subject."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import nats
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas import decode
from schemas.vault import AuditEvent, Credentials
from services.bus.streams import VAULT_AUDIT, ensure_streams
from services.config import Config, StreamSettings
from services.logs import configure_logging
from services.vault import admin
from services.vault.client import CredentialsClient
from services.vault.crypto import MasterKeyRing
from services.vault.service import run_vault
from services.vault.settings import VaultSettings
from services.vault.store import VaultStore
from services.vault.tokens import public_key_pem

SECRET = Credentials(api_key="vault-test-api-key-4f2a", secret="vault-test-secret-9c1d77e0", passphrase="pp-31337")
POLICY = {"executor": ["binance/*", "upbit/demo"], "strategy": []}


@dataclass
class VaultUnderTest:
    url: str
    nc: Any
    store: VaultStore
    ring: MasterKeyRing
    executor_key: Ed25519PrivateKey
    secret: Credentials = SECRET
    sniffed: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    logs: io.StringIO = field(default_factory=io.StringIO)

    def client(self, service_id: str = "executor", key: Ed25519PrivateKey | None = None) -> CredentialsClient:
        return CredentialsClient(self.nc, service_id, key or self.executor_key, timeout_s=5.0)

    async def audit_events(self) -> list[AuditEvent]:
        js = self.nc.jetstream()
        info = await js.stream_info(VAULT_AUDIT)
        events = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            events.append(decode((await js.get_msg(VAULT_AUDIT, seq)).data, AuditEvent))
        return events

    def everything_seen(self) -> bytes:
        """Every byte that crossed the bus (subjects, headers, payloads) plus every log line."""
        return b"\n".join(s.encode() + b" " + h + b" " + d for s, h, d in self.sniffed) + self.logs.getvalue().encode()


@pytest.fixture
async def vault(nats_url: str) -> AsyncIterator[VaultUnderTest]:
    logs = io.StringIO()
    configure_logging("debug", "json", stream=logs)
    sniffer = await nats.connect(nats_url)
    sniffed: list[tuple[str, bytes, bytes]] = []

    async def sniff(msg: Any) -> None:
        headers = repr(msg.headers or {}).encode()
        sniffed.append((msg.subject, headers, msg.data))

    await sniffer.subscribe(">", cb=sniff)
    await sniffer.flush()
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await ensure_streams(js, StreamSettings())
    store = await VaultStore.open(js)
    ring = MasterKeyRing.generate()
    executor_key = Ed25519PrivateKey.generate()
    await admin.register_service(nc, store, "executor", public_key_pem(executor_key))
    under_test = VaultUnderTest(url=nats_url, nc=nc, store=store, ring=ring, executor_key=executor_key,
                                sniffed=sniffed, logs=logs)
    config = Config(vault=VaultSettings(policy=POLICY, lease_ttl_s=60))
    stop = asyncio.Event()
    vault_nc = await nats.connect(nats_url)
    ready = asyncio.Event()
    task = asyncio.create_task(run_vault(vault_nc, config, stop, load_ring=lambda: under_test.ring, ready=ready))
    await asyncio.wait_for(ready.wait(), 10)
    yield under_test
    stop.set()
    await asyncio.wait_for(task, 10)
    for conn in (vault_nc, nc, sniffer):
        await conn.drain()
    configure_logging("info", "json")

