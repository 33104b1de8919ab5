"""The 3-node cluster of deploy/nats/cluster with TLS and hashed credentials (issue 16):
certificates from `exbus nats-certs` (services.bus.security.write_dev_certs), users and
permissions of exbus.conf with bcrypt-hashed passwords in secrets/nats-users.conf, as
`exbus nats-users` writes them; the node configs are deploy's own (tests/ops/cluster.py
points their certificate paths at the generated files).

Shows: a service user with its password and a CA-verified TLS connection (through
services.bus.connect, as every service connects) publishes, subscribes and uses
JetStream at 3 replicas; a wrong password, a client without a certificate and a client
without TLS are refused; routes are TLS with verification both ways, and the cluster forms.
One cluster for the module (JetStream's first election is the slow part).
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import nats
import pytest
import pytest_asyncio

from services.bus.connect import connect
from services.bus.streams import bucket_configs, ensure_streams, stream_configs
from services.config import StreamSettings

from .cluster import NODE_NAMES, NatsCluster, dev_certs, wait_for_jetstream

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return dev_certs(tmp_path_factory.mktemp("certs"))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory, certs) -> AsyncIterator[NatsCluster]:
    async with NatsCluster(tmp_path_factory.mktemp("tls-cluster"), certs=certs) as c:
        yield c


async def monitor(cluster: NatsCluster, i: int, endpoint: str) -> dict[str, Any]:
    url = f"http://127.0.0.1:{cluster.http_ports[i]}/{endpoint}"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as r:
            r.raise_for_status()
            return await r.json()


async def routed(cluster: NatsCluster, i: int, subject: str) -> None:
    """Until node ``i`` has a subscription to ``subject`` from another node, over a route."""
    async with asyncio.timeout(15):
        while not any(subject in (r.get("subscriptions_list") or [])
                      for r in (await monitor(cluster, i, "routez?subs=1"))["routes"]):
            await asyncio.sleep(0.1)


async def connect_error(url: str, **options: Any) -> Exception:
    """The error of one connection attempt that must fail (no reconnects)."""
    try:
        nc = await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=5, **options)
    except Exception as e:  # noqa: BLE001 - the refusal is what the test looks at
        return e
    await nc.close()
    raise AssertionError(f"connected to {url} with {sorted(options)}: should have been refused")


async def test_service_users_over_verified_tls_publish_subscribe_and_use_jetstream(cluster) -> None:
    operator = await connect(cluster.settings("operator"), name="exbus-operator")
    executor = await connect(cluster.settings("executor"), url=cluster.urls[2], name="exbus-executor")
    strategy = await connect(cluster.settings("strategy"), url=cluster.urls[0], name="exbus-strategy")
    try:
        js = operator.jetstream()
        await wait_for_jetstream(js)
        settings = StreamSettings(replicas=3, md_capture=True)
        await ensure_streams(js, settings)
        names = [c.name for c in stream_configs(settings)] + [f"KV_{b.bucket}" for b in bucket_configs(settings)]
        replicas = {name: (await js.stream_info(name)).config.num_replicas for name in names}
        assert len(replicas) == 9 and set(replicas.values()) == {3}
        info = await js.stream_info("ORDERS")
        assert info.cluster.name == "exbus"
        assert {info.cluster.leader, *(p.name for p in info.cluster.replicas)} == set(NODE_NAMES)

        # core pub/sub across the TLS routes: the executor on node 3, the strategy on node 1
        events = await strategy.subscribe("orders.events.>")
        await strategy.flush()
        await routed(cluster, 2, "orders.events.>")
        # JetStream through node 3, with exbus.conf's permissions: the executor stores an order event
        ack = await executor.jetstream().publish("orders.events.binance.main.c1", b"{}")
        assert ack.stream == "ORDER_EVENTS"
        msg = await events.next_msg(timeout=5)
        assert msg.subject == "orders.events.binance.main.c1"

        # every client connection is TLS, as the user it says
        for i, name in ((0, "exbus-strategy"), (2, "exbus-executor")):
            conns = (await monitor(cluster, i, "connz?auth=true"))["connections"]
            (conn,) = [c for c in conns if c.get("name") == name]
            assert conn.get("tls_version"), conn
            assert conn.get("authorized_user") == name.removeprefix("exbus-")
    finally:
        for nc in (strategy, executor, operator):
            await nc.close()


async def test_wrong_password_is_refused(cluster) -> None:
    error = await connect_error(cluster.urls[0], user="executor", password=cluster.passwords["executor"] + "x",
                                tls=cluster.client_tls(), tls_handshake_first=True)
    assert "Authorization Violation" in str(error)
    # another user's password is wrong too
    error = await connect_error(cluster.urls[1], user="vault", password=cluster.passwords["executor"],
                                tls=cluster.client_tls(), tls_handshake_first=True)
    assert "Authorization Violation" in str(error)


async def test_client_without_certificate_is_refused(cluster) -> None:
    right = dict(user="executor", password=cluster.passwords["executor"])
    # TLS that verifies the server, but no client certificate: the server ends the handshake
    error = await connect_error(cluster.urls[0], tls=cluster.client_tls(client_cert=False),
                                tls_handshake_first=True, **right)
    assert isinstance(error, (ssl.SSLError, ConnectionError, nats.errors.Error, OSError)), repr(error)
    log = Path(cluster.nodes[0].log_file).read_text()
    assert "client didn't provide a certificate" in log
    # the same over nats:// (TLS upgrade after INFO)
    plain_url = cluster.urls[0].replace("tls://", "nats://")
    await connect_error(plain_url, tls=cluster.client_tls(client_cert=False), **right)
    # and a client that trusts a different CA refuses the server
    error = await connect_error(plain_url, tls=ssl.create_default_context(), **right)
    assert isinstance(error, ssl.SSLCertVerificationError), repr(error)


async def test_routes_are_verified_tls_and_the_cluster_forms(cluster) -> None:
    for i, name in enumerate(NODE_NAMES):
        routes = (await monitor(cluster, i, "routez"))["routes"]
        assert {r["remote_name"] for r in routes} == set(NODE_NAMES) - {name}
        varz = await monitor(cluster, i, "varz")
        assert varz["cluster"]["tls_required"] is True and varz["cluster"]["tls_verify"] is True, varz["cluster"]
        assert varz["tls_required"] is True and varz["tls_verify"] is True
    # the route port starts with TLS (no INFO in plaintext): a route speaking plaintext is dropped
    node = cluster.nodes[0]
    route_port = int(node.extra_args[node.extra_args.index("--cluster") + 1].rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", route_port)
    try:
        writer.write(b'CONNECT {"verbose":false,"name":"rogue"}\r\nPING\r\n')
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 15)
        assert b"INFO" not in answer and b"PONG" not in answer
    finally:
        writer.close()
    # and a TLS route without a certificate of the CA is refused in the handshake
    with pytest.raises((ssl.SSLError, ConnectionError)):
        reader, writer = await asyncio.open_connection("127.0.0.1", route_port, ssl=cluster.client_tls(client_cert=False),
                                                       server_hostname="127.0.0.1")
        try:
            writer.write(b"PING\r\n")
            await writer.drain()
            if not await asyncio.wait_for(reader.read(), 15):
                raise ConnectionResetError("closed by the server")
        finally:
            writer.close()
    route_errors = [line for line in Path(node.log_file).read_text().splitlines() if "TLS route handshake error" in line]
    assert len(route_errors) >= 2 and any("didn't provide a certificate" in line for line in route_errors)


async def test_an_exbus_process_configured_with_the_ca_connects_over_tls(cluster, tmp_path: Path) -> None:
    """`exbus tail` as a service runs: its [nats] settings from the environment name the
    CA and the client certificate, and it reads what a service publishes through another node."""
    settings = cluster.settings("operator")
    env = {**os.environ, "EXBUS_NATS_URL": settings.url, "EXBUS_NATS_USER": settings.user,
           "EXBUS_NATS_PASSWORD": settings.password, "EXBUS_NATS_TLS_CA": settings.tls_ca,
           "EXBUS_NATS_TLS_CERT": settings.tls_cert, "EXBUS_NATS_TLS_KEY": settings.tls_key}
    env.pop("EXBUS_CONFIG", None)
    tail = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "tail", "orders.events.>", "--count", "1", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    executor = None
    try:
        async with asyncio.timeout(30):
            while True:  # until tail's connection is up (on whichever node) and TLS
                conns = [(i, c) for i in range(3) for c in (await monitor(cluster, i, "connz?subs=true"))["connections"]
                         if c.get("name") == "exbus-tail" and c.get("subscriptions_list")]
                if conns:
                    break
                await asyncio.sleep(0.2)
        (node, conn), = conns
        assert conn.get("tls_version")
        other = (node + 1) % 3
        executor = await connect(cluster.settings("executor"), url=cluster.urls[other], name="exbus-executor")
        await routed(cluster, other, "orders.events.>")
        await executor.publish("orders.events.binance.main.tail1", b'{"status": "accepted"}')
        await executor.flush()
        out, err = await asyncio.wait_for(tail.communicate(), 30)
        assert tail.returncode == 0, err.decode()[-2000:]
        assert b"orders.events.binance.main.tail1" in out
    finally:
        if tail.returncode is None:
            tail.kill()
            await tail.wait()
        if executor is not None:
            await executor.close()
