"""A 3-node nats-server JetStream cluster on loopback with the users and permissions of
deploy/nats/exbus.conf.

By default the nodes run plain TCP with plaintext passwords from the environment and a
route password (a config per node written beside the data, including exbus.conf). With
``certs`` (``dev_certs(dir)``, exbus nats-certs) they run deploy/nats/cluster/node-{1,2,3}.conf
themselves: a copy of deploy/nats with the users' bcrypt hashes in secrets/nats-users.conf
(as `exbus nats-users` writes them) and the certificate paths pointed at ``certs``, so
clients and routes use verified TLS (``cluster.client_tls()``, ``cluster.settings(user)``).

Client, route and monitoring addresses are moved to free loopback ports by command-line
flags (which nats-server applies over the file); the ports are fixed per node, so a node
killed with SIGKILL and restarted comes back at the same URL with its data directory.

    async with NatsCluster(tmp_path, passwords) as cluster:
        cluster.url            # "nats://127.0.0.1:a,nats://127.0.0.1:b,..." for every client
    async with NatsCluster(tmp_path, certs=dev_certs(certs_dir)) as cluster:
        cluster.url            # "tls://127.0.0.1:a,..."
        cluster.kill(1); await cluster.restart(1)
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import ssl
from pathlib import Path
from typing import Any, Mapping

import aiohttp
import nats

from services.bus.embedded import PERMISSIONS_CONF, SERVICE_USERS, EmbeddedNats
from services.bus.security import USERS_CONF, hash_password, render_users_conf, template_users, write_dev_certs
from services.config import NatsSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_NATS = ROOT / "deploy" / "nats"
CLUSTER_CONFS = [DEPLOY_NATS / "cluster" / f"node-{i}.conf" for i in (1, 2, 3)]
CERTS_IN_CONFIG = "/etc/nats/certs/"
"""Where deploy/nats/cluster/cluster.conf reads its certificates."""
TEST_BCRYPT_COST = 4
"""bcrypt cost of the test cluster's hashes (the minimum: each client connect checks one)."""
NODE_NAMES = ("nats-1", "nats-2", "nats-3")
"""server_name of each node config."""
CLUSTER_USERS = (*SERVICE_USERS, "route")
"""Users whose passwords the node configs read from EXBUS_NATS_<USER>_PASSWORD."""


def free_ports(n: int) -> list[int]:
    """``n`` distinct loopback ports free right now (bound together, then released)."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


PLAIN_NODE_CONF = """\
# written by tests/ops/cluster.py: a node without TLS, passwords from the environment
server_name: {name}
port: 4222
http_port: 8222
jetstream {{
  max_file_store: 10GB
}}
cluster {{
  name: exbus
  listen: 0.0.0.0:6222
  authorization {{
    user: route
    password: $EXBUS_NATS_ROUTE_PASSWORD
    timeout: 2
  }}
}}
include "{exbus_conf}"
"""


def dev_certs(directory: Path) -> dict[str, Path]:
    """Development CA, server/route and client certificates (exbus nats-certs) in ``directory``."""
    return write_dev_certs(directory)


def secure_nats_dir(target: Path, certs: Mapping[str, Path], passwords: Mapping[str, str],
                    bcrypt_cost: int = TEST_BCRYPT_COST) -> Path:
    """A copy of deploy/nats at ``target``: secrets/nats-users.conf with the hashes of
    ``passwords`` (every user of exbus.conf) and the cluster's certificate paths at ``certs``."""
    shutil.copytree(DEPLOY_NATS, target, ignore=shutil.ignore_patterns("secrets", "certs"))
    template = (target / PERMISSIONS_CONF.name).read_text()
    hashes = {u: hash_password(passwords[u], bcrypt_cost) for u in template_users(template)}
    (target / "secrets").mkdir()
    (target / "secrets" / USERS_CONF).write_text(render_users_conf(template, hashes))
    cluster_conf = target / "cluster" / "cluster.conf"
    text = cluster_conf.read_text()
    assert CERTS_IN_CONFIG in text, f"{cluster_conf.name} no longer reads {CERTS_IN_CONFIG}"
    cluster_conf.write_text(text.replace(CERTS_IN_CONFIG, f"{certs['ca'].parent}/"))
    return target


def cluster_passwords() -> dict[str, str]:
    """A random password per user of the configs (letters first: never read as a number)."""
    return {user: f"pw-{secrets.token_hex(12)}" for user in CLUSTER_USERS}


async def wait_for_jetstream(js: Any, timeout_s: float = 60.0) -> None:
    """Until the cluster has elected its meta leader and answers JetStream requests."""
    async with asyncio.timeout(timeout_s):
        while True:
            try:
                await js.account_info()
                return
            except (nats.js.errors.Error, nats.errors.TimeoutError, nats.errors.NoRespondersError):
                await asyncio.sleep(0.2)


async def move_leader(nc: Any, node: str, stream: str, consumer: str | None = None, timeout_s: float = 60.0) -> None:
    """Make ``node`` the raft leader of ``stream`` (or of its ``consumer``): a leader
    stepdown with a preferred placement, repeated until the cluster reports it."""
    js = nc.jetstream()
    api = (f"$JS.API.CONSUMER.LEADER.STEPDOWN.{stream}.{consumer}" if consumer
           else f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}")

    async def leader() -> str | None:
        info = await (js.consumer_info(stream, consumer) if consumer else js.stream_info(stream))
        return info.cluster.leader

    async with asyncio.timeout(timeout_s):
        while (current := await leader()) != node:
            if current is not None:
                await nc.request(api, json.dumps({"placement": {"preferred": node}}).encode(), timeout=10)
            await asyncio.sleep(0.5)


class NatsCluster:
    """nats-1..3 as three nats-server processes with JetStream and cluster routes."""

    def __init__(self, workdir: Path, passwords: Mapping[str, str] | None = None, *,
                 certs: Mapping[str, Path] | None = None) -> None:
        self.passwords = dict(passwords) if passwords is not None else cluster_passwords()
        self.certs = dict(certs) if certs is not None else None
        ports = free_ports(9)
        client_ports, route_ports, self.http_ports = ports[0:3], ports[3:6], ports[6:9]
        routes = ",".join(f"nats-route://127.0.0.1:{p}" for p in route_ports)
        workdir.mkdir(parents=True, exist_ok=True)
        if self.certs is None:
            # quoted: nats-server parses a variable's value as config text
            env = {f"EXBUS_NATS_{u.upper()}_PASSWORD": json.dumps(pw) for u, pw in self.passwords.items()}
            exbus_conf = os.path.relpath(PERMISSIONS_CONF, workdir)
            confs = []
            for i, name in enumerate(NODE_NAMES, start=1):
                conf = workdir / f"node-{i}.conf"
                conf.write_text(PLAIN_NODE_CONF.format(name=name, exbus_conf=exbus_conf))
                confs.append(conf)
        else:
            env = {}
            template = PERMISSIONS_CONF.read_text()
            for user in template_users(template):
                self.passwords.setdefault(user, f"pw-{secrets.token_hex(12)}")
            nats_dir = secure_nats_dir(workdir / "deploy-nats", self.certs, self.passwords)
            confs = [nats_dir / "cluster" / f"node-{i}.conf" for i in (1, 2, 3)]
        self.nodes = [
            EmbeddedNats(workdir / f"node-{i}", port=client_port, config_file=conf, env=env,
                         extra_args=["--cluster", f"nats://127.0.0.1:{route_port}", "--routes", routes,
                                     "-m", str(http_port)])
            for i, (conf, client_port, route_port, http_port)
            in enumerate(zip(confs, client_ports, route_ports, self.http_ports), start=1)
        ]

    @property
    def urls(self) -> list[str]:
        """Client URL of every node (fixed across restarts); tls:// with ``certs``."""
        scheme = "nats" if self.certs is None else "tls"
        return [f"{scheme}://127.0.0.1:{node.port}" for node in self.nodes]

    def client_tls(self, *, client_cert: bool = True) -> ssl.SSLContext:
        """A context that verifies the nodes against the CA, presenting the client certificate."""
        assert self.certs is not None, "a cluster without certs has no TLS"
        ctx = ssl.create_default_context(cafile=str(self.certs["ca"]))
        if client_cert:
            ctx.load_cert_chain(str(self.certs["client"]), str(self.certs["client_key"]))
        return ctx

    def settings(self, user: str) -> NatsSettings:
        """The [nats] settings of a service connecting as ``user`` (TLS files with ``certs``)."""
        tls = {} if self.certs is None else dict(tls_ca=str(self.certs["ca"]), tls_cert=str(self.certs["client"]),
                                                  tls_key=str(self.certs["client_key"]))
        return NatsSettings(url=self.url, user=user, password=self.passwords[user], **tls)

    @property
    def url(self) -> str:
        """Every node's URL, comma separated (the form of NATS_URL / nats.url)."""
        return ",".join(self.urls)

    def index(self, server_name: str) -> int:
        """Index of the node called ``server_name`` (nats-1 -> 0)."""
        return NODE_NAMES.index(server_name)

    def alive(self, i: int) -> bool:
        process = self.nodes[i].process
        return process is not None and process.poll() is None

    async def start(self) -> "NatsCluster":
        for node in self.nodes:
            await node.start()
        return self

    async def stop(self) -> None:
        for node in self.nodes:
            await node.stop()

    def kill(self, i: int) -> None:
        """SIGKILL node ``i`` (no shutdown, no goodbye to its peers or clients)."""
        self.nodes[i].kill()

    async def restart(self, i: int) -> None:
        """Start node ``i`` again on its ports and data directory."""
        await self.nodes[i].start()

    async def connections(self, i: int) -> list[dict[str, Any]]:
        """Client connections of node ``i`` (its /connz monitoring endpoint)."""
        url = f"http://127.0.0.1:{self.http_ports[i]}/connz?limit=10000"
        async with aiohttp.ClientSession() as http:
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as r:
                r.raise_for_status()
                return (await r.json()).get("connections") or []

    async def clients_by_node(self) -> dict[str, list[str]]:
        """Connection names per live node, e.g. {"nats-1": ["exbus-executor", ...]}."""
        out: dict[str, list[str]] = {}
        for i, name in enumerate(NODE_NAMES):
            if self.alive(i):
                out[name] = [c.get("name", "") for c in await self.connections(i)]
        return out

    async def __aenter__(self) -> "NatsCluster":
        try:
            return await self.start()
        except BaseException:
            await self.stop()
            raise

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __repr__(self) -> str:
        return f"NatsCluster(urls={self.urls}, passwords=<redacted>)"
