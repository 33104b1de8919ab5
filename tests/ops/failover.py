"""The cluster failover scenario, shared by tests/ops/test_cluster_failover.py (which
asserts what must hold) and bench/cluster_failover.py (which records the numbers).

A 3-node JetStream cluster (tests.ops.cluster) with every stream and bucket at 3
replicas; the venue simulator (limits lifted); executor processes and an `exbus replay`
ingestor process, each given all three node URLs. A strategy publishes IOC place
commands at a steady rate (Nats-Msg-Id = command id, re-published after any publish
error). The node holding the most service connections (ties: the ORDERS leader) is made
the leader of ORDERS, ORDER_EVENTS, the KV buckets orders and ratelimits and the
executors' consumer (leader stepdown with a preferred placement; the meta leader too
where it moves): after a quarter of the commands it is killed with SIGKILL, the worst
single-node loss, and restarted ``outage_s`` later; with ``kills`` > 1 the same is done
again, once the restarted node has caught up, to the node then leading.

Per kill the survivors' logs give the server's phases (route loss, each raft group's new
leader) beside exbus's (services reconnected, first publish acknowledged, first order
event): what the outage is made of.

The strategy and the observer are connected to the two surviving nodes only, so what
is measured is exbus's own recovery: the executors' and the ingestor's.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
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
PUBLISH_TIMEOUT_S = 1.0
"""The strategy's publish: one that went to the ORDERS leader as it died is sent again after this."""
PUBLISH_RETRY_S = 0.1
"""Pause before publishing again after no responders (ORDERS has no leader yet)."""
TERMINAL = {"accepted", "partially_filled", "filled", "canceled", "expired", "rejected", "failed"}


@dataclass
class Scenario:
    """What to run; the defaults (one kill) take about a minute on a loaded 2-core machine."""

    commands: int = 300
    """Commands published at least (more while kills are still to come)."""
    publish_per_s: float = 12.0
    executors: int = 3
    kills: int = 1
    """Kills of the leading node, one after another (each node restarted and caught up first)."""
    kill_after: float = 0.25
    """Share of the commands published before the first kill."""
    outage_s: float = 10.0
    """Seconds between a kill and the node's restart."""
    settle_s: float = 2.0
    """Pause after a restarted node caught up, before the next kill is prepared."""
    tail_s: float = 3.0
    """Publishing goes on this long after the last restart."""
    replay_speed: float = 0.6
    """Of the 30 s recording: ~50 s of data, enough to outlast the restart on a slow machine
    (the replay is stopped once every command has ended; a run with several kills plays it
    slower, see bench/cluster_failover.py). Once it has ended, no ingestor is waited for."""
    deadline_s: float = 150.0
    """Generous bound for all commands to end after the last publish."""
    ack_wait_s: float = 10.0
    """The executors' ack_wait (the default of [executor])."""


ELECTIONS = {**{name: f"new stream leader for '$G > {name}'" for name in LED_BY_VICTIM},
             f"{ORDERS}/{DURABLE}": f"new consumer leader for '$G > {ORDERS} > {DURABLE}'",
             "meta": "new metadata leader"}
"""What a surviving node logs when a raft group elected a leader (nats-server 2.15 log lines)."""


@dataclass
class Kill:
    """One kill of the leading node, and what followed (monotonic times of this process)."""

    victim: str
    leaders_on_victim: list[str]
    clients_before: dict[str, list[str]]
    meta_leader_was_victim: bool = False
    t_kill: float = 0.0
    wall_kill: float = 0.0
    t_restart: float = 0.0
    wall_restart: float = 0.0
    t_services_back: float | None = None
    """When every executor and the ingestor were connected to a live node again."""
    t_strategy_back: float | None = None
    """First publish the ORDERS stream acknowledged after the kill."""
    t_victim_current: float | None = None
    """When the restarted node was a current replica of ORDERS and ORDER_EVENTS again."""
    elections_s: dict[str, float | None] = field(default_factory=dict)
    """Group -> seconds from the kill to its new leader (survivors' logs)."""
    route_lost_s: float | None = None
    """Seconds from the kill to a survivor logging the closed route."""


@dataclass
class Run:
    """What one run observed (times are time.monotonic() of this process)."""

    scenario: Scenario
    commands: list[PlaceOrder] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)
    published_at: dict[str, float] = field(default_factory=dict)
    """command id -> when the stream acknowledged it."""
    published_wall: dict[str, float] = field(default_factory=dict)
    """The same as wall-clock time (to compare with the servers' stored times and logs)."""
    stored_at: dict[str, float] = field(default_factory=dict)
    """command id -> wall-clock time ORDER_EVENTS stored its (first) terminal event."""
    publish_retries: int = 0
    longest_publish_s: float = 0.0
    event_arrivals: list[tuple[float, str]] = field(default_factory=list)
    """(arrival, command id) of every event seen on orders.events.> by the observers: any
    publish, stored or not (the figures use the stored times)."""
    md_arrivals: list[float] = field(default_factory=list)
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
    def published_after_restart(self, kill: Kill) -> set[str]:
        return {cid for cid, t in self.published_at.items() if t > kill.t_restart}

    def kill_numbers(self, kill: Kill) -> dict[str, Any]:
        """One kill's figures (seconds from the kill, from the times ORDER_EVENTS stored each
        command's event). ``outage_s``: the longest time without any terminal order event,
        from the last one before the kill; ``first_new_order_s``: the first event of a command
        published after the kill (a strategy's order flowing end to end again)."""
        window_end = min([k.wall_kill for k in self.kills if k.wall_kill > kill.wall_kill] + [float("inf")])
        stored = sorted(self.stored_at.values())
        before = [t for t in stored if t < kill.wall_kill]
        after = [t for t in stored if kill.wall_kill <= t < window_end]
        gaps = [b - a for a, b in zip([before[-1] if before else kill.wall_kill, *after], after)]
        new = [self.stored_at[cid] for cid, t in self.published_wall.items()
               if t >= kill.wall_kill and cid in self.stored_at and self.stored_at[cid] < window_end]
        mono_end = min([k.t_kill for k in self.kills if k.t_kill > kill.t_kill] + [float("inf")])
        md_before = [t for t in self.md_arrivals if t < kill.t_kill]
        md_after = [t for t in self.md_arrivals if kill.t_kill <= t < mono_end]
        md_gaps = [b - a for a, b in zip([md_before[-1] if md_before else kill.t_kill, *md_after], md_after)]

        def rel(t: float | None) -> float | None:
            return None if t is None else round(t - kill.t_kill, 3)

        def rel_wall(t: float | None) -> float | None:
            return None if t is None else round(t - kill.wall_kill, 3)

        order_path = [v for k, v in kill.elections_s.items() if k != "meta" and v is not None]
        outage = max(gaps, default=0.0)
        back_at = next((b for a, b in zip([before[-1] if before else kill.wall_kill, *after], after)
                        if b - a == outage), None)
        return {
            "killed_node": kill.victim,
            "leaders_on_killed_node": kill.leaders_on_victim + (["meta"] if kill.meta_leader_was_victim else []),
            "services_on_killed_node": sorted(kill.clients_before.get(kill.victim, [])),
            "outage_s": round(outage, 3),
            "orders_flow_again_s": rel_wall(back_at),
            "first_new_order_s": rel_wall(min(new) if new else None),
            "phases_s": {
                "route_lost": kill.route_lost_s,
                "elections": kill.elections_s,
                "last_order_path_election": max(order_path) if order_path else None,
                "services_reconnected": rel(kill.t_services_back),
                "strategy_publish_acked": rel(kill.t_strategy_back),
                "orders_flow_after_last_election": (round(back_at - kill.wall_kill - max(order_path), 3)
                                                    if order_path and back_at is not None else None),
            },
            "node_down_s": round(kill.t_restart - kill.t_kill, 3),
            "commands_ended_while_down": sum(1 for t in stored if kill.wall_kill <= t < kill.wall_restart),
            "restarted_node_current_s": rel(kill.t_victim_current),
            "md_time_without_messages_s": round(max(md_gaps, default=0.0), 3),
        }

    def command_latencies(self) -> list[float]:
        """Publish acknowledged -> terminal event stored, per command."""
        return sorted(self.stored_at[cid] - t for cid, t in self.published_wall.items() if cid in self.stored_at)

    def numbers(self) -> dict[str, Any]:
        """The failover numbers: per kill, then p50 and worst over the kills."""
        per_kill = [self.kill_numbers(k) for k in self.kills]

        def p50(values: list[float]) -> float | None:
            return round(statistics.median(values), 3) if values else None

        def pick(name: str) -> list[float]:
            return [k[name] for k in per_kill if k[name] is not None]

        def phase(name: str) -> list[float]:
            return [k["phases_s"][name] for k in per_kill if k["phases_s"][name] is not None]

        latencies = self.command_latencies()
        return {
            "commands": len(self.commands),
            "executors": self.scenario.executors,
            "publish_per_s": self.scenario.publish_per_s,
            "ack_wait_s": self.scenario.ack_wait_s,
            "kills": len(self.kills),
            "outage_p50_s": p50(pick("outage_s")),
            "outage_worst_s": max(pick("outage_s"), default=None),
            "first_new_order_p50_s": p50(pick("first_new_order_s")),
            "first_new_order_worst_s": max(pick("first_new_order_s"), default=None),
            "last_order_path_election_p50_s": p50(phase("last_order_path_election")),
            "last_order_path_election_worst_s": max(phase("last_order_path_election"), default=None),
            "orders_flow_after_last_election_p50_s": p50(phase("orders_flow_after_last_election")),
            "orders_flow_after_last_election_worst_s": max(phase("orders_flow_after_last_election"), default=None),
            "command_latency_p50_s": p50(latencies),
            "command_latency_worst_s": round(latencies[-1], 3) if latencies else None,
            "commands_over_ack_wait": sum(1 for v in latencies if v >= self.scenario.ack_wait_s),
            "strategy_publish_retries": self.publish_retries,
            "strategy_longest_publish_s": round(self.longest_publish_s, 3),
            "terminal_events": len(self.events),
            "per_kill": per_kill,
            "events_per_s_from_first_kill": self.events_per_second(),
        }

    def events_per_second(self, before_s: int = 3) -> list[int]:
        """Commands ended (event stored) per second, from ``before_s`` before the first kill."""
        t0 = self.kills[0].wall_kill if self.kills else 0.0
        counts: Counter[int] = Counter(int((t - t0) // 1) for t in self.stored_at.values())
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


async def read_stream(js: Any, stream: str, subject: str, timeout_s: float = 60.0) -> list[tuple[bytes, float]]:
    """Every message in ``stream`` with the wall-clock time it was stored (an ordered
    consumer until it delivered them all)."""
    total = (await js.stream_info(stream)).state.messages
    got: list[tuple[bytes, float]] = []
    done = asyncio.Event()

    async def on_msg(msg: Any) -> None:
        got.append((msg.data, msg.metadata.timestamp.timestamp()))
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

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

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


LOG_LINE = re.compile(r"^\[\d+\] (\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d+) \[\w+\] (.*)$")


def server_log_events(path: Path, since_wall: float, until_wall: float) -> list[tuple[float, str]]:
    """(wall time, text) of a node's log lines in [since, until) (nats-server logs local time)."""
    out = []
    if not path.exists():
        return out
    for line in path.read_text(errors="replace").splitlines():
        m = LOG_LINE.match(line)
        if not m:
            continue
        wall = datetime.strptime(m.group(1), "%Y/%m/%d %H:%M:%S.%f").timestamp()
        if since_wall <= wall < until_wall:
            out.append((wall, m.group(2)))
    return out


def read_phases(cluster: NatsCluster, kill: Kill) -> None:
    """The server side of a kill from the survivors' logs: route loss and each raft group's
    new leader, in seconds from the kill."""
    victim = cluster.index(kill.victim)
    lines = sorted(line for i, node in enumerate(cluster.nodes) if i != victim
                   for line in server_log_events(node.log_file, kill.wall_kill - 0.05, kill.wall_restart))
    groups = [*kill.leaders_on_victim, *(["meta"] if kill.meta_leader_was_victim else [])]
    for group in groups:
        found = [wall for wall, text in lines if ELECTIONS[group] in text
                 or (group == "meta" and "Self is new JetStream cluster metadata leader" in text)]
        kill.elections_s[group] = round(found[0] - kill.wall_kill, 3) if found else None
    lost = [wall for wall, text in lines if "Router connection closed" in text and kill.victim in text]
    kill.route_lost_s = round(lost[0] - kill.wall_kill, 3) if lost else None


async def run_failover(workdir: Path, scenario: Scenario | None = None) -> Run:
    """Run the scenario in ``workdir`` and return what it observed (asserting nothing but
    that each phase got done within its generous deadline)."""
    scenario = scenario or Scenario()
    run = Run(scenario)
    async with NatsCluster(workdir / "cluster") as cluster:
        admin = await connect(settings_for(cluster, "operator"), url=cluster.url, name="failover-admin")
        try:
            js = admin.jetstream()
            await wait_for_jetstream(js)
            await ensure_streams(js, StreamSettings(replicas=3))
            sim_config = "[sim]\nreplay = false\n" + LIFTED_SIM_LIMITS + VENUE_LATENCY
            async with SimProcess(workdir / "sim", sim_config) as sim:
                env = {**executor_env(cluster.url, sim.venue_urls, rate_limit_margin=LIFTED_MARGIN,
                                      ack_wait_s=scenario.ack_wait_s, concurrency=16),
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
                for kill in run.kills:
                    read_phases(cluster, kill)
        finally:
            await admin.close()
    return run


class Survivors:
    """The strategy's and the observer's connections, to the nodes that will survive the next
    kill only (so what is measured is exbus's recovery, not theirs); moved before each kill."""

    def __init__(self, run: Run, cluster: NatsCluster) -> None:
        self.run = run
        self.cluster = cluster
        self.strategy: Any = None
        self.observer: Any = None
        self.js: Any = None

    async def avoid(self, victim: int) -> None:
        urls = ",".join(u for i, u in enumerate(self.cluster.urls) if i != victim)
        run = self.run

        async def on_event(msg: Any) -> None:
            run.event_arrivals.append((time.monotonic(), schemas.decode(msg.data, schemas.OrderEvent).command_id))

        async def on_md(msg: Any) -> None:
            run.md_arrivals.append(time.monotonic())

        observer = await connect(settings_for(self.cluster, "operator"), url=urls, name="failover-observer")
        await observer.subscribe("orders.events.>", cb=on_event)
        await observer.subscribe("md.>", cb=on_md)
        await observer.flush()
        strategy = await connect(settings_for(self.cluster, "strategy"), url=urls, name="failover-strategy")
        old = (self.observer, self.strategy)
        self.observer, self.strategy, self.js = observer, strategy, strategy.jetstream()
        for nc in old:  # after the new ones listen: no event goes unseen (repeats are harmless)
            if nc is not None:
                await nc.close()

    async def close(self) -> None:
        for nc in (self.strategy, self.observer):
            if nc is not None:
                await nc.close()


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
    survivors = Survivors(run, cluster)
    try:
        await _publish_through_failovers(run, cluster, admin, survivors, replay)

        async def all_done() -> bool:
            stream = await quiet(lambda: js.stream_info(ORDERS))
            consumer = await quiet(lambda: js.consumer_info(ORDERS, DURABLE))
            if stream is None or consumer is None:
                return False
            run.orders_left = stream.state.messages
            run.consumer_pending = (consumer.num_pending, consumer.num_ack_pending)
            return run.orders_left == 0 and run.consumer_pending == (0, 0)

        await poll(all_done, "every command acknowledged by an executor", scenario.deadline_s, every_s=0.5)
        for data, stored in await read_stream(js, ORDER_EVENTS, "orders.events.>"):
            event = schemas.decode(data, schemas.OrderEvent)
            run.events.append(event)
            if event.command_id and event.command_id not in run.stored_at:
                run.stored_at[event.command_id] = stored
    finally:
        await survivors.close()


async def prepare_kill(cluster: NatsCluster, admin: Any) -> Kill:
    """Pick the victim (most service connections; ties: the ORDERS leader) and make it the
    leader of everything the order path needs; the meta leader too where it will move."""
    js = admin.jetstream()
    clients = await cluster.clients_by_node()
    orders_leader = (await js.stream_info(ORDERS)).cluster.leader
    victim = choose_victim(clients, orders_leader)
    for stream in LED_BY_VICTIM:
        await move_leader(admin, victim, stream)
    await move_leader(admin, victim, ORDERS, DURABLE)
    try:  # best effort: the meta leader answers only when it is elsewhere
        await admin.request("$JS.API.META.LEADER.STEPDOWN",
                            json.dumps({"placement": {"preferred": victim}}).encode(), timeout=5)
    except (nats.errors.Error, asyncio.TimeoutError):
        pass
    await wait_for_jetstream(js)
    kill = Kill(victim=victim, leaders_on_victim=await leaders_on(js, victim), clients_before=clients)
    kill.meta_leader_was_victim = await meta_leader(cluster) == victim
    return kill


async def meta_leader(cluster: NatsCluster) -> str | None:
    """The meta leader as a live node's /jsz reports it."""
    for i in range(len(cluster.nodes)):
        if not cluster.alive(i):
            continue
        url = f"http://127.0.0.1:{cluster.http_ports[i]}/jsz"
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as r:
                    info = (await r.json()).get("meta_cluster") or {}
                    if info.get("leader"):
                        return info["leader"]
        except (aiohttp.ClientError, asyncio.TimeoutError):
            continue
    return None


async def _publish_through_failovers(run: Run, cluster: NatsCluster, admin: Any, survivors: Survivors,
                                     replay: ReplayProcess) -> None:
    """Publish commands at the scenario's pace while the leading node is killed and restarted
    ``kills`` times; meanwhile watch when the services are connected again and the node has
    caught up. Publishing goes on until every kill is done and ``commands`` are out."""
    scenario = run.scenario
    admin_js = admin.jetstream()
    kills_done = asyncio.Event()
    first_kill_at = int(scenario.commands * scenario.kill_after)
    published_enough = asyncio.Event()

    first = await prepare_kill(cluster, admin)
    await survivors.avoid(cluster.index(first.victim))

    async def fail_over() -> None:
        kill = first
        for n in range(scenario.kills):
            if n:
                kill = await prepare_kill(cluster, admin)
                await survivors.avoid(cluster.index(kill.victim))
            else:
                await published_enough.wait()
            victim = cluster.index(kill.victim)
            cluster.kill(victim)
            kill.t_kill, kill.wall_kill = time.monotonic(), time.time()
            run.kills.append(kill)
            watch = asyncio.create_task(watch_recovery(kill, victim))
            await asyncio.sleep(scenario.outage_s)
            await cluster.restart(victim)
            kill.t_restart, kill.wall_restart = time.monotonic(), time.time()
            await watch
            await asyncio.sleep(scenario.settle_s)
        kills_done.set()

    async def watch_recovery(kill: Kill, victim: int) -> None:
        async def back() -> bool:
            clients = await quiet(cluster.clients_by_node)
            return bool(clients) and services_connected(clients, scenario.executors, ingestors=int(replay.running))

        await poll(back, "executors and ingestor reconnected", 120, every_s=0.1)
        kill.t_services_back = time.monotonic()
        while not kill.t_restart:
            await asyncio.sleep(0.1)

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
        kill.t_victim_current = time.monotonic()

    failover = asyncio.create_task(fail_over())
    period = 1.0 / scenario.publish_per_s
    next_at = time.monotonic()
    i = 0
    try:
        while True:
            last_restart = run.kills[-1].t_restart if run.kills else 0.0
            if kills_done.is_set() and len(run.commands) >= scenario.commands \
                    and time.monotonic() - last_restart >= scenario.tail_s:
                break
            if failover.done():
                failover.result()  # a failed phase ends the run here
            command = ioc_order(i)
            i += 1
            run.commands.append(command)
            if i >= first_kill_at:
                published_enough.set()
            started = time.monotonic()
            while True:  # a strategy re-publishes until the stream acknowledges; Nats-Msg-Id drops repeats
                attempt = time.monotonic()
                try:
                    await survivors.js.publish(subjects.orders_submit(command.venue, command.account),
                                               schemas.encode(command), headers={"Nats-Msg-Id": command.command_id},
                                               timeout=PUBLISH_TIMEOUT_S)
                    break
                except (nats.errors.Error, asyncio.TimeoutError):
                    run.publish_retries += 1
                    await asyncio.sleep(PUBLISH_RETRY_S)
            acked = time.monotonic()
            run.published_at[command.command_id] = acked
            run.published_wall[command.command_id] = time.time()
            for kill in run.kills:  # the first publish sent and acknowledged after the kill
                if kill.t_strategy_back is None and attempt >= kill.t_kill:
                    kill.t_strategy_back = acked
            run.longest_publish_s = max(run.longest_publish_s, acked - started)
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    finally:
        if not failover.done():
            await asyncio.wait({failover}, timeout=180)
    failover.result()
