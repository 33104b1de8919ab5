"""JetStream streams and KV buckets of DESIGN.md, created or updated idempotently.

Streams:
- ORDERS: ``orders.submit.>``, work-queue retention, duplicate window (Nats-Msg-Id =
  command id, so a re-published command is dropped by the server).
- ORDER_EVENTS: ``orders.events.>``, limits retention.
- ORDERS_DEADLETTER: ``orders.deadletter.>``, undecodable commands with the reason.
- VAULT_AUDIT: ``vault.audit``, long retention.
- MD: ``md.>``, only when market-data capture is enabled.
KV buckets: ``orders`` (order state, TTL), ``ratelimits`` (lease state), ``vault``
(ciphertext, a few versions of history), ``feeds`` (the ingestor processes' feed leases).
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy, KeyValueConfig, RetentionPolicy, StorageType, StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError

from schemas import subjects
from services.config import StreamSettings

ORDERS = "ORDERS"
ORDER_EVENTS = "ORDER_EVENTS"
ORDERS_DEADLETTER = "ORDERS_DEADLETTER"
VAULT_AUDIT = "VAULT_AUDIT"
MD = "MD"

KV_ORDERS = "orders"
KV_RATELIMITS = "ratelimits"
KV_FEEDS = "feeds"
FEEDS_TTL_S = 300.0
"""Keys of members and leases nobody renews (a process gone for good) vanish after this."""
KV_VAULT = "vault"

_IN_USE_WITH_DIFFERENT_CONFIG = 10058


def stream_configs(settings: StreamSettings) -> list[StreamConfig]:
    """The streams exbus needs under ``settings``."""
    r = settings.replicas
    configs = [
        StreamConfig(
            name=ORDERS, subjects=[subjects.ORDERS_SUBMIT_ALL], retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE, num_replicas=r, duplicate_window=settings.orders_duplicate_window_s,
            max_age=settings.orders_max_age_s, discard=DiscardPolicy.NEW,
            description="order commands: work queue shared by all executors",
        ),
        StreamConfig(
            name=ORDER_EVENTS, subjects=[subjects.ORDERS_EVENTS_ALL], retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE, num_replicas=r, max_age=settings.order_events_max_age_s,
            duplicate_window=settings.orders_duplicate_window_s,
            description="order events, every command ends in exactly one terminal event",
        ),
        StreamConfig(
            name=ORDERS_DEADLETTER, subjects=[subjects.ORDERS_DEADLETTER_ALL],
            retention=RetentionPolicy.LIMITS, storage=StorageType.FILE, num_replicas=r,
            max_age=settings.order_events_max_age_s, description="undecodable order commands",
        ),
        StreamConfig(
            name=VAULT_AUDIT, subjects=[subjects.VAULT_AUDIT], retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE, num_replicas=r, max_age=settings.vault_audit_max_age_s,
            deny_delete=True, deny_purge=True, description="vault audit trail",
        ),
    ]
    if settings.md_capture:
        configs.append(StreamConfig(
            name=MD, subjects=[subjects.MD_ALL], retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE, num_replicas=r, max_age=settings.md_max_age_s,
            max_bytes=settings.md_max_bytes, discard=DiscardPolicy.OLD,
            description="market data capture",
        ))
    return configs


def bucket_configs(settings: StreamSettings) -> list[KeyValueConfig]:
    """The KV buckets exbus needs under ``settings``."""
    r = settings.replicas
    return [
        KeyValueConfig(bucket=KV_ORDERS, history=5, ttl=settings.orders_kv_ttl_s, replicas=r,
                       storage=StorageType.FILE, description="order state by client order id"),
        KeyValueConfig(bucket=KV_RATELIMITS, history=1, replicas=r, storage=StorageType.FILE,
                       description="rate-limit lease state shared by all executors"),
        KeyValueConfig(bucket=KV_VAULT, history=10, replicas=r, storage=StorageType.FILE,
                       description="vault ciphertext"),
        KeyValueConfig(bucket=KV_FEEDS, history=1, ttl=FEEDS_TTL_S, replicas=r, storage=StorageType.FILE,
                       description="market-data feed leases shared by the ingestor processes"),
    ]


@dataclass
class EnsureReport:
    """What ensure_streams did, by stream/bucket name."""

    created: list[str]
    updated: list[str]
    unchanged: list[str]


async def _ensure_stream(js: JetStreamContext, config: StreamConfig, report: EnsureReport) -> None:
    assert config.name is not None
    try:
        info = await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(config)
        report.created.append(config.name)
        return
    try:
        await js.add_stream(config)  # identical config: a no-op on the server
        report.unchanged.append(config.name)
    except BadRequestError as e:
        if e.err_code != _IN_USE_WITH_DIFFERENT_CONFIG:
            raise
        # retention cannot change on a live stream; keep the existing one's.
        config.retention = info.config.retention
        await js.update_stream(config)
        report.updated.append(config.name)


async def _ensure_bucket(js: JetStreamContext, config: KeyValueConfig, report: EnsureReport) -> None:
    stream = f"KV_{config.bucket}"
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        await js.create_key_value(config)
        report.created.append(config.bucket)
        return
    current = info.config
    wanted = {
        "max_msgs_per_subject": config.history, "max_age": config.ttl or 0.0,
        "num_replicas": config.replicas, "description": config.description,
    }
    have = {
        "max_msgs_per_subject": current.max_msgs_per_subject, "max_age": current.max_age or 0.0,
        "num_replicas": current.num_replicas, "description": current.description,
    }
    if wanted == have:
        report.unchanged.append(config.bucket)
        return
    for key, value in wanted.items():
        setattr(current, key, value)
    await js.update_stream(current)
    report.updated.append(config.bucket)


async def ensure_streams(js: JetStreamContext, settings: StreamSettings) -> EnsureReport:
    """Create or update every stream and bucket; safe to call from every service at start."""
    report = EnsureReport([], [], [])
    for config in stream_configs(settings):
        await _ensure_stream(js, config, report)
    for bucket in bucket_configs(settings):
        await _ensure_bucket(js, bucket, report)
    return report
