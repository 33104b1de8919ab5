"""Crash test: 3 executor processes place 1,000 orders while one of them is killed with
SIGKILL every few seconds and restarted. Afterwards every command has exactly one
outcome event on ORDER_EVENTS, and the venue simulator's ledger holds exactly one order
per client order id (no order lost, none placed twice, no blind re-send refused as a
duplicate by the venue).

Real processes throughout: nats-server, `exbus sim`, and `exbus execute` x3. Limits are
lifted on both sides (tests.executor.processes) so the run takes seconds, not minutes.
The orders are IOC limits that do not cross: each ends at once (``expired`` on Binance,
``canceled`` on Upbit) without moving balances or leaving orders to track. The simulator
answers placements after 100 ms (a distant venue), so every kill leaves orders sent and
unanswered: their redelivered commands must be resolved by querying the venue.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from schemas import PlaceOrder
from services.bus.streams import KV_ORDERS, ORDER_EVENTS, ORDERS
from services.executor.service import DURABLE
from services.executor.state import OrderStates, order_key

from .conftest import EventLog, publish
from .processes import LIFTED_MARGIN, LIFTED_SIM_LIMITS, ExecutorProcess, SimProcess, executor_env

COMMANDS = 1000
EXECUTORS = 3
PUBLISH_PER_S = 50.0
"""Commands are published over ~20 s, so the kills land while work is in flight."""
KILL_EVERY_S = (2.0, 4.0)
VENUE_LATENCY = '[[sim.faults]]\nkind = "latency"\nroute = "place"\nlatency_ms = 100\n'


def ioc_order(i: int) -> PlaceOrder:
    """Every fourth order on Upbit, the rest on Binance; priced under the book (no fill)."""
    if i % 4 == 3:
        shape = dict(venue="upbit", symbol="WAVES-KRW", quantity=Decimal("5"), price=Decimal("1000"))
    else:
        shape = dict(venue="binance", symbol="NKN-USDT", quantity=Decimal("100"), price=Decimal("0.30"))
    return PlaceOrder(command_id=f"crash-cmd-{i}", account="demo", client_order_id=f"crash-{i}", side="buy",
                      order_type="limit", time_in_force="ioc", **shape)


async def unanswered_states(js, commands: list[PlaceOrder], events: EventLog) -> dict[str, object]:
    """The KV order state of every command without an event (what a failure message needs)."""
    states = OrderStates(await js.key_value(KV_ORDERS))
    answered = {e.command_id for e in events.events}
    consumer = await js.consumer_info(ORDERS, DURABLE)
    return {"consumer": (consumer.num_pending, consumer.num_ack_pending, consumer.num_redelivered)} | {
        c.command_id: (await states.get(order_key(c.venue, c.account, c.client_order_id)))[0]
        for c in commands if c.command_id not in answered}


@pytest.mark.timeout(400)
async def test_sigkilled_executors_place_each_order_exactly_once(nats_url: str, bus, tmp_path: Path) -> None:
    js = bus.jetstream()
    events = await EventLog().start(js)
    commands = [ioc_order(i) for i in range(COMMANDS)]
    async with SimProcess(tmp_path / "sim", "[sim]\nreplay = false\n" + LIFTED_SIM_LIMITS + VENUE_LATENCY) as sim:
        env = executor_env(nats_url, sim.venue_urls, rate_limit_margin=LIFTED_MARGIN, ack_wait_s=8, concurrency=16)
        executors = [ExecutorProcess(f"executor-{i}", tmp_path / "executors", env) for i in range(EXECUTORS)]
        for ex in executors:
            await ex.start()
        rng = random.Random(6)
        kills = 0
        done = asyncio.Event()

        async def publisher() -> None:
            for c in commands:
                await publish(js, c)
                await asyncio.sleep(1 / PUBLISH_PER_S)

        async def killer() -> None:
            nonlocal kills
            while not done.is_set():
                try:
                    await asyncio.wait_for(done.wait(), rng.uniform(*KILL_EVERY_S))
                except asyncio.TimeoutError:
                    victim = executors[kills % EXECUTORS]
                    await victim.kill()
                    kills += 1
                    await victim.start()

        killing = asyncio.create_task(killer())
        try:
            await publisher()
            wanted = {c.command_id for c in commands}
            try:
                await events.wait(lambda ev: wanted <= {e.command_id for e in ev}, timeout=240)
            except AssertionError as e:
                raise AssertionError(f"{e}; unanswered: {await unanswered_states(js, commands, events)}") from None
        finally:
            done.set()
            await killing
            codes = [await ex.stop() for ex in executors]
        # the work queue is empty (every command acked or terminated) and the log caught up
        orders = (await js.stream_info(ORDERS)).state
        assert orders.messages == 0
        consumer = await js.consumer_info(ORDERS, DURABLE)
        assert consumer.num_ack_pending == 0 and consumer.num_pending == 0, consumer
        redeliveries = consumer.delivered.consumer_seq - orders.last_seq
        total = (await js.stream_info(ORDER_EVENTS)).state.messages
        final = await events.wait(lambda ev: len(ev) >= total, timeout=60)
        ledger = await sim.ledger()
    await events.stop()

    assert kills >= 3, f"only {kills} kills: the run was too short to test crashes"
    assert redeliveries > 0, "no kill interrupted a command: nothing was tested"
    assert codes == [0] * EXECUTORS, [ex.log_tail() for ex in executors]
    per_command = Counter(e.command_id for e in final)
    assert set(per_command) == {c.command_id for c in commands}, "events for commands nobody sent"
    repeated = {cid: n for cid, n in per_command.items() if n != 1}
    assert not repeated, f"commands with more than one event: {repeated}"
    statuses = Counter(e.status for e in final)
    assert set(statuses) <= {"expired", "canceled"}, statuses  # every order reached the venue and ended there
    placed = Counter((o["venue"], o["client_order_id"]) for o in ledger["orders"])
    assert placed == Counter((c.venue, c.client_order_id) for c in commands), "ledger differs from one order per command"
    assert ledger["rejected"] == [], "the venue refused re-sent orders"
    print(f"\ncrash test: {COMMANDS} commands, {EXECUTORS} executor processes, {kills} SIGKILLs, "
          f"{sum(ex.starts for ex in executors)} starts, {redeliveries} redeliveries; events {dict(statuses)}; ledger orders {len(ledger['orders'])}")
