"""Feeds shared by several ingestor processes: one owner per feed, through NATS KV leases.

A *feed* is a venue's configured symbols (or a group of ``symbols_per_feed`` of them), named
``<venue>.<n>``. Every process that runs ``exbus ingest`` with the same feed list is a
*member* of bucket ``feeds``:

- ``member.<id>``: the member, re-written every tick; ``feed.<venue>.<n>``: the lease of the
  feed's owner, re-written by it every tick by compare-and-swap on the key's revision.
- Liveness is read from revisions, never from clocks: a member watches the bucket and
  counts a key expired when its revision stayed the same for ``lease_s`` of its own
  monotonic time. So clock skew between hosts does not matter.
- Each feed goes to one live member, by rendezvous hashing of the feed's name over the live
  members: adding a process moves about 1/N of the feeds to it, and removing one spreads
  its feeds over the rest. The owner of a feed that now belongs to another member stops it
  and deletes its lease (a handover), and the new owner takes the feed at once. A dead
  owner's lease is taken one ``lease_s`` after its last renewal.
- Fencing: the owner renews with the revision it wrote last. A renewal that finds another
  revision (the lease was taken meanwhile: this process was paused, or cut off from the
  store) stops the feed at once. Publishing is also gated. A feed publishes only while its
  last renewal is younger than ``lease_s``, so a process that wakes from a pause publishes
  nothing before it learns whether it still owns the feed. A taker waits ``lease_s`` from
  the last renewal it saw, so two processes never publish one feed for longer than that.
- Takeover: the new owner connects, takes fresh snapshots (the feed's normal start), and
  first publishes a ``gap`` status per symbol on ``md.<venue>.status`` naming the takeover,
  so subscribers know that messages between the two owners are missing.

Hot standby (``standby``): each process also runs, connected and with its books current but
publishing nothing, the feeds it is next in line for. When it takes one over, it publishes
the gap status and then every book as it stands, at once: no connect, no snapshot fetch.

Bad states (a clear error is logged, and this process keeps what it owns and takes nothing
new, so there are never two publishers and never a silent stop):

- the store does not answer (JetStream unavailable): owned feeds keep publishing while the
  renewals fail with errors rather than with a conflict, and nothing is taken;
- a member with another feed list (two configs): nothing is taken or handed over until
  the lists agree;
- a value in the bucket that this layout cannot read (an older exbus): the same, naming
  the key.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import msgspec
from nats.js.errors import KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KV_DEL, KV_PURGE

from schemas import encode, subjects
from schemas.market import FeedStatus
from services.bus.streams import KV_FEEDS
from services.ingestor.transport import Backoff
from services.logs import get_logger

log = get_logger("feeds")

LAYOUT = 1
"""The layout of the values in bucket ``feeds``; a value of another layout is refused."""


_MEMBER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class MemberValue(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    layout: int
    feeds: str
    """Digest of the member's feed list: members with different lists do not share."""
    host: str = ""
    pid: int = 0


class LeaseValue(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    layout: int
    owner: str


class LayoutError(ValueError):
    """A value in the bucket that this version of exbus cannot read."""


def feeds_digest(feed_ids: list[str], extra: str = "") -> str:
    """A short digest of a feed list (and of what each feed subscribes)."""
    return hashlib.sha256(("\n".join(sorted(feed_ids)) + "\n" + extra).encode()).hexdigest()[:16]


def rendezvous_ranking(feed_id: str, members: list[str]) -> list[str]:
    """The members in the order a feed goes to them: by the hash of (member, feed), highest
    first (stable as members come and go)."""
    return sorted(members, key=lambda m: hashlib.blake2b(f"{m}/{feed_id}".encode(), digest_size=8).digest(),
                  reverse=True)


def rendezvous_owner(feed_id: str, members: list[str]) -> str | None:
    """The member a feed goes to (None: no members)."""
    ranking = rendezvous_ranking(feed_id, members)
    return ranking[0] if ranking else None


@dataclass
class Seen:
    """A key as this process last saw it: revision, when (monotonic) that revision was first
    seen, its value (None: deleted)."""

    revision: int
    since: float
    value: Any


class RunningFeed(Protocol):
    """One feed's connections and books (services.ingestor.service.Ingestor)."""

    async def run(self) -> Any: ...
    def publish_books(self) -> None: ...


FeedFactory = Callable[[str, asyncio.Event, Callable[[], bool]], RunningFeed]
"""``make(feed_id, stop, may_publish)``: a feed that runs until ``stop`` and publishes only
while ``may_publish()``."""


@dataclass
class OwnedFeed:
    """A feed this process runs: as its owner (lease revision, last renewal), or warm as its
    standby (revision 0)."""

    revision: int
    renewed: float
    """Monotonic time when the last successful renewal was *sent* (publishing is allowed until
    ``renewed + lease_s``)."""
    feed: RunningFeed | None = None
    task: asyncio.Task[Any] | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    store_failing: bool = False


class FeedOwnership:
    """This process's share of the feeds: claims, renews, hands over and takes over leases
    in KV bucket ``feeds`` and starts and stops the feeds it owns (see the module)."""

    def __init__(self, kv: Any, nc: Any, feed_ids: list[str], make_feed: FeedFactory, *,
                 venue_of: Callable[[str], str], symbols_of: Callable[[str], list[str]],
                 lease_s: float = 1.0, digest_extra: str = "", member_id: str | None = None,
                 standby: bool = False) -> None:
        if lease_s <= 0:
            raise ValueError("feed lease_s must be positive")
        self.kv = kv
        self.nc = nc
        self.feed_ids = sorted(feed_ids)
        self.make_feed = make_feed
        self.standby = standby
        """Also run warm, without publishing, the feeds this process is next in line for."""
        self.standbys: dict[str, OwnedFeed] = {}
        self.venue_of = venue_of
        self.symbols_of = symbols_of
        self.lease_s = lease_s
        self.tick_s = lease_s / 5
        if member_id is not None and not _MEMBER_ID.match(member_id):
            raise ValueError(f"ingestor member_id {member_id!r}: 1-64 letters, digits, '-' or '_'")
        host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:20]
        self.id = member_id or f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.digest = feeds_digest(self.feed_ids, digest_extra)
        self.owned: dict[str, OwnedFeed] = {}
        self.seen: dict[str, Seen] = {}
        self.takeovers: list[tuple[str, str | None]] = []
        """(feed, previous owner) of every feed this process took, in order."""
        self.problem: str | None = None
        """Why this process takes nothing new right now (None: all is well)."""
        self._member_rev: int | None = None
        self._watch_ready = asyncio.Event()
        self._problems_logged: set[str] = set()

    # -- the loop ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Share the feeds until ``stop``; then hand every owned feed over."""
        watcher = asyncio.create_task(self._watch(stop))
        try:
            await asyncio.wait_for(self._watch_ready.wait(), 10)
            while not stop.is_set():
                try:
                    await self.tick()
                except Exception as e:  # noqa: BLE001 - keep sharing through bus trouble; the next tick retries
                    log.error("feed sharing round failed", member=self.id, error=repr(e))
                try:
                    await asyncio.wait_for(stop.wait(), self.tick_s)
                except asyncio.TimeoutError:
                    pass
        finally:
            await self._release_all()
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    async def tick(self) -> None:
        """One round: renew the member key and the leases, then hand over and take feeds."""
        problem = None
        try:
            await self._renew_member()
        except Exception as e:  # noqa: BLE001 - the store; logged as the problem below
            problem = f"the lease store does not answer ({type(e).__name__}): keeping the feeds owned, taking none"
        await self._renew_leases()
        if problem is None:
            problem = self._check_members()
        self._set_problem(problem)
        for feed_id, owned in list(self.owned.items()):
            if owned.task is not None and owned.task.done():
                await self._lost(feed_id, "its feed stopped", release=True)  # an error ended it: hand it on
        for feed_id, warm in list(self.standbys.items()):
            if warm.task is not None and warm.task.done():
                del self.standbys[feed_id]  # started again below while still next in line
        if self.problem is not None:
            return
        live = self.live_members()
        for feed_id in self.feed_ids:
            ranking = rendezvous_ranking(feed_id, live)
            wanted = ranking[0]
            if feed_id in self.owned:
                if wanted != self.id:
                    await self._hand_over(feed_id, wanted)
            elif wanted == self.id:
                await self._claim(feed_id)
            next_in_line = self.standby and feed_id not in self.owned and len(ranking) > 1 and ranking[1] == self.id
            if next_in_line and feed_id not in self.standbys:
                log.info("feed kept warm", feed=feed_id, member=self.id, owner=wanted)
                self.standbys[feed_id] = self._start(feed_id, OwnedFeed(revision=0, renewed=0.0))
            elif not next_in_line and feed_id in self.standbys:
                log.info("feed no longer kept warm", feed=feed_id, member=self.id, owner=wanted)
                await self._stop(self.standbys.pop(feed_id))

    def live_members(self) -> list[str]:
        """Members whose key changed within ``lease_s`` (and this one)."""
        now = time.monotonic()
        live = {self.id}
        for key, seen in self.seen.items():
            if key.startswith("member.") and seen.value is not None and now - seen.since < self.lease_s:
                live.add(key[len("member."):])
        return sorted(live)

    def may_publish(self, feed_id: str) -> bool:
        """Whether ``feed_id``'s messages go out now (see the module: fencing)."""
        owned = self.owned.get(feed_id)
        if owned is None:
            return False
        return owned.store_failing or time.monotonic() - owned.renewed < self.lease_s

    # -- members -----------------------------------------------------------------------------

    async def _renew_member(self) -> None:
        value = encode(MemberValue(layout=LAYOUT, feeds=self.digest, host=socket.gethostname()[:64], pid=os.getpid()))
        key = f"member.{self.id}"
        if self._member_rev is not None:
            try:
                self._member_rev = await self.kv.update(key, value, last=self._member_rev)
                return
            except KeyWrongLastSequenceError:
                pass  # deleted or purged meanwhile (bucket TTL after a long pause): write it anew
        self._member_rev = await self.kv.put(key, value)

    def _check_members(self) -> str | None:
        now = time.monotonic()
        for key, seen in sorted(self.seen.items()):
            if isinstance(seen.value, LayoutError):  # however old: it is there until removed
                return f"{seen.value}: taking no feeds until it is gone"
            if seen.value is None or now - seen.since >= self.lease_s:
                continue
            if key.startswith("member.") and key != f"member.{self.id}" and seen.value.feeds != self.digest:
                return (f"member {key[len('member.'):]} runs another feed list (digest {seen.value.feeds}, this one "
                        f"{self.digest}): keeping the feeds owned, taking none until the lists agree")
        return None

    def _set_problem(self, problem: str | None) -> None:
        if problem != self.problem:
            if problem is not None:
                log.error("feed sharing paused", member=self.id, problem=problem, owned=sorted(self.owned))
            elif self.problem is not None:
                log.info("feed sharing resumed", member=self.id)
        self.problem = problem

    # -- leases ------------------------------------------------------------------------------

    def _lease(self) -> bytes:
        return encode(LeaseValue(layout=LAYOUT, owner=self.id))

    async def _renew_leases(self) -> None:
        for feed_id, owned in list(self.owned.items()):
            sent = time.monotonic()
            try:
                owned.revision = await self.kv.update(f"feed.{feed_id}", self._lease(), last=owned.revision)
                owned.renewed, owned.store_failing = sent, False
            except KeyWrongLastSequenceError:
                await self._lost(feed_id, "its lease was taken by another process")
            except Exception as e:  # noqa: BLE001 - the store does not answer: keep the feed (see the module)
                if not owned.store_failing:
                    log.error("feed lease not renewed: the store does not answer; keeping the feed",
                              feed=feed_id, error=type(e).__name__)
                owned.store_failing = True

    async def _claim(self, feed_id: str) -> None:
        """Take ``feed_id`` if its lease is free: never written, deleted, or expired."""
        key = f"feed.{feed_id}"
        seen = self.seen.get(key)
        previous: str | None = None
        try:
            if seen is None or seen.value is None:
                if seen is None:
                    revision = await self.kv.create(key, self._lease())
                else:  # deleted (handed over): create anew on top of the delete marker
                    revision = await self.kv.update(key, self._lease(), last=seen.revision)
            else:
                if isinstance(seen.value, LayoutError):
                    return
                if seen.value.owner == self.id:  # this process's own lease from before a restart of the loop
                    previous = None
                elif time.monotonic() - seen.since < self.lease_s:
                    return  # still held
                else:
                    previous = seen.value.owner
                revision = await self.kv.update(key, self._lease(), last=seen.revision)
        except Exception as e:  # noqa: BLE001 - someone was faster (a wrong last revision), or the store
            log.debug("feed not claimed", feed=feed_id, error=type(e).__name__)
            return
        sent = time.monotonic()
        warm = self.standbys.pop(feed_id, None)
        reason = (f"takeover: {self.id} took the feed from {previous} (lease expired)" if previous
                  else f"handover: {self.id} took the feed from its previous owner")
        if seen is not None:
            self.takeovers.append((feed_id, previous))
            await self._publish_gap(feed_id, reason + (", its books kept warm" if warm else ""))
        log.info("feed owned", feed=feed_id, member=self.id, previous=previous, warm=warm is not None)
        if warm is not None and warm.task is not None and not warm.task.done():
            warm.revision, warm.renewed = revision, sent
            self.owned[feed_id] = warm  # its gate opens: publishing from here on
            assert warm.feed is not None
            warm.feed.publish_books()  # right after the gap status: subscribers rebuild their books
            return
        if warm is not None:
            await self._stop(warm)
        self.owned[feed_id] = self._start(feed_id, OwnedFeed(revision=revision, renewed=sent))

    def _start(self, feed_id: str, entry: OwnedFeed) -> OwnedFeed:
        entry.feed = self.make_feed(feed_id, entry.stop, lambda f=feed_id: self.may_publish(f))
        entry.task = asyncio.create_task(entry.feed.run())
        return entry

    async def _publish_gap(self, feed_id: str, reason: str) -> None:
        venue, now = self.venue_of(feed_id), time.time_ns()
        try:
            for symbol in self.symbols_of(feed_id):
                status = FeedStatus(venue=venue, state="gap", ts=now, symbol=symbol, reason=reason)  # type: ignore[arg-type]
                await self.nc.publish(subjects.md_status(venue), encode(status))
        except Exception as e:  # noqa: BLE001 - the bus is away: the feed's own statuses follow when it is back
            log.error("takeover gap status not published", feed=feed_id, error=repr(e))

    async def _stop_feed(self, feed_id: str) -> OwnedFeed | None:
        owned = self.owned.pop(feed_id, None)
        if owned is not None:
            await self._stop(owned)
        return owned

    @staticmethod
    async def _stop(entry: OwnedFeed) -> None:
        if entry.task is None:
            return
        entry.stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(entry.task), 5)
        except Exception:  # noqa: BLE001 - a feed that will not stop in time is cancelled
            entry.task.cancel()
            await asyncio.gather(entry.task, return_exceptions=True)

    async def _lost(self, feed_id: str, why: str, *, release: bool = False) -> None:
        """Stop ``feed_id``; ``release``: also delete its lease (this process still holds it)."""
        log.warning("feed given up", feed=feed_id, member=self.id, why=why)
        owned = await self._stop_feed(feed_id)
        if owned is not None and release:
            await self._delete_lease(feed_id, owned.revision)

    async def _hand_over(self, feed_id: str, to: str | None) -> None:
        log.info("feed handed over", feed=feed_id, member=self.id, to=to)
        owned = await self._stop_feed(feed_id)
        if owned is not None:
            await self._delete_lease(feed_id, owned.revision)

    async def _delete_lease(self, feed_id: str, revision: int) -> None:
        try:
            await self.kv.delete(f"feed.{feed_id}", last=revision)
        except Exception as e:  # noqa: BLE001 - taken meanwhile, or the store: it expires anyway
            log.debug("lease not deleted", feed=feed_id, error=type(e).__name__)

    async def _release_all(self) -> None:
        for feed_id in list(self.owned):
            await self._hand_over(feed_id, None)
        for feed_id in list(self.standbys):
            await self._stop(self.standbys.pop(feed_id))
        if self._member_rev is not None:
            try:
                await self.kv.delete(f"member.{self.id}", last=self._member_rev)
            except Exception:  # noqa: BLE001 - it expires
                pass

    # -- the watch ---------------------------------------------------------------------------

    async def _watch(self, stop: asyncio.Event) -> None:
        """Keep ``seen`` current from a watch of the bucket (restarted after bus errors)."""
        backoff = Backoff(0.1, 2.0)
        while not stop.is_set():
            try:
                watcher = await self.kv.watchall()
                try:
                    async for entry in watcher:
                        if entry is None:
                            self._watch_ready.set()
                            continue
                        self._saw(entry)
                        backoff.reset()
                finally:
                    try:
                        await asyncio.shield(watcher.stop())
                    except Exception:  # noqa: BLE001
                        pass
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the store is away; the ticks say so
                log.debug("feeds watch ended", error=type(e).__name__)
            await asyncio.sleep(backoff.next())

    def _saw(self, entry: Any) -> None:
        key = entry.key
        known = self.seen.get(key)
        if known is not None and known.revision >= entry.revision:
            return
        value: Any
        if entry.operation in (KV_DEL, KV_PURGE) or not entry.value:
            value = None
        else:
            kind = MemberValue if key.startswith("member.") else LeaseValue if key.startswith("feed.") else None
            try:
                if kind is None:
                    raise msgspec.ValidationError("unknown key")
                value = msgspec.json.decode(entry.value, type=kind)
                if value.layout != LAYOUT:
                    raise msgspec.ValidationError(f"layout {value.layout}")
            except (msgspec.DecodeError, msgspec.ValidationError) as e:
                value = LayoutError(f"bucket {KV_FEEDS} holds {key!r} in a layout this exbus (layout {LAYOUT}) "
                                    f"cannot read ({e}); an older exbus wrote it, or another program")
        self.seen[key] = Seen(entry.revision, time.monotonic(), value)


async def feeds_bucket(js: Any) -> Any:
    """The KV bucket of the feed leases (bus set-up creates it), with a clear error when
    JetStream or the bucket is missing."""
    try:
        return await js.key_value(KV_FEEDS)
    except NotFoundError:
        raise RuntimeError(f"KV bucket {KV_FEEDS!r} not found: run the bus set-up (exbus bus up / any service "
                           "start creates it) or set ingestor.share_feeds = false") from None


__all__ = ["FeedFactory", "FeedOwnership", "KV_FEEDS", "LAYOUT", "LayoutError", "RunningFeed", "feeds_bucket",
           "feeds_digest", "rendezvous_owner", "rendezvous_ranking"]
