"""The exbus command on a real nats-server: tail decodes what flows, demo runs and stops
cleanly leaving no server behind, schema export writes the contract."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import nats
import pytest

import schemas
from schemas import OrderEvent, PlaceOrder, Trade, subjects
from services.bus.tail import describe, tail

ROOT = Path(__file__).resolve().parents[2]


async def test_tail_decodes_each_message_by_its_subject(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    out = io.StringIO()
    stop = asyncio.Event()
    task = asyncio.create_task(tail(nc, ">", count=3, out=out, stop=stop))
    await asyncio.sleep(0)  # let tail subscribe
    while not nc._subs:  # the subscription exists once tail has flushed it
        await asyncio.sleep(0.01)
    trade = Trade(venue="binance", symbol="BTC-USDT", ts_event=1, ts_recv=2, trade_id="7", price=Decimal("30000.5"), quantity=Decimal("0.25"), side="buy")
    await nc.publish(subjects.md("binance", "trade", "BTC-USDT"), schemas.encode(trade))
    ev = OrderEvent(event_id="e1", venue="upbit", account="main", symbol="BTC-KRW", client_order_id="c1", status="accepted", ts_event=1, ts=1)
    await nc.publish(subjects.orders_event("upbit", "main", "c1"), schemas.encode(ev))
    await nc.publish(subjects.md("okx", "trade", "BTC-USDT"), b"not json")
    assert await asyncio.wait_for(task, 10) == 3
    await nc.close()
    lines = out.getvalue().splitlines()
    subject, body = lines[0].split(" ", 1)
    assert subject == "md.binance.trade.BTC-USDT"
    assert json.loads(body)["price"] == "30000.5"
    assert json.loads(lines[1].split(" ", 1)[1])["status"] == "accepted"
    assert "undecodable" in json.loads(lines[2].split(" ", 1)[1])


def test_tail_redacts_tokens_in_vault_requests() -> None:
    req = schemas.CredentialRequest(request_id="r", venue="kraken", account="main", service_id="executor",
                                    token="eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJleGVjdXRvciJ9.c2ln", ephemeral_public_key=b"k" * 32)
    shown = describe("vault.credentials.get", schemas.encode(req))
    assert shown["token"] == "<redacted>" and shown["venue"] == "kraken"


def test_tail_names_the_broken_field() -> None:
    bad = json.loads(schemas.encode(PlaceOrder(command_id="c", venue="binance", account="a", symbol="BTC-USDT", client_order_id="c",
                                               side="buy", order_type="limit", quantity=Decimal(1), price=Decimal(1))))
    bad["symbol"] = "btc"
    shown = describe("orders.submit.binance.a", json.dumps(bad).encode())
    assert "$.symbol" in shown["undecodable"]


def _nats_servers_of(root: Path) -> set[int]:
    """nats-server processes started for ``root`` (their working dir or arguments lie under it);
    other servers on a shared machine are not the test's business."""
    out = subprocess.run(["pgrep", "-x", "nats-server"], capture_output=True, text=True).stdout
    found = set()
    for pid in (int(p) for p in out.split()):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue  # exited meanwhile
        if cwd.startswith(str(root)) or str(root) in cmdline:
            found.add(pid)
    return found


def test_demo_runs_the_order_round_trip_and_exits_cleanly(tmp_path: Path, clean_env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "services.cli", "demo", "--seconds", "8"],
        cwd=tmp_path, env=clean_env, capture_output=True, text=True, timeout=90,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "embedded nats-server at nats://127.0.0.1:" in out
    # executors got the paper keys from the vault (dev master key, said loudly); no secret leaked
    assert "DEVELOPMENT master key" in out
    from services.simulator.config import sim_config

    paper = sim_config({})
    for account in (paper.binance.accounts[0], paper.upbit.accounts[0]):
        assert account.secret not in proc.stdout + proc.stderr
    # one order through ORDERS and the executors to the simulator, its duplicate dropped, its cancel
    assert "strategy: placed buy 100 NKN-USDT" in out and ": accepted venue order" in out
    assert "ORDERS dropped it as a duplicate=True" in out
    assert "strategy: canceled -> binance NKN-USDT" in out and ": canceled venue order" in out
    assert "WAVES-KRW" in out and ": filled venue order" in out
    assert "subject rates" in out and "orders.submit.binance.demo" in out
    # the ingestor publishes the market data of all nine venues (simulated or replayed)
    assert "market data a strategy subscribed to md.> receives (6 shown)" in out
    assert "replayed venues: kraken, okx, bitfinex, coinbase, korbit, coinone, bithumb" in out
    for venue in ("binance", "upbit", "kraken", "okx", "bitfinex", "coinbase", "korbit", "coinone", "bithumb"):
        assert f"md.{venue}." in out, f"no market data from {venue}"
    assert "stopped cleanly" in out
    assert (tmp_path / ".exbus" / "nats" / "jetstream").is_dir()
    assert not _nats_servers_of(tmp_path), "the demo left a nats-server behind"


def test_nats_command_prints_url_and_stops_on_sigterm(tmp_path: Path, clean_env: dict[str, str]) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "nats"], cwd=tmp_path, env=clean_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    assert url.startswith("nats://127.0.0.1:")
    proc.terminate()
    assert proc.wait(timeout=30) == 0
    assert not _nats_servers_of(tmp_path)


def test_tail_command_without_a_url_says_what_to_do(clean_env: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "services.cli", "tail", "md.>"], cwd=tmp_path, env=clean_env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and "NATS_URL" in proc.stderr


def test_schema_export_writes_every_file(tmp_path: Path, clean_env: dict[str, str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "services.cli", "schema", "export", "--out", str(tmp_path)],
                          env=clean_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    names = {p.name for p in tmp_path.iterdir()}
    assert "asyncapi.json" in names and "OrderCommand.schema.json" in names
    assert names == {p.name for p in (ROOT / "schemas" / "generated").iterdir()}


def test_up_prints_the_url_serves_and_stops_on_sigint(tmp_path: Path, clean_env: dict[str, str]) -> None:
    import signal

    # the embedded server has deploy/nats/exbus.conf's users; the configured one keeps its password
    env = {**clean_env, "EXBUS_NATS_USER": "operator", "EXBUS_NATS_PASSWORD": "up-test-operator"}
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "up"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    while line and not line.startswith("NATS_URL="):
        line = proc.stdout.readline().strip()
    url = line.removeprefix("NATS_URL=")
    assert url.startswith("nats://127.0.0.1:")

    async def streams_exist() -> list[str]:
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0)
        nc = await nats.connect(url, user="operator", password="up-test-operator")
        names = [s.config.name for s in await nc.jetstream().streams_info()]
        await nc.close()
        return names

    assert "ORDERS" in asyncio.run(streams_exist())
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    assert not _nats_servers_of(tmp_path)
