"""Streams and buckets of DESIGN.md are created idempotently on a real nats-server,
with the properties the services rely on."""

from __future__ import annotations

import nats
import pytest
from nats.js.api import RetentionPolicy

from services.bus.streams import (
    KV_FEEDS, KV_ORDERS, KV_RATELIMITS, KV_VAULT, MD, ORDER_EVENTS, ORDERS, ORDERS_DEADLETTER, VAULT_AUDIT,
    ensure_streams,
)
from services.config import StreamSettings


@pytest.fixture
async def js(nats_url: str):
    nc = await nats.connect(nats_url)
    yield nc.jetstream()
    await nc.close()


async def test_creates_everything_then_is_idempotent(js) -> None:
    settings = StreamSettings()
    first = await ensure_streams(js, settings)
    assert sorted(first.created) == sorted([ORDERS, ORDER_EVENTS, ORDERS_DEADLETTER, VAULT_AUDIT, KV_ORDERS, KV_RATELIMITS, KV_VAULT, KV_FEEDS])
    second = await ensure_streams(js, settings)
    assert second.created == [] and second.updated == []
    assert sorted(second.unchanged) == sorted(first.created)


async def test_orders_is_a_work_queue_that_drops_duplicate_command_ids(js) -> None:
    await ensure_streams(js, StreamSettings(orders_duplicate_window_s=60))
    info = await js.stream_info(ORDERS)
    assert info.config.retention == RetentionPolicy.WORK_QUEUE
    assert info.config.duplicate_window == 60
    a = await js.publish("orders.submit.binance.main", b"{}", headers={"Nats-Msg-Id": "cmd-1"})
    b = await js.publish("orders.submit.binance.main", b"{}", headers={"Nats-Msg-Id": "cmd-1"})
    c = await js.publish("orders.submit.binance.main", b"{}", headers={"Nats-Msg-Id": "cmd-2"})
    assert not a.duplicate and b.duplicate and b.seq == a.seq and c.seq == a.seq + 1


async def test_changed_settings_update_in_place_and_md_capture_is_optional(js) -> None:
    await ensure_streams(js, StreamSettings())
    with pytest.raises(nats.js.errors.NotFoundError):
        await js.stream_info(MD)
    await js.publish("orders.submit.okx.main", b"{}", headers={"Nats-Msg-Id": "kept"})
    report = await ensure_streams(js, StreamSettings(md_capture=True, orders_duplicate_window_s=30, orders_kv_ttl_s=3600))
    assert MD in report.created
    assert ORDERS in report.updated and KV_ORDERS in report.updated
    assert (await js.stream_info(ORDERS)).state.messages == 1  # update kept the data
    assert (await js.stream_info(f"KV_{KV_ORDERS}")).config.max_age == 3600
    await js.publish("md.binance.trade.BTC-USDT", b"{}")
    assert (await js.stream_info(MD)).state.messages == 1


async def test_buckets_support_compare_and_swap(js) -> None:
    await ensure_streams(js, StreamSettings())
    kv = await js.key_value(KV_ORDERS)
    rev = await kv.create("binance.main.c1", b"claimed")
    with pytest.raises(nats.js.errors.KeyWrongLastSequenceError):
        await kv.create("binance.main.c1", b"claimed-again")
    await kv.update("binance.main.c1", b"sent", last=rev)
    with pytest.raises(nats.js.errors.KeyWrongLastSequenceError):
        await kv.update("binance.main.c1", b"stale-writer", last=rev)
    assert (await kv.get("binance.main.c1")).value == b"sent"


async def test_audit_stream_refuses_deletion(js) -> None:
    await ensure_streams(js, StreamSettings())
    ack = await js.publish("vault.audit", b"{}")
    with pytest.raises(nats.js.errors.Error):
        await js.delete_msg(VAULT_AUDIT, ack.seq)
