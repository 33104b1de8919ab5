"""Rotation under load: two vault replicas (queue group) keep granting while
`exbus vault rotate` runs twice as a separate process; no request fails, grants move to
the new master key versions, and the plaintext secret shows up nowhere (bus, logs,
the CLI's output)."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from typing import Any

import nats
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas import decode
from schemas.vault import AuditEvent, Credentials
from services.bus.streams import VAULT_AUDIT, ensure_streams
from services.config import Config, StreamSettings
from services.executor.credentials import CredentialsUnavailable
from services.logs import configure_logging
from services.vault import admin
from services.vault.client import CredentialsClient
from services.vault.crypto import MasterKeyRing, write_master_keys
from services.vault.service import run_vault
from services.vault.settings import VaultSettings
from services.vault.store import VaultStore
from services.vault.tokens import public_key_pem

SECRET = Credentials(api_key="rotation-load-key-0b7e", secret="rotation-load-secret-5a91c3")
ACCOUNTS = [("binance", "main"), ("upbit", "demo")]
WORKERS = 4


class Load:
    """Clients asking the vault in a loop until told to stop, counting outcomes."""

    def __init__(self) -> None:
        self.ok: list[float] = []
        self.failed: list[str] = []
        self.done = asyncio.Event()

    async def worker(self, client: CredentialsClient, n: int) -> None:
        i = n
        while not self.done.is_set():
            venue, account = ACCOUNTS[i % len(ACCOUNTS)]
            i += 1
            try:  # the vault's 1 s leases end at once (client margin 2 s): every get asks the vault
                got = await client.get(venue, account)
            except CredentialsUnavailable as e:
                self.failed.append(str(e))
                continue
            if got != SECRET:
                self.failed.append(f"{venue}/{account}: wrong credentials")
            else:
                self.ok.append(time.monotonic())


async def test_requests_keep_succeeding_while_exbus_vault_rotate_runs(
        nats_url: str, exbus_cmd: list[str], clean_env: dict[str, str], tmp_path: Path) -> None:
    logs = io.StringIO()
    configure_logging("debug", "json", stream=logs)
    sniffed: list[bytes] = []

    async def sniff(msg: Any) -> None:
        sniffed.append(msg.subject.encode() + b" " + repr(msg.headers or {}).encode() + b" " + msg.data)

    sniffer = await nats.connect(nats_url)
    await sniffer.subscribe(">", cb=sniff)
    await sniffer.flush()

    key_file = tmp_path / "master.key"
    write_master_keys(MasterKeyRing.generate(), key_file)
    settings = VaultSettings(master_key_file=str(key_file), policy={"executor": ["binance/*", "upbit/*"]},
                             lease_ttl_s=1)
    nc = await nats.connect(nats_url)
    await ensure_streams(nc.jetstream(), StreamSettings())
    store = await VaultStore.open(nc.jetstream())
    executor_key = Ed25519PrivateKey.generate()
    await admin.register_service(nc, store, "executor", public_key_pem(executor_key))
    ring = MasterKeyRing.loads(key_file.read_text())
    for venue, account in ACCOUNTS:
        await admin.add_credentials(nc, store, ring, venue, account, SECRET)

    stop = asyncio.Event()
    replicas, replica_ncs = [], []
    for _ in range(2):
        replica_nc = await nats.connect(nats_url)
        ready = asyncio.Event()
        replicas.append(asyncio.create_task(run_vault(replica_nc, Config(vault=settings), stop, ready=ready)))
        replica_ncs.append(replica_nc)
        await asyncio.wait_for(ready.wait(), 10)

    load = Load()
    clients = [CredentialsClient(nc, "executor", executor_key, timeout_s=10) for _ in range(WORKERS)]
    workers = [asyncio.create_task(load.worker(c, n)) for n, c in enumerate(clients)]
    env = {**clean_env, "NATS_URL": nats_url, "EXBUS_VAULT_MASTER_KEY_FILE": str(key_file)}
    cli_output, during = "", 0
    for _ in range(2):
        before = len(load.ok)
        proc = await asyncio.create_subprocess_exec(*exbus_cmd, "vault", "rotate", cwd=tmp_path, env=env,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        cli_output += out.decode() + err.decode()
        during += len(load.ok) - before
    after = len(load.ok)
    while len(load.ok) < after + 2 * WORKERS:  # a few rounds under the final key version
        await asyncio.sleep(0.05)
    load.done.set()
    await asyncio.gather(*workers)

    assert load.failed == [], load.failed[:5]
    assert during > 0, "no request completed while rotate ran"
    assert "master key version 3: re-wrapped 2 records" in cli_output
    events = await _audit(nc)
    grant_versions = {e.key_version for e in events if e.action == "grant"}
    assert grant_versions == {1, 2, 3}, grant_versions
    assert [e.action for e in events].count("rotate") == 2 and "deny" not in [e.action for e in events]

    stop.set()
    await asyncio.gather(*replicas)
    for client in clients:
        await client.close()
    for conn in (*replica_ncs, nc, sniffer):
        await conn.drain()
    configure_logging("info", "json")
    seen = b"\n".join(sniffed) + logs.getvalue().encode() + cli_output.encode()
    assert b"credential_grant" in seen and b"vault.revoked.upbit.demo" in seen
    for plaintext in (SECRET.api_key, SECRET.secret):
        assert plaintext.encode() not in seen


async def _audit(nc: Any) -> list[AuditEvent]:
    js = nc.jetstream()
    info = await js.stream_info(VAULT_AUDIT)
    return [decode((await js.get_msg(VAULT_AUDIT, s)).data, AuditEvent)
            for s in range(info.state.first_seq, info.state.last_seq + 1)]
