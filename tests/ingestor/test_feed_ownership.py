"""Feed ownership across ingestor processes (services.ingestor.ownership), against a real
nats-server: members in one event loop, each with its own NATS connection, running stub
feeds that record when they start and stop and whether they may publish.

The processes-and-replay-servers version (SIGKILL of an owner, the takeover gap) is
tests/ingestor/test_feed_takeover.py.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

import msgspec
import nats
import pytest

from schemas import decode
from schemas.market import FeedStatus, MarketData
from services.bus.streams import ensure_streams
from services.config import StreamSettings
from services.ingestor.ownership import KV_FEEDS, FeedOwnership, rendezvous_owner

from .ingest_processes import until

pytestmark = pytest.mark.timeout(60)
FEEDS = [f"kraken.{n}" for n in range(8)]
LEASE_S = 0.5


class Member:
    """One ingestor process's ownership, with stub feeds."""

    def __init__(self, nc: Any, kv: Any, name: str, feeds: list[str] = FEEDS, standby: bool = False) -> None:
        self.warm: dict[str, Callable[[], bool]] = {}
        """Every feed running, owned or standby."""
        self.books_published: list[str] = []
        self.ownership = FeedOwnership(kv, nc, feeds, self.make_feed, venue_of=lambda f: f.split(".")[0],
                                       symbols_of=lambda f: [f"S{f.split('.')[1]}-USD"], lease_s=LEASE_S,
                                       member_id=name, standby=standby)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    @property
    def running(self) -> dict[str, Callable[[], bool]]:
        """The feeds this member owns and runs: feed -> its gate."""
        return {f: gate for f, gate in self.warm.items() if f in self.ownership.owned}

    def make_feed(self, feed_id: str, stop: asyncio.Event, may_publish: Callable[[], bool]) -> "StubFeed":
        return StubFeed(self, feed_id, stop, may_publish)

    def start(self) -> "Member":
        self.task = asyncio.create_task(self.ownership.run(self.stop))
        return self

    async def leave(self) -> None:
        """A clean stop: the member hands its feeds over."""
        self.stop.set()
        assert self.task is not None
        await self.task

    async def die(self) -> None:
        """As SIGKILL: the loop stops without handing anything over (the feeds stop publishing
        with the process)."""
        assert self.task is not None
        self.ownership._release_all = _nothing  # type: ignore[method-assign]
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        for feed in list(self.ownership.owned.values()):
            if feed.task is not None:
                feed.task.cancel()


class StubFeed:
    """A feed that runs until stopped (in ``member.warm`` meanwhile)."""

    def __init__(self, member: Member, feed_id: str, stop: asyncio.Event, may_publish: Callable[[], bool]) -> None:
        self.member, self.feed_id, self.stop, self.may_publish = member, feed_id, stop, may_publish

    async def run(self) -> None:
        self.member.warm[self.feed_id] = self.may_publish
        try:
            await self.stop.wait()
        finally:
            del self.member.warm[self.feed_id]

    def publish_books(self) -> None:
        self.member.books_published.append(self.feed_id)


async def _nothing() -> None:
    return None


@asynccontextmanager
async def bucket(nats_url: str) -> AsyncIterator[tuple[Any, Any]]:
    nc = await nats.connect(nats_url)
    await ensure_streams(nc.jetstream(), StreamSettings())
    try:
        yield nc, await nc.jetstream().key_value(KV_FEEDS)
    finally:
        await nc.drain()


def owners(*members: Member) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {f: [] for f in FEEDS}
    for m in members:
        for f in m.running:
            out[f].append(m.ownership.id)
    return out


def split_evenly(*members: Member) -> bool:
    live = sorted(m.ownership.id for m in members)
    return all(running == [rendezvous_owner(f, live)] for f, running in owners(*members).items())


async def test_processes_split_the_feeds_and_hand_them_over_as_they_come_and_go(nats_url: str) -> None:
    async with bucket(nats_url) as (nc, kv):
        a = Member(nc, kv, "member-a").start()
        await until(lambda: len(a.running) == len(FEEDS))

        b = Member(nc, kv, "member-b").start()  # a second process: rendezvous hashing splits the feeds
        await until(lambda: split_evenly(a, b))
        assert 0 < len(b.running) < len(FEEDS)
        assert all(owner for owner in owners(a, b).values())

        c = Member(nc, kv, "member-c").start()
        await until(lambda: split_evenly(a, b, c))
        assert all(len(running) == 1 for running in owners(a, b, c).values())

        await c.leave()  # handed over: the others take its feeds at once, not a lease later
        handover_s = await until(lambda: split_evenly(a, b))
        assert handover_s < LEASE_S, handover_s
        await b.leave()
        await until(lambda: len(a.running) == len(FEEDS))
        await a.leave()
        assert not a.running


async def test_a_dead_owners_feeds_are_taken_after_one_lease_with_a_gap_status(nats_url: str) -> None:
    async with bucket(nats_url) as (nc, kv):
        statuses: list[FeedStatus] = []

        async def on_status(msg: Any) -> None:
            message = decode(msg.data, MarketData)
            assert isinstance(message, FeedStatus)
            statuses.append(message)

        await nc.subscribe("md.kraken.status", cb=on_status)
        a, b = Member(nc, kv, "member-a").start(), Member(nc, kv, "member-b").start()
        await until(lambda: split_evenly(a, b))
        lost = sorted(b.running)
        await b.die()
        taken_s = await until(lambda: len(a.running) == len(FEEDS))
        assert LEASE_S * 0.8 <= taken_s < LEASE_S * 3, taken_s  # no earlier than the lease allows
        assert sorted(f for f, previous in a.ownership.takeovers if previous == "member-b") == lost
        await until(lambda: len([s for s in statuses if s.reason and "from member-b" in s.reason]) == len(lost))
        gaps = [s for s in statuses if s.reason and "from member-b" in s.reason]
        assert {s.state for s in gaps} == {"gap"}
        assert sorted(s.symbol for s in gaps) == sorted(f"S{f.split('.')[1]}-USD" for f in lost)
        await a.leave()


async def test_an_owner_whose_lease_was_taken_stops_at_its_next_renewal(nats_url: str) -> None:
    async with bucket(nats_url) as (nc, kv):
        a = Member(nc, kv, "member-a", feeds=FEEDS[:1]).start()
        await until(lambda: FEEDS[0] in a.running)
        may_publish = a.running[FEEDS[0]]
        assert may_publish()
        entry = await kv.get(f"feed.{FEEDS[0]}")  # another process writes the lease (a's renewals were late)
        await kv.update(f"feed.{FEEDS[0]}", b'{"layout":1,"owner":"member-x"}', last=entry.revision)
        await until(lambda: FEEDS[0] not in a.running, timeout=LEASE_S)
        assert not may_publish()
        await a.leave()


async def test_publishing_stops_when_renewals_stop(nats_url: str) -> None:
    """A paused process (no renewal for a lease period) publishes nothing when it wakes,
    before it has learnt whether the feed is still its own."""
    async with bucket(nats_url) as (nc, kv):
        a = Member(nc, kv, "member-a", feeds=FEEDS[:1]).start()
        await until(lambda: FEEDS[0] in a.running)
        owned = a.ownership.owned[FEEDS[0]]
        owned.renewed -= LEASE_S  # as if the last renewal were a lease period old
        assert not a.running[FEEDS[0]]()
        await a.leave()


async def test_members_with_other_feed_lists_take_nothing_new_and_keep_what_they_own(nats_url: str) -> None:
    async with bucket(nats_url) as (nc, kv):
        a = Member(nc, kv, "member-a").start()
        await until(lambda: len(a.running) == len(FEEDS))
        b = Member(nc, kv, "member-b", feeds=FEEDS[:4]).start()  # another config
        await until(lambda: a.ownership.problem is not None and b.ownership.problem is not None)
        await asyncio.sleep(LEASE_S * 2)
        assert len(a.running) == len(FEEDS) and not b.running
        assert "another feed list" in (a.ownership.problem or "") and "member-b" in (a.ownership.problem or "")
        await b.leave()
        await until(lambda: a.ownership.problem is None, timeout=LEASE_S * 4)
        await a.leave()


async def test_a_bucket_value_of_another_layout_pauses_taking_with_a_clear_reason(nats_url: str) -> None:
    async with bucket(nats_url) as (nc, kv):
        await kv.put("feed.kraken.0", msgspec.json.encode({"owner": "old-ingestor", "expires": 1}))  # no layout
        a = Member(nc, kv, "member-a").start()
        await until(lambda: a.ownership.problem is not None)
        assert "feed.kraken.0" in a.ownership.problem and "layout" in a.ownership.problem
        await asyncio.sleep(LEASE_S)
        assert not a.running
        await kv.delete("feed.kraken.0")  # removed by the operator: sharing starts
        await until(lambda: len(a.running) == len(FEEDS))
        await a.leave()


async def test_a_warm_standby_takes_over_without_starting_the_feed_again(nats_url: str) -> None:
    async with bucket(nats_url) as (nc, kv):
        a = Member(nc, kv, "member-a", standby=True).start()
        b = Member(nc, kv, "member-b", standby=True).start()
        await until(lambda: split_evenly(a, b))
        # each runs the other's feeds warm, gates shut
        await until(lambda: set(a.warm) == set(b.warm) == set(FEEDS))
        assert not any(gate() for f, gate in a.warm.items() if f not in a.running)
        lost = sorted(b.running)
        warm_gates = {f: a.warm[f] for f in lost}
        await b.die()
        await until(lambda: len(a.running) == len(FEEDS))
        assert all(a.running[f] is warm_gates[f] and a.running[f]() for f in lost)  # the same feeds, now publishing
        assert sorted(a.books_published) == lost  # every book as it stands, right after the gap status
        await a.leave()
        assert not a.warm


async def test_a_round_that_fails_is_logged_and_the_next_one_goes_on(nats_url: str) -> None:
    async with bucket(nats_url) as (nc, kv):
        a = Member(nc, kv, "member-a")
        real, failures = a.ownership.live_members, []

        def flaky() -> list[str]:
            if len(failures) < 3:
                failures.append(1)
                raise RuntimeError("a round that fails")
            return real()

        a.ownership.live_members = flaky  # type: ignore[method-assign]
        a.start()
        await until(lambda: len(a.running) == len(FEEDS))
        assert len(failures) == 3
        await a.leave()
