"""Exactly one venue order per command, against the venue simulator and a real
nats-server: replicas, duplicates, redeliveries, faults after the venue accepted the
order, malformed and undecodable commands. The simulator's ledger (GET /__sim/ledger) is
the venue's own record of every order it accepted."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal

import nats

import schemas
from schemas import CancelOrder, PlaceOrder, subjects
from services.bus.streams import KV_ORDERS, ORDERS_DEADLETTER
from services.executor.state import OrderRecord, OrderStates, order_key
from services.simulator import Simulator

from .conftest import fleet, publish

OUTCOMES = {"accepted", "partially_filled", "filled", "canceled", "expired", "rejected", "failed"}


def _order(i: int, venue: str = "binance", **kw) -> PlaceOrder:
    if venue == "binance":
        base = dict(symbol="NKN-USDT", side="buy", order_type="limit", quantity=Decimal("100"), price=Decimal("0.30"))
    else:
        base = dict(symbol="WAVES-KRW", side="buy", order_type="limit", quantity=Decimal("1"), price=Decimal("10000"))
    return PlaceOrder(command_id=f"cmd-{venue}-{i}", venue=venue, account="demo", client_order_id=f"ord-{venue}-{i}",
                      **(base | kw))


def _per_client_id(ledger: dict) -> Counter:
    return Counter((o["venue"], o["client_order_id"]) for o in ledger["orders"])


async def test_replicas_place_each_order_once_despite_duplicates(nats_url, bus, event_log, simulator) -> None:
    js = bus.jetstream()
    commands = [_order(i, "binance") for i in range(40)] + [_order(i, "upbit") for i in range(20)]
    async with fleet(nats_url, simulator, replicas=3):
        for c in commands:
            first = await publish(js, c)
            again = await publish(js, c)  # a strategy re-sending: dropped by Nats-Msg-Id
            assert again.duplicate and again.seq == first.seq
        # the same client order id under a new command id: refused, not a second order
        reuse = _order(0, "binance", quantity=Decimal("200"))
        reuse = PlaceOrder(**{f: getattr(reuse, f) for f in reuse.__struct_fields__} | {"command_id": "cmd-reuse"})
        await publish(js, reuse)
        events = await event_log.wait(lambda ev: len({e.command_id for e in ev}) >= len(commands) + 1, timeout=60)
    ledger = simulator.ledger_snapshot()
    counts = _per_client_id(ledger)
    assert len(counts) == len(commands) and set(counts.values()) == {1}
    outcome = Counter(e.command_id for e in events if e.status in OUTCOMES)
    assert all(outcome[c.command_id] == 1 for c in commands), "every command ends in exactly one outcome event"
    (dup,) = [e for e in events if e.command_id == "cmd-reuse"]
    assert dup.status == "rejected" and dup.error == "duplicate_order"
    assert all(e.status in ("accepted", "filled", "partially_filled") for e in events if e.command_id != "cmd-reuse")


async def test_timeouts_and_dropped_connections_after_accept_resolve_by_query(nats_url, bus, event_log) -> None:
    faults = [{"kind": "timeout", "venue": "binance", "route": "place", "count": 2},
              {"kind": "drop", "venue": "binance", "route": "place", "count": 2},
              {"kind": "malformed", "venue": "upbit", "route": "place", "count": 1},
              {"kind": "error_5xx", "venue": "upbit", "route": "place", "count": 1, "when": "after"}]
    async with Simulator({"replay": False, "faults": faults}) as sim:
        js = bus.jetstream()
        commands = [_order(i, "binance") for i in range(6)] + [_order(i, "upbit") for i in range(4)]
        async with fleet(nats_url, sim, replicas=2, ack_wait_s=20):
            for c in commands:
                await publish(js, c)
            events = await event_log.wait(lambda ev: len({e.command_id for e in ev}) >= len(commands), timeout=90)
        ledger = sim.ledger_snapshot()
    answered = Counter(o.get("response") for o in ledger["orders"])
    assert answered["timeout"] == 2 and answered["dropped"] == 2 and answered["malformed"] == 1, answered
    counts = _per_client_id(ledger)
    assert len(counts) == len(commands) and set(counts.values()) == {1}, counts
    by_command = {e.command_id: e for e in events}
    assert all(by_command[c.command_id].status == "accepted" for c in commands)


async def test_a_command_left_in_sent_state_is_reconciled_not_resent(nats_url, bus, event_log, simulator) -> None:
    """A replica died after sending: the venue has the order, KV says ``sent``. The
    redelivered command must find the order by client order id and not place another."""
    from schemas.vault import Credentials
    from services.simulator.config import sim_config
    from services.venues import rest_adapter
    from services.venues.http import HttpTransport
    import time

    cmd = _order(99, "binance")
    acct = sim_config({}).binance.accounts[0]
    venue = rest_adapter("binance", simulator.binance_url)
    async with HttpTransport() as http:  # the order the dead replica sent
        resp = await http.send(venue.build_request("place_order", cmd, Credentials(api_key=acct.api_key, secret=acct.secret),
                                                   time.time_ns() // 1_000_000), idempotent=False)
        assert resp.status == 200
    states = OrderStates(await bus.jetstream().key_value(KV_ORDERS))
    await states.claim(order_key("binance", "demo", cmd.client_order_id),
                       OrderRecord(command_id=cmd.command_id, phase="sent", symbol=cmd.symbol))
    async with fleet(nats_url, simulator):
        await publish(bus.jetstream(), cmd)
        events = await event_log.wait(lambda ev: any(e.command_id == cmd.command_id for e in ev))
    (event,) = [e for e in events if e.command_id == cmd.command_id]
    assert event.status == "accepted" and event.venue_order_id is not None
    assert _per_client_id(simulator.ledger_snapshot())[("binance", cmd.client_order_id)] == 1


async def test_malformed_commands_are_rejected_and_garbage_is_dead_lettered(nats_url, bus, event_log, simulator) -> None:
    js = bus.jetstream()
    bad = {"type": "place", "command_id": "bad-1", "venue": "binance", "account": "demo", "symbol": "NKN-USDT",
           "client_order_id": "bad-1", "side": "buy", "order_type": "limit", "quantity": "-5", "price": "0.3"}
    rules = _order(7, "binance", quantity=Decimal("0.5"))  # below NKNUSDT's lot/min notional
    wrong_subject = _order(8, "upbit")
    async with fleet(nats_url, simulator):
        await js.publish(subjects.orders_submit("binance", "demo"), schemas.encode(bad))
        await js.publish(subjects.orders_submit("binance", "demo"), b"\x00not json at all")
        await publish(js, rules)
        await js.publish(subjects.orders_submit("binance", "demo"), schemas.encode(wrong_subject))
        events = await event_log.wait(lambda ev: {"bad-1", rules.command_id, wrong_subject.command_id} <= {e.command_id for e in ev})
        dead = await js.get_last_msg(ORDERS_DEADLETTER, "orders.deadletter.binance.demo")
    by = {e.command_id: e for e in events}
    assert by["bad-1"].status == "rejected" and by["bad-1"].error == "invalid_command" and "quantity" in by["bad-1"].reason
    assert by[rules.command_id].error == "market_rules"
    assert by[wrong_subject.command_id].error == "invalid_command"
    letter = schemas.decode(dead.data, schemas.DeadLetter)
    assert letter.payload == b"\x00not json at all" and "malformed" in letter.reason
    assert simulator.ledger_snapshot()["orders"] == []


async def test_cancel_by_client_order_id(nats_url, bus, event_log, simulator) -> None:
    js = bus.jetstream()
    place = _order(1, "binance")
    async with fleet(nats_url, simulator):
        await publish(js, place)
        await event_log.wait(lambda ev: any(e.command_id == place.command_id for e in ev))
        cancel = CancelOrder(command_id="cancel-1", venue="binance", account="demo", symbol="NKN-USDT", client_order_id=place.client_order_id)
        missing = CancelOrder(command_id="cancel-2", venue="binance", account="demo", symbol="NKN-USDT", client_order_id="never-placed")
        await publish(js, cancel)
        await publish(js, missing)
        events = await event_log.wait(lambda ev: {"cancel-1", "cancel-2"} <= {e.command_id for e in ev})
    by = {e.command_id: e for e in events}
    assert by["cancel-1"].status == "canceled" and by["cancel-1"].client_order_id == place.client_order_id
    assert by["cancel-2"].status == "rejected" and by["cancel-2"].error == "order_not_found"
    (entry,) = [o for o in simulator.ledger_snapshot()["orders"] if o["client_order_id"] == place.client_order_id]
    assert entry["outcome"] in ("canceled", "CANCELED")


async def test_a_command_that_cannot_finish_ends_failed_after_max_deliver_and_stays_tracked(nats_url, bus, event_log) -> None:
    """The venue took the order but never answers a status query: after max_deliver
    deliveries the command ends in one ``failed``/``outcome_unknown`` event (never in
    silence), and the order stays tracked in case it lives at the venue."""
    faults = [{"kind": "drop", "venue": "binance", "route": "place", "count": 1},
              {"kind": "error_5xx", "venue": "binance", "route": "GET /api/v3/order", "count": 10**6}]
    cmd = _order(1, "binance")
    async with Simulator({"replay": False, "faults": faults}) as sim:
        async with fleet(nats_url, sim, max_deliver=2, ack_wait_s=60):
            await publish(bus.jetstream(), cmd)
            events = await event_log.wait(lambda ev: any(e.command_id == cmd.command_id for e in ev), timeout=120)
            await asyncio.sleep(1.0)  # no second outcome follows
        ledger = sim.ledger_snapshot()
    mine = [e for e in event_log.events if e.command_id == cmd.command_id]
    assert [(e.status, e.error) for e in mine] == [("failed", "outcome_unknown")], mine
    assert "gave up after 2 deliveries" in mine[0].reason
    assert _per_client_id(ledger)[("binance", cmd.client_order_id)] == 1  # sent once, never re-sent blindly
    record, _ = await OrderStates(await bus.jetstream().key_value(KV_ORDERS)).get(
        order_key("binance", "demo", cmd.client_order_id))
    assert record.phase == "done" and record.tracking
