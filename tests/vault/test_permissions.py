"""deploy/nats/exbus.conf loaded into a real nats-server: an executor can ask the vault
for credentials; a strategy can neither listen on vault.> nor ask, nor read KV vault.
`exbus up` runs its embedded server with the same file, each service as its own user."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any, AsyncIterator

import nats
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.vault import Credentials
from services.bus.connect import connect
from services.bus.embedded import SERVICE_USERS, EmbeddedNats
from services.bus.streams import ensure_streams
from services.config import Config, NatsSettings, StreamSettings
from services.demo import place_and_cancel
from services.logs import configure_logging
from services.executor.client import OrderClient
from services.executor.credentials import CredentialsUnavailable
from services.up import System
from services.vault import admin
from services.vault.client import CredentialsClient
from services.vault.crypto import MasterKeyRing
from services.vault.service import run_vault
from services.vault.settings import VaultSettings
from services.vault.store import VaultStore
from services.vault.tokens import public_key_pem

CONF = Path(__file__).resolve().parents[2] / "deploy" / "nats" / "exbus.conf"
USERS = SERVICE_USERS
CREDS = Credentials(api_key="perm-test-key", secret="perm-test-secret")


class Conn:
    """A connection as one exbus user, with the permission errors the server sent it."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.violation = asyncio.Event()
        self.nc: Any = None

    async def on_error(self, e: Exception) -> None:
        self.errors.append(str(e))
        if "permissions violation" in str(e).lower():
            self.violation.set()

    async def open(self, url: str, user: str, settings: NatsSettings | None = None) -> "Conn":
        settings = settings or NatsSettings(user=user, password=f"pw-{user}")
        self.nc = await connect(settings, url=url, name=f"test-{user}", error_cb=self.on_error,
                                max_reconnect_attempts=0)
        return self


@pytest.fixture
async def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    for user in USERS:
        monkeypatch.setenv(f"EXBUS_NATS_{user.upper()}_PASSWORD", f"pw-{user}")
    async with EmbeddedNats(tmp_path / "nats", config_file=CONF) as nats_server:
        yield nats_server.url


async def test_executor_gets_credentials_strategy_is_kept_out(server: str) -> None:
    operator = await Conn().open(server, "operator")
    await ensure_streams(operator.nc.jetstream(), StreamSettings())
    ring = MasterKeyRing.generate()
    executor_key = Ed25519PrivateKey.generate()
    store = await VaultStore.open(operator.nc.jetstream())
    await admin.register_service(operator.nc, store, "executor", public_key_pem(executor_key))
    await admin.add_credentials(operator.nc, store, ring, "binance", "main", CREDS)

    vault = await Conn().open(server, "vault")
    stop, ready = asyncio.Event(), asyncio.Event()
    config = Config(vault=VaultSettings(policy={"executor": ["binance/*"], "strategy": ["binance/*"]}))
    task = asyncio.create_task(run_vault(vault.nc, config, stop, load_ring=lambda: ring, ready=ready))
    await asyncio.wait_for(ready.wait(), 10)

    executor = await Conn().open(server, "executor")
    client = CredentialsClient(executor.nc, "executor", executor_key, timeout_s=5)
    assert await client.get("binance", "main") == CREDS
    await client.close()

    strategy = await Conn().open(server, "strategy")
    await strategy.nc.subscribe("vault.>")
    await asyncio.wait_for(strategy.violation.wait(), 5)
    assert any('subscription to "vault.>"' in e.lower() for e in strategy.errors), strategy.errors

    strategy.violation.clear()
    thief = CredentialsClient(strategy.nc, "executor", executor_key, timeout_s=1)
    with pytest.raises(CredentialsUnavailable, match="did not answer"):
        await thief.get("binance", "main")
    await asyncio.wait_for(strategy.violation.wait(), 5)
    assert any('publish to "vault.credentials.get"' in e.lower() for e in strategy.errors), strategy.errors

    strategy.violation.clear()
    await strategy.nc.subscribe("_INBOX.executor.>")
    await asyncio.wait_for(strategy.violation.wait(), 5)

    strategy.violation.clear()
    with pytest.raises(Exception):  # no JetStream API on the vault's bucket: the request is dropped
        await strategy.nc.jetstream(timeout=1).key_value("vault")
    await asyncio.wait_for(strategy.violation.wait(), 5)

    executor.violation.clear()
    kv = await executor.nc.jetstream(timeout=1).key_value("vault")  # stream info is metadata only
    with pytest.raises(Exception):
        await kv.get("secret.binance.main")
    await asyncio.wait_for(executor.violation.wait(), 5)
    assert any("kv_vault" in e.lower() for e in executor.errors), executor.errors

    events = await admin_audit_actions(operator.nc)
    assert events.count("grant") == 1 and "deny" not in events  # the strategy's request never reached the vault

    stop.set()
    await asyncio.wait_for(task, 10)
    for conn in (strategy, executor, vault, operator):
        await conn.nc.close()


async def admin_audit_actions(nc: Any) -> list[str]:
    from schemas import decode
    from schemas.vault import AuditEvent
    from services.bus.streams import VAULT_AUDIT

    js = nc.jetstream()
    info = await js.stream_info(VAULT_AUDIT)
    return [decode((await js.get_msg(VAULT_AUDIT, s)).data, AuditEvent).action
            for s in range(info.state.first_seq, info.state.last_seq + 1)]


async def test_exbus_up_runs_each_service_as_its_own_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`exbus up --sim` on the embedded default: anonymous clients are refused; a strategy
    trades through exbus (executors fetch the paper keys from the vault as executor) but
    is kept out of vault.> and the executors' inbox. The per-run passwords appear in no
    output and no log."""
    monkeypatch.chdir(tmp_path)  # .exbus/ (server data, dev vault) under the test's directory
    out, logs = io.StringIO(), io.StringIO()
    configure_logging("debug", "json", stream=logs)
    async with System(Config(), asyncio.Event(), sim=True, out=out) as system:
        assert system.users is not None
        passwords = [system.users.password(user) for user in SERVICE_USERS]
        url = system.bus.url
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0)
        await asyncio.wait_for(system.executors_ready.wait(), 30)

        strategy = await Conn().open(url, "strategy", system.nats_settings("strategy"))
        await place_and_cancel(OrderClient(strategy.nc), out, "binance")
        assert ": accepted venue order" in out.getvalue() and ": canceled venue order" in out.getvalue()
        assert not strategy.errors, strategy.errors

        await strategy.nc.subscribe("vault.>")
        await asyncio.wait_for(strategy.violation.wait(), 5)
        strategy.violation.clear()
        with pytest.raises(Exception):
            await strategy.nc.request("vault.credentials.get", b"{}", timeout=1)
        await asyncio.wait_for(strategy.violation.wait(), 5)
        strategy.violation.clear()
        await strategy.nc.subscribe("_INBOX.executor.>")
        await asyncio.wait_for(strategy.violation.wait(), 5)
        refused = [e.split('"')[1] for e in strategy.errors]  # nats-py lower-cases the server's message
        assert refused == ["vault.>", "vault.credentials.get", "_inbox.executor.>"], strategy.errors
        await strategy.nc.close()
    configure_logging("info", "json")
    assert not system.failed
    seen = out.getvalue() + logs.getvalue() + (tmp_path / ".exbus" / "nats.log").read_text() + repr(system.users)
    assert "credentials granted" in seen and "authentication error" in seen  # our logs and the server's
    assert not [pw for pw in passwords if pw in seen]
