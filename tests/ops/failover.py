"""The cluster failover scenario, shared by tests/ops/test_cluster_failover.py (which
asserts what must hold) and bench/cluster_failover.py (which records the numbers).

A 3-node JetStream cluster (tests.ops.cluster) with every stream and bucket at 3
replicas; the venue simulator (limits lifted); executor processes and an `exbus replay`
ingestor process, each given all three node URLs. A strategy publishes IOC place
commands at a steady rate (Nats-Msg-Id = command id, re-published after any publish
error). The node holding the most service connections (ties: the ORDERS leader) is made
the leader of ORDERS, ORDER_EVENTS, the KV buckets orders and ratelimits and the
executors' consumer (leader stepdown with a preferred placement): after a quarter of
the commands it is killed with SIGKILL, the worst single-node loss, and restarted
ten seconds later.

The strategy and the observer are connected to the two surviving nodes only, so what
is measured is exbus's own recovery: the executors' and the ingestor's.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import nats

import schemas
from schemas import PlaceOrder, subjects
from services.bus.connect import connect
from services.bus.streams import KV_ORDERS, KV_RATELIMITS, ORDER_EVENTS, ORDERS, ensure_streams
from services.config import NatsSettings, StreamSettings
from services.executor.service import DURABLE

from ..executor.processes import (
    EXBUS, LIFTED_MARGIN, LIFTED_SIM_LIMITS, ROOT, ExecutorProcess, SimProcess, executor_env, process_env,
)
from .cluster import NODE_NAMES, NatsCluster, move_leader, wait_for_jetstream

RECORDING = ROOT.parent / "shared" / "data" / "recorded" / "KRAKEN.ws.50.0"
"""Kraken WS v1 book/trade/ticker traffic, 30 s as recorded (see its README)."""
EXECUTOR_CLIENT = "exbus-executor"
INGESTOR_CLIENT = "exbus-replay"
VENUE_LATENCY = '[[sim.faults]]\nkind = "latency"\nroute = "place"\nlatency_ms = 50\n'
"""Placements answered after 50 ms: orders are in flight when the node dies."""
LED_BY_VICTIM = (ORDERS, ORDER_EVENTS, f"KV_{KV_ORDERS}", f"KV_{KV_RATELIMITS}")
"""Streams whose leadership is moved to the node about to be killed (with the executors' consumer)."""
TERMINAL = {"accepted", "partially_filled", "filled", "canceled", "expired", "rejected", "failed"}


@dataclass
class Scenario:
    """What to run; the defaults take about a minute on a loaded 2-core machine."""

    commands: int = 300
    publish_per_s: float = 12.0
    executors: int = 3
    kill_after: float = 0.25
    """Share of the commands published before the kill."""
    outage_s: float = 10.0
    replay_speed: float = 0.6
    """Of the 30 s recording: ~50 s of data, enough to outlast the restart on a slow machine
    (the replay is stopped once every command has ended)."""
    deadline_s: float = 150.0
    """Generous bound for all commands to end after the last publish."""


@dataclass
class Run:
    """What one run observed (times are time.monotonic() of this process)."""

    scenario: Scenario
    commands: list[PlaceOrder]
    victim: str = ""
    leaders_on_victim: list[str] = field(default_factory=list)
    clients_before_kill: dict[str, list[str]] = field(default_factory=dict)
    published_at: dict[str, float] = field(default_factory=dict)
    """command id -> when the stream acknowledged it."""
    publish_retries: int = 0
    longest_publish_s: float = 0.0
    event_arrivals: list[tuple[float, str]] = field(default_factory=list)
    """(arrival, command id) of every event seen on orders.events.> by the observer."""
    md_arrivals: list[float] = field(default_factory=list)
    t_kill: float = 0.0
    t_restart: float = 0.0
    t_services_back: float | None = None
    """When every executor and the ingestor were connected to a live node again."""
    t_victim_current: float | None = None
    """When the restarted node was a current replica of ORDERS and ORDER_EVENTS again."""
    events: list[schemas.OrderEvent] = field(default_factory=list)
    """Everything in ORDER_EVENTS after the run."""
    ledger: dict[str, Any] = field(default_factory=dict)
    orders_left: int = -1
    consumer_pending: tuple[int, int] = (-1, -1)
    executor_codes: list[int | None] = field(default_factory=list)
    executor_logs: list[str] = field(default_factory=list)
    replay_code: int | None = None
    replay_summary: dict[str, Any] = field(default_factory=dict)
    replay_log: str = ""

    # --- derived -----------------------------------------------------------------------------
    def published_after_restart(self) -> set[str]:
        return {cid for cid, t in self.published_at.items() if t > self.t_restart}

    def numbers(self) -> dict[str, Any]:
        """The failover numbers (seconds relative to the kill)."""
        after_kill = sorted(t for t, _ in self.event_arrivals if t >= self.t_kill)
        last_before = max((t for t, _ in self.event_arrivals if t < self.t_kill), default=self.t_kill)
        gaps = [b - a for a, b in zip([last_before, *after_kill], after_kill)]
        during = {cid for t, cid in self.event_arrivals if self.t_kill <= t < self.t_restart}
        md_after = [t for t in self.md_arrivals if t >= self.t_kill]
        md_last_before = max((t for t in self.md_arrivals if t < self.t_kill), default=self.t_kill)
        md_gaps = [b - a for a, b in zip([md_last_before, *md_after], md_after)]

        def rel(t: float | None) -> float | None:
            return None if t is None else round(t - self.t_kill, 3)

        return {
            "commands": len(self.commands),
            "executors": self.scenario.executors,
            "publish_per_s": self.scenario.publish_per_s,
            "killed_node": self.victim,
            "leaders_on_killed_node": self.leaders_on_victim,
            "services_on_killed_node": sorted(self.clients_before_kill.get(self.victim, [])),
            "outage_s": round(self.t_restart - self.t_kill, 3),
            "time_without_progress_s": round(max(gaps, default=0.0), 3),
            "first_event_after_kill_s": rel(after_kill[0] if after_kill else None),
            "commands_processed_during_outage": len(during),
            "services_reconnected_s": rel(self.t_services_back),
            "restarted_node_current_s": rel(self.t_victim_current),
            "md_time_without_messages_s": round(max(md_gaps, default=0.0), 3),
            "md_messages_after_restart": sum(1 for t in self.md_arrivals if t > self.t_restart),
            "commands_published_after_restart": len(self.published_after_restart()),
            "strategy_publish_retries": self.publish_retries,
            "strategy_longest_publish_s": round(self.longest_publish_s, 3),
            "terminal_events": len(self.events),
            "events_per_s_from_kill": self.events_per_second(),
        }

    def events_per_second(self, before_s: int = 3) -> list[int]:
        """Events seen by the observer per second, from ``before_s`` before the kill to the last."""
        counts: Counter[int] = Counter(int((t - self.t_kill) // 1) for t, _ in self.event_arrivals)
        last = max(counts, default=0)
        return [counts.get(second, 0) for second in range(-before_s, last + 1)]

    def outcome(self) -> dict[str, int]:
        """Correctness counts, all zero on a good run: commands without a terminal event, commands
        with more than one, client order ids the venue did not get exactly once, venue refusals."""
        per_command = Counter(e.command_id for e in self.events)
        placed = Counter(o["client_order_id"] for o in self.ledger.get("orders", []))
        return {
            "lost": sum(1 for c in self.commands if per_command[c.command_id] == 0),
            "repeated_events": sum(1 for n in per_command.values() if n > 1),
            "not_placed_once": sum(1 for c in self.commands if placed[c.client_order_id] != 1),
            "venue_rejections": len(self.ledger.get("rejected", [])),
        }


def ioc_order(i: int) -> PlaceOrder:
    """A Binance IOC buy under the simulator's book: it ends at once (expired), untouched balances."""
    return PlaceOrder(command_id=f"failover-cmd-{i}", account="demo", client_order_id=f"failover-{i}",
                      venue="binance", symbol="NKN-USDT", side="buy", order_type="limit", time_in_force="ioc",
                      quantity=Decimal("100"), price=Decimal("0.30"))


def settings_for(cluster: NatsCluster, user: str) -> NatsSettings:
    return NatsSettings(user=user, password=cluster.passwords[user])


def client_env(cluster: NatsCluster, user: str) -> dict[str, str]:
    """What an exbus process needs to reach the cluster as ``user`` (TOML-quoted password)."""
    return {"NATS_URL": cluster.url, "EXBUS_NATS_USER": user,
            "EXBUS_NATS_PASSWORD": json.dumps(cluster.passwords[user])}


async def poll(check: Any, what: str, timeout_s: float, every_s: float = 0.25) -> None:
    """Until the async ``check()`` holds (cluster state has no event to wait on)."""
    async def loop() -> None:
        while not await check():
            await asyncio.sleep(every_s)
    try:
        await asyncio.wait_for(loop(), timeout_s)
    except asyncio.TimeoutError:
        raise AssertionError(f"{what} not reached within {timeout_s}s") from None


async def quiet(call: Any) -> Any:
    """``call()``, or None when the cluster cannot answer right now (it is failing over)."""
    try:
        return await call()
    except (nats.errors.Error, asyncio.TimeoutError, OSError):
        return None


async def read_stream(js: Any, stream: str, subject: str, timeout_s: float = 60.0) -> list[bytes]:
    """Every message in ``stream`` (an ordered consumer until it delivered them all)."""
    total = (await js.stream_info(stream)).state.messages
    got: list[bytes] = []
    done = asyncio.Event()

    async def on_msg(msg: Any) -> None:
        got.append(msg.data)
        if len(got) >= total:
            done.set()

    if total == 0:
        return []
    sub = await js.subscribe(subject, stream=stream, ordered_consumer=True, cb=on_msg)
    try:
        await asyncio.wait_for(done.wait(), timeout_s)
    finally:
        await sub.unsubscribe()
    return got


class ReplayProcess:
    """`exbus replay RECORDING --nats URL` as its own process (the ingestor's live code path)."""

    def __init__(self, workdir: Path, env: dict[str, str], speed: float) -> None:
        self.workdir = workdir
        self.env = env
        self.speed = speed
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.workdir / "replay.out", "wb") as out, open(self.workdir / "replay.log", "wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *EXBUS, "replay", str(RECORDING), "--speed", str(self.speed), "--nats", self.env["NATS_URL"],
                env=process_env(**self.env), stdout=out, stderr=log, cwd=ROOT)

    async def finish(self, timeout_s: float) -> tuple[int | None, dict[str, Any]]:
        """Stop the replay if it still runs (SIGTERM: it stops cleanly and prints its summary);
        exit code and summary."""
        if self.proc is None:
            return None, {}
        if self.proc.returncode is None:
            self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout_s)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        lines = (self.workdir / "replay.out").read_text().splitlines()
        return self.proc.returncode, (json.loads(lines[-1]) if lines else {})

    def log_tail(self, chars: int = 1500) -> str:
        path = self.workdir / "replay.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


async def leaders_on(js: Any, node: str) -> list[str]:
    """The streams (and the executors' consumer) whose raft leader is ``node``."""
    out = []
    for stream in LED_BY_VICTIM:
        if (await js.stream_info(stream)).cluster.leader == node:
            out.append(stream)
    if (await js.consumer_info(ORDERS, DURABLE)).cluster.leader == node:
        out.append(f"{ORDERS}/{DURABLE}")
    return out


def choose_victim(clients: dict[str, list[str]], orders_leader: str) -> str:
    """The node with the most exbus service connections; ties go to the ORDERS leader."""
    def score(node: str) -> tuple[int, bool]:
        names = clients.get(node, [])
        return sum(n in (EXECUTOR_CLIENT, INGESTOR_CLIENT) for n in names), node == orders_leader
    return max(NODE_NAMES, key=score)


def services_connected(clients: dict[str, list[str]], executors: int, ingestors: int = 1) -> bool:
    """At least this many executor and ingestor connections on the live nodes."""
    names = [n for node_names in clients.values() for n in node_names]
    return names.count(EXECUTOR_CLIENT) >= executors and names.count(INGESTOR_CLIENT) >= ingestors


async def run_failover(workdir: Path, scenario: Scenario | None = None) -> Run:
    """Run the scenario in ``workdir`` and return what it observed (asserting nothing but
    that each phase got done within its generous deadline)."""
    scenario = scenario or Scenario()
    run = Run(scenario, [ioc_order(i) for i in range(scenario.commands)])
    async with NatsCluster(workdir / "cluster") as cluster:
        admin = await connect(settings_for(cluster, "operator"), url=cluster.url, name="failover-admin")
        try:
            js = admin.jetstream()
            await wait_for_jetstream(js)
            await ensure_streams(js, StreamSettings(replicas=3))
            sim_config = "[sim]\nreplay = false\n" + LIFTED_SIM_LIMITS + VENUE_LATENCY
            async with SimProcess(workdir / "sim", sim_config) as sim:
                env = {**executor_env(cluster.url, sim.venue_urls, rate_limit_margin=LIFTED_MARGIN, ack_wait_s=8,
                                      concurrency=16),
                       **client_env(cluster, "executor"), "EXBUS_OBSERVABILITY_EXECUTOR_PORT": "0"}
                executors = [ExecutorProcess(f"executor-{i}", workdir / "executors", env)
                             for i in range(scenario.executors)]
                replay_env = {**client_env(cluster, "ingestor"), "EXBUS_LOG_LEVEL": "warning"}
                replay = ReplayProcess(workdir / "replay", replay_env, scenario.replay_speed)
                try:
                    for ex in executors:
                        await ex.start()
                    await _scenario(run, cluster, admin, replay)
                except AssertionError as e:
                    codes = [ex.proc and ex.proc.returncode for ex in executors]
                    e.add_note(f"executor exit codes (None: running): {codes}")
                    e.add_note("\n".join(f"--- {ex.name}\n{ex.log_tail()}" for ex in executors))
                    raise
                finally:
                    run.executor_codes = [await ex.stop() for ex in executors]
                    run.executor_logs = [ex.log_tail() for ex in executors]
                    run.replay_code, run.replay_summary = await replay.finish(60)
                    run.replay_log = replay.log_tail()
                run.ledger = await sim.ledger()
        finally:
            await admin.close()
    return run


async def _scenario(run: Run, cluster: NatsCluster, admin: Any, replay: ReplayProcess) -> None:
    scenario = run.scenario
    js = admin.jetstream()

    async def executors_consuming() -> bool:
        clients = await quiet(cluster.clients_by_node)
        consumer = await quiet(lambda: js.consumer_info(ORDERS, DURABLE))
        return bool(clients) and services_connected(clients, scenario.executors, ingestors=0) and consumer is not None

    async def ingestor_connected() -> bool:
        clients = await quiet(cluster.clients_by_node)
        return bool(clients) and services_connected(clients, scenario.executors)

    await poll(executors_consuming, "executors connected and consuming", 90)
    await replay.start()  # after the slow part of the start-up: its data must outlast the restart
    await poll(ingestor_connected, "ingestor connected", 60)
    run.clients_before_kill = await cluster.clients_by_node()
    orders_leader = (await js.stream_info(ORDERS)).cluster.leader
    run.victim = choose_victim(run.clients_before_kill, orders_leader)
    for stream in LED_BY_VICTIM:
        await move_leader(admin, run.victim, stream)
    await move_leader(admin, run.victim, ORDERS, DURABLE)
    run.leaders_on_victim = await leaders_on(js, run.victim)
    victim = cluster.index(run.victim)
    survivors = ",".join(u for i, u in enumerate(cluster.urls) if i != victim)

    observer = await connect(settings_for(cluster, "operator"), url=survivors, name="failover-observer")
    strategy = await connect(settings_for(cluster, "strategy"), url=survivors, name="failover-strategy")
    try:
        async def on_event(msg: Any) -> None:
            run.event_arrivals.append((time.monotonic(), schemas.decode(msg.data, schemas.OrderEvent).command_id))

        async def on_md(msg: Any) -> None:
            run.md_arrivals.append(time.monotonic())

        await observer.subscribe("orders.events.>", cb=on_event)
        await observer.subscribe("md.>", cb=on_md)
        await observer.flush()
        await _publish_through_failover(run, cluster, victim, strategy.jetstream(), js)

        async def all_done() -> bool:
            stream = await quiet(lambda: js.stream_info(ORDERS))
            consumer = await quiet(lambda: js.consumer_info(ORDERS, DURABLE))
            if stream is None or consumer is None:
                return False
            run.orders_left = stream.state.messages
            run.consumer_pending = (consumer.num_pending, consumer.num_ack_pending)
            return run.orders_left == 0 and run.consumer_pending == (0, 0)

        await poll(all_done, "every command acknowledged by an executor", scenario.deadline_s, every_s=0.5)
        run.events = [schemas.decode(data, schemas.OrderEvent)
                      for data in await read_stream(js, ORDER_EVENTS, "orders.events.>")]
    finally:
        await strategy.close()
        await observer.close()


async def _publish_through_failover(run: Run, cluster: NatsCluster, victim: int, js: Any, admin_js: Any) -> None:
    """Publish every command at the scenario's pace while the victim is killed and restarted;
    meanwhile watch when the services are connected again and the node has caught up."""
    scenario = run.scenario
    kill_at = int(len(run.commands) * scenario.kill_after)
    restarted = asyncio.Event()

    async def fail_over() -> None:
        cluster.kill(victim)
        run.t_kill = time.monotonic()
        watch = asyncio.create_task(watch_recovery())
        await asyncio.sleep(scenario.outage_s)
        await cluster.restart(victim)
        run.t_restart = time.monotonic()
        restarted.set()
        await watch

    async def watch_recovery() -> None:
        async def back() -> bool:
            clients = await quiet(cluster.clients_by_node)
            return bool(clients) and services_connected(clients, scenario.executors)

        await poll(back, "executors and ingestor reconnected", 120, every_s=0.1)
        run.t_services_back = time.monotonic()
        await restarted.wait()

        async def current() -> bool:
            for stream in (ORDERS, ORDER_EVENTS):
                info = await quiet(lambda: admin_js.stream_info(stream))
                if info is None:
                    return False
                peers = {p.name: p for p in info.cluster.replicas or []}
                node = NODE_NAMES[victim]
                if info.cluster.leader != node and not (node in peers and peers[node].current):
                    return False
            return True

        await poll(current, f"{NODE_NAMES[victim]} current again", 120, every_s=0.2)
        run.t_victim_current = time.monotonic()

    failover: asyncio.Task[None] | None = None
    period = 1.0 / scenario.publish_per_s
    next_at = time.monotonic()
    for i, command in enumerate(run.commands):
        if i == kill_at:
            failover = asyncio.create_task(fail_over())
        started = time.monotonic()
        while True:  # a strategy re-publishes until the stream acknowledges; Nats-Msg-Id drops repeats
            try:
                await js.publish(subjects.orders_submit(command.venue, command.account), schemas.encode(command),
                                 headers={"Nats-Msg-Id": command.command_id}, timeout=5)
                break
            except (nats.errors.Error, asyncio.TimeoutError):
                run.publish_retries += 1
                await asyncio.sleep(0.2)
        run.published_at[command.command_id] = time.monotonic()
        run.longest_publish_s = max(run.longest_publish_s, time.monotonic() - started)
        next_at += period
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    assert failover is not None
    await failover
