"""`exbus execute --identity FILE`: an executor process that takes its venue keys from
the vault over vault.credentials.get (no keys in its config or environment)."""

from __future__ import annotations

import asyncio
import subprocess
from decimal import Decimal

from services.config import Config
from services.executor.client import OrderClient
from services.vault.dev import DEV_SERVICE_ID, dev_bootstrap, simulator_paper_keys
from services.vault.service import run_vault
from .processes import EXBUS, executor_env, process_env


async def test_an_executor_process_places_with_keys_granted_by_the_vault(nats_url, bus, simulator, tmp_path) -> None:
    config = Config()
    identity = await dev_bootstrap(bus, config, root=tmp_path / "vault", out=open("/dev/null", "w"))
    stop = asyncio.Event()
    vault = asyncio.create_task(run_vault(bus, config, stop))
    env = process_env(**executor_env(nats_url, {"binance": simulator.binance_url, "upbit": simulator.upbit_url}),
                      EXBUS_EXECUTOR_SERVICE_ID=DEV_SERVICE_ID)
    proc = subprocess.Popen([*EXBUS, "execute", "--identity", str(tmp_path / "vault" / f"{identity.service_id}.key")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        event = await OrderClient(bus).place("binance", "demo", "NKN-USDT", "buy", "limit", quantity=Decimal("100"),
                                             price=Decimal("0.30"), timeout_s=60)
        assert event.status == "accepted", event
        orders = simulator.ledger_snapshot()["orders"]
        assert [o["client_order_id"] for o in orders] == [event.client_order_id]
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
        stop.set()
        await vault
    assert proc.returncode == 0, err
    for credentials in simulator_paper_keys().values():  # what the vault handed out never reaches a log
        assert credentials.secret not in out + err
