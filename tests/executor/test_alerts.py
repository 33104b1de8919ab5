"""Alerts on ``alerts.<severity>.<name>`` from the executor, end to end: a real
nats-server, the venue simulator, an executor fleet.

- The simulator bans the IP (another client on it ignored its 429s); the next order
  exbus sends is answered 418 and ``alerts.critical.venue_banned`` is on the bus within 1 s.
- A command for an account without credentials ends ``auth_error``: one
  ``alerts.critical.auth_error``; more of the same within the repeat interval are folded.
- An undecodable command is dead-lettered: ``alerts.warning.dead_letter``.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import aiohttp
import nats
import pytest

import schemas
from schemas import PlaceOrder
from schemas.alerts import Alert
from services.observability.alerts import AlertPublisher
from services.simulator import Simulator

from .conftest import fleet, publish


class AlertLog:
    """Every alert on ``alerts.>`` with its arrival time."""

    def __init__(self) -> None:
        self.received: list[tuple[float, str, Alert]] = []
        self._changed = asyncio.Event()

    async def start(self, nc: Any) -> "AlertLog":
        async def on_alert(msg: Any) -> None:
            self.received.append((time.monotonic(), msg.subject, schemas.decode(msg.data, Alert)))
            self._changed.set()

        await nc.subscribe("alerts.>", cb=on_alert)
        await nc.flush()
        return self

    async def first(self, name: str, timeout: float = 10.0) -> tuple[float, str, Alert]:
        async def until() -> tuple[float, str, Alert]:
            while True:
                for r in self.received:
                    if r[2].name == name:
                        return r
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(until(), timeout)


def order(tag: str, account: str = "demo") -> PlaceOrder:
    return PlaceOrder(command_id=f"{tag}-cmd", venue="binance", account=account, symbol="NKN-USDT",
                      client_order_id=tag, side="buy", order_type="limit", time_in_force="ioc",
                      quantity=Decimal("100"), price=Decimal("0.30"))


async def ban_the_ip(base_url: str) -> None:
    """Another client on exbus's IP exhausts the request weight and keeps going past the
    429: the simulator bans the IP, as Binance does."""
    async with aiohttp.ClientSession() as http:
        for _ in range(400):
            async with http.get(f"{base_url}/api/v3/ping") as r:
                if r.status == 418:
                    return
    raise AssertionError("the simulator never banned the IP")


@pytest.mark.timeout(120)
async def test_a_banned_reply_is_alerted_on_the_bus_within_a_second(nats_url, bus, event_log) -> None:
    sim_config = {"replay": False, "binance": {"limits": {"request_weight_1m": 200}}, "ban": {"requests_after_429": 0}}
    async with Simulator(sim_config) as sim:
        alerts = await AlertLog().start(bus)
        async with fleet(nats_url, sim, max_deliver=2):
            await ban_the_ip(sim.base_urls["binance"])
            sent = time.monotonic()
            await publish(bus.jetstream(), order("banned-1"))
            arrived, subject, alert = await alerts.first("venue_banned")
            # the fleet is blocked for the ban's 120 s: the order is never sent, and it ends
            # as such after its deliveries, not as an order whose outcome is unknown
            events = await event_log.wait(lambda ev: any(e.command_id == "banned-1-cmd" for e in ev), timeout=30)
        placed = sim.ledger_snapshot()["orders"]
    (end,) = [e for e in events if e.command_id == "banned-1-cmd"]
    assert (end.status, end.error) == ("failed", "rate_limited"), end
    assert placed == []
    assert subject == "alerts.critical.venue_banned"
    # the first call of the order is the market rules' (public): the IP is banned, no account named
    assert (alert.severity, alert.venue, alert.service) == ("critical", "binance", "executor")
    assert alert.account in (None, "demo") and alert.key in ("binance", "binance.demo")
    assert "banned" in alert.summary.lower() and float(alert.details["retry_after_s"]) > 0
    assert arrived - sent < 1.0, f"alert {arrived - sent:.3f} s after the order"
    print(f"\nvenue_banned alert on the bus {1000 * (arrived - sent):.1f} ms after the order was published")


async def test_auth_errors_are_alerted_once_per_account_within_the_repeat_interval(nats_url, bus, event_log,
                                                                                   simulator) -> None:
    alerts = await AlertLog().start(bus)
    commands = [order(f"nokey-{i}", account="ghost") for i in range(3)]
    async with fleet(nats_url, simulator):
        for c in commands:
            await publish(bus.jetstream(), c)
        events = await event_log.wait(lambda ev: {c.command_id for c in commands} <= {e.command_id for e in ev})
        _, subject, alert = await alerts.first("auth_error")
        await asyncio.sleep(0.3)  # time for any further alert to arrive
    assert {e.error for e in events if e.command_id.startswith("nokey-")} == {"auth_error"}
    assert subject == "alerts.critical.auth_error" and (alert.venue, alert.account) == ("binance", "ghost")
    assert "no credentials" in alert.summary
    assert [r[2].name for r in alerts.received].count("auth_error") == 1  # the other two folded into it


async def test_a_dead_letter_is_alerted(nats_url, bus, simulator) -> None:
    alerts = await AlertLog().start(bus)
    async with fleet(nats_url, simulator):
        await bus.jetstream().publish("orders.submit.binance.demo", b"\xff not a command")
        _, subject, alert = await alerts.first("dead_letter")
    assert subject == "alerts.warning.dead_letter"
    assert alert.key == "orders.deadletter.binance.demo" and alert.details["subject"] == "orders.submit.binance.demo"


async def test_repeats_of_one_key_are_folded_and_counted_in_the_next_alert(nats_url) -> None:
    now = [0.0]
    nc = await nats.connect(nats_url)
    alerts = await AlertLog().start(nc)
    publisher = AlertPublisher(nc, "executor", repeat_after_s=60, clock=lambda: now[0])
    sent = [await publisher.alert("critical", "auth_error", "bad key", venue="okx", account="main") for _ in range(4)]
    other = await publisher.alert("critical", "auth_error", "bad key", venue="okx", account="second")
    now[0] = 61.0
    again = await publisher.alert("critical", "auth_error", "still bad", venue="okx", account="main")
    await nc.flush()
    await asyncio.sleep(0.1)
    assert sent[0] is not None and sent[1:] == [None, None, None] and other is not None
    assert again is not None and again.suppressed == 3 and again.key == "okx.main"
    assert [(r[2].key, r[2].suppressed) for r in alerts.received] == [("okx.main", 0), ("okx.second", 0), ("okx.main", 3)]
    await nc.close()
