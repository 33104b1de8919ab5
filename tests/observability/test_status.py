"""`exbus status` against a running `exbus up --sim --executors 2` (embedded nats-server
with deploy/nats/exbus.conf's per-service users, the simulator, vault, ingestor, two
executor replicas): every replica is listed once, with version, uptime, readiness and
its stats, plus the lag of ORDERS and ORDER_EVENTS; each service's probes answer."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
from collections import Counter
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from schemas import PlaceOrder
from services.config import Config
from services.executor.client import OrderClient
from services.observability.catalog import EXECUTOR
from services.observability.micro import package_version
from services.up import System

from .conftest import FREE_PORTS, eventually, get

pytestmark = pytest.mark.timeout(120)

OPERATOR_PASSWORD = "status-test-operator"


async def _ready(url: str) -> bool:
    status, _, _ = await get(f"{url}/readyz")
    return status == 200


async def _exbus(exbus_cmd: list[str], env: dict[str, str], cwd: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(*exbus_cmd, *args, env=env, cwd=cwd,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    return out.decode()


async def test_status_lists_every_replica_of_exbus_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      exbus_cmd: list[str], clean_env: dict[str, str]) -> None:
    monkeypatch.chdir(tmp_path)  # the embedded server's data and the dev vault keys go here
    config = Config(observability=msgspec.structs.replace(FREE_PORTS))
    config.nats.user, config.nats.password = "operator", OPERATOR_PASSWORD
    stop = asyncio.Event()
    async with System(config, stop, sim=True, executors=2, out=io.StringIO()) as system:
        probes = {service: obs.url for service, obs in system.observability.items()}
        assert set(probes) == {"ingestor", "executor", "vault"} and all(probes.values())
        for service, url in probes.items():
            await eventually(lambda url=url: _ready(url), timeout=60, what=f"{service} ready")
            status, _, body = await get(f"{url}/healthz")
            assert status == 200 and '"alive": true' in body
        # one order through the executors, so their stats count something (counters are the
        # test process's: other tests here counted before)
        counted = EXECUTOR.summary()
        order = PlaceOrder(command_id="status-cmd-1", venue="binance", account="demo", symbol="NKN-USDT",
                           client_order_id="status-ord-1", side="buy", order_type="limit",
                           quantity=Decimal("100"), price=Decimal("0.30"))
        event = await OrderClient(system.bus.nc).submit(order)
        assert event.status == "accepted"

        env = {**clean_env, "NATS_URL": system.bus.url, "EXBUS_NATS_USER": "operator",
               "EXBUS_NATS_PASSWORD": OPERATOR_PASSWORD}
        shown = json.loads(await _exbus(exbus_cmd, env, tmp_path, "status", "--json"))
        table = await _exbus(exbus_cmd, env, tmp_path, "status")

    replicas = shown["services"]
    assert Counter(r["service"] for r in replicas) == {"exbus-executor": 2, "exbus-ingestor": 1, "exbus-vault": 1}
    assert len({(r["service"], r["instance"]) for r in replicas}) == 4 and len({r["id"] for r in replicas}) == 4
    for r in replicas:
        assert r["version"] == package_version() and r["ready"] is True, r
        assert r["uptime_s"] is not None and r["uptime_s"] >= 0 and r["description"]
        assert r["metrics_port"] == probes[r["service"].removeprefix("exbus-")].rsplit(":", 1)[1]
    by_service = {r["service"]: r for r in replicas}
    executor = by_service["exbus-executor"]
    assert executor["requests"] == counted["requests"] + 1 and executor["errors"] == counted["errors"]
    outcomes = executor["detail"]["outcomes"]
    assert outcomes == {**counted["outcomes"], "accepted": counted["outcomes"].get("accepted", 0) + 1}
    assert executor["detail"]["process_replicas"] == 2
    assert by_service["exbus-vault"]["detail"]["grants"] >= 1  # the executors' binance credentials
    ingestor = by_service["exbus-ingestor"]
    assert ingestor["requests"] > 0 and "binance" in ingestor["detail"]["subscribed"]
    streams = {s["stream"]: s for s in shown["streams"]}
    assert streams["ORDERS"]["consumer"] == "executors" and streams["ORDERS"]["pending"] == 0
    assert streams["ORDER_EVENTS"]["messages"] >= 1 and streams["ORDER_EVENTS"]["pending"] is not None

    lines = table.splitlines()
    assert lines[0].split()[:8] == ["SERVICE", "INSTANCE", "VERSION", "UPTIME", "READY", "REQUESTS", "ERRORS", "LAG"]
    rows = [line.split() for line in lines[1:]]
    assert Counter(row[0] for row in rows if row[0].startswith("exbus-")) == {
        "exbus-executor": 2, "exbus-ingestor": 1, "exbus-vault": 1}
    assert all(row[4] == "yes" for row in rows if row[0].startswith("exbus-"))
    assert any(row[:4] == ["stream", "ORDERS", "consumer", "executors"] for row in rows)
    assert any(row[:2] == ["stream", "ORDER_EVENTS"] for row in rows)
