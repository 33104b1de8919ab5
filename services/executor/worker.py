"""Handling one order command from ORDERS: exactly one venue order per command.

validate -> claim the client order id (KV create) -> mark ``sent`` before the request
leaves -> lease, credentials, sign, send (services.executor.gateway) -> parse -> publish
the outcome event (Nats-Msg-Id = event id) -> mark ``done`` -> ack_sync. A redelivered
command whose state says ``sent``, and every OutcomeUnknown, is resolved by querying the
venue by client order id; only a venue that answers "no such order" after the query
gets the order sent again. Malformed commands get a ``rejected`` event; undecodable ones
go to the dead-letter subject; both are terminated, never redelivered.

A JetStream leader lost with its node (SIGKILL) is re-elected within seconds, and no
command waits for ``ack_wait`` meanwhile (:func:`through_failover`): the steps after the
venue's answer (event, order state, ack) are retried through the election; a step no
server received (no responders) is run again at once, as its redelivery would run it (the
order state decides, compare-and-swap keeps one sender); a command interrupted otherwise
(a timeout: maybe applied) is handed back for an immediate redelivery (a confirmed nak).
"""

from __future__ import annotations

import asyncio
import time
import traceback
from decimal import Decimal
from typing import Any

import msgspec
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError

import schemas
from schemas import subjects
from schemas.orders import CancelOrder, DeadLetter, OrderCommand, OrderEvent, PlaceOrder
from schemas.queries import OrderInfo, OrderStatusQuery
from services.executor.credentials import CredentialsUnavailable
from services.executor.gateway import VenueGateway
from services.executor.ratelimit import LeaseTimeout
from services.executor.state import OrderRecord, OrderStates, order_key
from services.logs import get_logger
from services.observability.alerts import AlertPublisher
from services.observability.catalog import EXECUTOR as METRICS
from services.venues.base import CancelAccepted
from services.venues.errors import (
    MarketRulesViolation, NetworkError, OrderNotFound, OutcomeUnknown, RateLimited, VenueError,
    VenueUnavailable,
)
from services.venues.rules import MarketRules, check_order

log = get_logger("executor")

STATUS_OF_STATE = {"open": "accepted", "partially_filled": "partially_filled", "filled": "filled",
                   "canceled": "canceled", "expired": "expired", "rejected": "rejected"}
OPEN_STATES = frozenset({"open", "partially_filled"})
BUS_ERRORS = (NatsError, asyncio.TimeoutError)
"""What JetStream answers while a stream or consumer has no leader: no responders (503),
a timeout, "not available"; nats-py's JetStream API errors derive from NatsError."""
NOT_RECEIVED = (NoRespondersError, NoStreamResponseError, ServiceUnavailableError)
"""Answers that mean no server took the request (the stream or consumer has no leader right
now): sending it again cannot do anything twice."""
STEP_TIMEOUT_S = 2.0
"""First attempt of a step retried through a failover: a request that went to a leader
killed meanwhile is given up after this (elections take 4-9 s)."""
RETRY_TIMEOUT_S = 0.5
"""Later attempts, and every attempt while the bus is in trouble: an election is running,
the step goes through as soon as it ends. (A publish to ORDER_EVENTS gets no "no
responders" while strategies subscribe to its subjects: it can only time out.)"""
TROUBLE_S = 20.0
"""A bus error seen this recently (by any step of this process) means a failover may be
running: first attempts use RETRY_TIMEOUT_S too."""
RIDE_THROUGH_S = 30.0
"""How long a step is retried before the command is left to its redelivery."""
_last_trouble = -TROUBLE_S


async def through_failover(step: Any, deadline_s: float = RIDE_THROUGH_S,
                           retry_on: tuple[type[BaseException], ...] = BUS_ERRORS) -> Any:
    """``await step(timeout)`` until it succeeds, retrying ``retry_on`` errors (short, growing
    pauses; ``timeout`` STEP_TIMEOUT_S first, then RETRY_TIMEOUT_S) for up to ``deadline_s``.
    For steps safe to repeat: de-duplicated publishes, acks, requests nobody received. The
    last error is raised after the deadline."""
    global _last_trouble
    deadline = time.monotonic() + deadline_s
    pause = 0.05
    timeout = RETRY_TIMEOUT_S if time.monotonic() - _last_trouble < TROUBLE_S else STEP_TIMEOUT_S
    while True:
        try:
            return await step(timeout)
        except retry_on:
            _last_trouble = time.monotonic()
            if _last_trouble + pause > deadline:
                raise
            await asyncio.sleep(pause)
            pause, timeout = min(pause * 2, 0.2), RETRY_TIMEOUT_S


async def confirmed(msg: Any, payload: bytes) -> None:
    """Send an ack-type reply (-NAK, +WPI) as a request the consumer's leader answers, so a
    reply lost with a dead leader is sent again (nats-py's nak() and in_progress() are
    fire-and-forget: a lost nak would leave the command to ``ack_wait``)."""
    await through_failover(lambda t: msg._client.request(msg.reply, payload, timeout=t))


def interrupted_at(e: BaseException) -> str:
    """The innermost exbus function an error came through (for the log)."""
    frames = [f.name for f in traceback.extract_tb(e.__traceback__) if "/services/" in f.filename]
    return frames[-1] if frames else "?"


def nak_payload(delay_s: float) -> bytes:
    return b"-NAK " + msgspec.json.encode({"delay": int(delay_s * 1e9)}) if delay_s > 0 else b"-NAK"


class Envelope(msgspec.Struct):
    """The routing fields of a command, read without the contract's checks, so a
    malformed command can still be answered on its order's subject."""

    venue: str = ""
    account: str = ""
    symbol: str = ""
    client_order_id: str = ""
    command_id: str = ""


class Retry(Exception):
    """Not finished yet (lease not granted, fleet blocked, outcome not known yet): redeliver
    the command later. ``error`` is the code the command ends with if this was its last
    delivery; None when another replica owns the command and will publish its outcome."""

    def __init__(self, delay_s: float, reason: str, error: str | None = "internal") -> None:
        super().__init__(reason)
        self.delay_s = delay_s
        self.error = error


def event_for(command: PlaceOrder | CancelOrder, status: str, *, info: OrderInfo | None = None,
              error: str | None = None, reason: str | None = None, client_order_id: str | None = None) -> OrderEvent:
    """The event a command ends with; its id is derived from the command, so publishing
    it again (after a crash) is dropped by the server's de-duplication."""
    now = schemas.now_ns()
    place = command if isinstance(command, PlaceOrder) else None
    return OrderEvent(
        event_id=f"{command.command_id}.{status}", command_id=command.command_id, venue=command.venue,
        account=command.account, symbol=command.symbol, client_order_id=client_order_id or command.client_order_id,
        status=status, ts_event=(info.ts_updated or info.ts_created or now) if info else now, ts=now,  # type: ignore[arg-type]
        venue_order_id=info.venue_order_id if info else None,
        side=place.side if place else (info.side if info else None),
        order_type=place.order_type if place else (info.order_type if info else None),
        price=place.price if place else (info.price if info else None),
        quantity=place.quantity if place else (info.quantity if info else None),
        filled_quantity=info.filled_quantity if info else Decimal(0),
        average_price=info.average_price if info else None,
        error=error, reason=reason,  # type: ignore[arg-type]
    )


def final_refusal(cmd: PlaceOrder | CancelOrder, e: Exception) -> OrderEvent:
    """The outcome of a call the venue or exbus refused: a rejected event, or Retry when
    nothing was sent because of rate limits (the fleet waits, then the command is redelivered)."""
    if isinstance(e, RateLimited):
        raise Retry(min(e.retry_after or 5.0, 60.0), f"rate limited: {e}", "rate_limited") from None
    if isinstance(e, LeaseTimeout):
        raise Retry(5.0, str(e), "rate_limited") from None
    if isinstance(e, CredentialsUnavailable):
        return event_for(cmd, "rejected", error="auth_error", reason=str(e))
    assert isinstance(e, VenueError)
    return event_for(cmd, "rejected", error=e.code, reason=str(e))  # type: ignore[arg-type]


class CommandWorker:
    """Processes commands for one replica; every replica shares the KV state."""

    def __init__(self, js: Any, gateway: VenueGateway, states: OrderStates, *,
                 reconcile_delays_s: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0),
                 send_attempts: int = 3, max_deliver: int = 10, progress_every_s: float = 5.0) -> None:
        self.js = js
        self.gateway = gateway
        self.states = states
        self.reconcile_delays_s = tuple(max(0.0, d) for d in reconcile_delays_s) or (0.0,)
        """At least one look: "no such order" is never concluded without asking."""
        self.send_attempts = send_attempts
        self.max_deliver = max_deliver
        self.progress_every_s = progress_every_s
        """In-progress acks while a command runs (well inside ``ack_wait``)."""
        self._rules: dict[str, dict[str, MarketRules]] = {}
        self.processed = 0
        self.alerts: AlertPublisher | None = None
        """Where auth errors and dead letters are alerted (alerts.<severity>.<name>)."""

    # --- the message loop's entry point ------------------------------------------------------
    async def handle(self, msg: Any) -> None:
        """Process one ORDERS message to its end: ack, term, or nak for a later retry."""
        received = time.perf_counter()
        try:
            command = schemas.decode(msg.data, OrderCommand)
        except msgspec.DecodeError as e:
            await self._malformed(msg, str(e))
            return
        heartbeat = asyncio.create_task(self._keep_alive(msg))
        try:
            # a step no server received (its leader is being elected) is run again here, as its
            # redelivery would run it (the order state decides), without waiting for one
            event = await through_failover(lambda _: self._decide(command, msg), retry_on=NOT_RECEIVED)
            if event is not None:
                await self.publish(event)
                METRICS.command(command.venue, event.status, received)
                if isinstance(command, PlaceOrder):
                    await through_failover(lambda _: self._finish(command, event))
            await through_failover(lambda t: msg.ack_sync(timeout=t))
            self.processed += 1
        except Retry as r:
            delivery = getattr(msg.metadata, "num_delivered", 1)
            if delivery < self.max_deliver:
                log.info("command deferred", command_id=command.command_id, reason=str(r), delay_s=r.delay_s)
                METRICS.command(command.venue, "deferred")
                await confirmed(msg, nak_payload(r.delay_s))
            else:  # delivered max_deliver times already: end it here, never in silence
                await self._give_up(command, r, delivery, received)
                await through_failover(lambda t: msg.ack_sync(timeout=t))
        except BUS_ERRORS as e:
            # JetStream lost a leader mid-command (claim, lease, state): hand the command back
            # for an immediate redelivery, which reads the order state and resolves it (a
            # place marked sent is reconciled by query), instead of waiting out ack_wait
            delivery = getattr(msg.metadata, "num_delivered", 1)
            pause = min(0.05 * 2 ** (delivery - 1), 1.0)  # a lasting fault must not spin
            log.warning("command interrupted by the bus, handed back", command_id=command.command_id, error=repr(e),
                        at=interrupted_at(e), redeliver_in_s=pause)
            await confirmed(msg, nak_payload(pause))
        finally:
            heartbeat.cancel()

    async def _decide(self, command: PlaceOrder | CancelOrder, msg: Any) -> OrderEvent | None:
        """The command's outcome event (None: published before, only the ack is left)."""
        expected = subjects.orders_submit(command.venue, command.account)
        if msg.subject != expected:
            return event_for(command, "rejected", error="invalid_command",
                             reason=f"command for {command.venue}/{command.account} sent on {msg.subject}")
        if isinstance(command, PlaceOrder):
            return await self._place(command, getattr(msg.metadata, "num_delivered", 1))
        return await self._cancel(command)

    async def _give_up(self, command: PlaceOrder | CancelOrder, r: Retry, delivery: int, received: float) -> None:
        """The last delivery could not finish: publish a ``failed`` event saying why. A place
        that may have reached the venue ends ``outcome_unknown`` and stays tracked, so a live
        order found later still reports its fills."""
        if r.error is None:
            log.warning("last delivery while another replica owns the command", command_id=command.command_id)
            return
        event = event_for(command, "failed", error=r.error,  # type: ignore[arg-type]
                          reason=f"gave up after {delivery} deliveries: {r}")
        log.warning("command given up", command_id=command.command_id, error=r.error, reason=str(r))
        await self.publish(event)
        METRICS.command(command.venue, event.status, received)
        if isinstance(command, PlaceOrder):
            await self._finish(command, event)

    async def _keep_alive(self, msg: Any) -> None:
        while True:
            await asyncio.sleep(self.progress_every_s)
            try:
                await msg.in_progress()
            except BUS_ERRORS:  # reconnecting: the next one goes out once connected
                pass

    async def publish(self, event: OrderEvent) -> None:
        """Publish to ORDER_EVENTS, de-duplicated by event id; waits for the stream's ack,
        publishing again through a leader election (the server drops the repeats)."""
        subject = subjects.orders_event(event.venue, event.account, event.client_order_id)
        data = schemas.encode(event)
        await through_failover(lambda t: self.js.publish(subject, data, headers={"Nats-Msg-Id": event.event_id},
                                                         timeout=t))
        if event.error == "auth_error" and self.alerts is not None:
            await self.alerts.alert("critical", "auth_error", f"{event.venue}/{event.account}: {event.reason or 'auth_error'}",
                                    venue=event.venue, account=event.account,
                                    details={"command_id": event.command_id or "", "status": event.status})

    async def _malformed(self, msg: Any, reason: str) -> None:
        """A command that breaks the contract: a ``rejected`` event when its routing fields
        are readable, else a dead letter with the reason. Either way it is terminated."""
        now = schemas.now_ns()
        try:
            env = msgspec.json.decode(msg.data, type=Envelope)
            # without a command id, the message's stream sequence keeps the event id unique (two
            # such commands must not share one id: the second event would be de-duplicated away)
            anonymous = f"invalid-{msg.metadata.sequence.stream}"
            event = OrderEvent(event_id=f"{env.command_id or anonymous}.rejected", command_id=env.command_id or None,
                               venue=env.venue, account=env.account, symbol=env.symbol,  # type: ignore[arg-type]
                               client_order_id=env.client_order_id, status="rejected", error="invalid_command",
                               reason=reason, ts_event=now, ts=now)
            event = schemas.decode(schemas.encode(event), OrderEvent)  # routing fields follow the grammar
        except (msgspec.DecodeError, ValueError):
            parts = msg.subject.split(".") + ["", "", "", ""]
            dead = DeadLetter(subject=msg.subject, reason=reason, payload=bytes(msg.data[:65536]), ts=now)
            await self.js.publish(subjects.orders_deadletter(parts[2], parts[3]), schemas.encode(dead))
            METRICS.command(parts[2] if parts[2] in schemas.VENUES else "unknown", "dead_letter")
            log.warning("command dead-lettered", subject=msg.subject, reason=reason)
            if self.alerts is not None:
                venue = parts[2] if parts[2] in schemas.VENUES else None
                await self.alerts.alert("warning", "dead_letter", f"undecodable command on {msg.subject}: {reason}",
                                        key=subjects.orders_deadletter(parts[2], parts[3]), venue=venue,
                                        details={"subject": msg.subject[:200]})
        else:
            await self.publish(event)
            METRICS.command(event.venue, "rejected")
            log.info("command rejected", command_id=env.command_id, reason=reason)
        await msg.term()

    # --- place ------------------------------------------------------------------------------------
    async def _place(self, cmd: PlaceOrder, delivery: int) -> OrderEvent | None:
        key = order_key(cmd.venue, cmd.account, cmd.client_order_id)
        # a command that passes exbus's own checks is claimed already marked 'sent': one
        # compare-and-swap claims the client order id and records the send before the request
        ready = await self._ready_to_send(cmd)
        record, rev, created = await self.states.claim(key, OrderRecord(
            command_id=cmd.command_id, phase="sent" if ready else "claimed", symbol=cmd.symbol))
        if not created and record.command_id != cmd.command_id:
            return event_for(cmd, "rejected", error="duplicate_order",
                             reason=f"client order id already used by command {record.command_id}")
        if record.phase == "done":
            return None  # the outcome was published before a crash; nothing left but the ack
        if created and ready:
            return await self._send(cmd, record, delivery)
        try:
            adapter = self.gateway.adapter(cmd.venue)
        except ValueError as e:
            return event_for(cmd, "rejected", error="invalid_command", reason=str(e))
        if record.phase == "sent":
            info = await self._reconcile(cmd, record, delivery)
            if info is not None:
                return self._outcome(cmd, info)
        else:
            rejection = await self._check_rules(cmd)
            if rejection is not None:
                return rejection
        try:
            adapter.params_for("place_order", cmd, 0)
        except ValueError as e:  # an order shape this venue does not take
            return event_for(cmd, "rejected", error="invalid_order", reason=str(e))
        record.phase = "sent"
        new_rev = await self.states.update(key, record, rev)
        if new_rev is None:
            raise Retry(1.0, "order state changed under us; another replica is on it", error=None)
        return await self._send(cmd, record, delivery)

    async def _ready_to_send(self, cmd: PlaceOrder) -> bool:
        """The venue has an adapter and the order passes the market rules and the venue's
        order shapes (a command that does not is claimed, then rejected below)."""
        try:
            adapter = self.gateway.adapter(cmd.venue)
            adapter.params_for("place_order", cmd, 0)
        except ValueError:
            return False
        return await self._check_rules(cmd) is None

    async def _send(self, cmd: PlaceOrder, record: OrderRecord, delivery: int) -> OrderEvent:
        for attempt in range(self.send_attempts):
            try:
                info = await self.gateway.call(cmd.venue, cmd.account, "place_order", cmd)
                return self._outcome(cmd, info)
            except OutcomeUnknown as e:
                log.warning("order outcome unknown, querying", client_order_id=cmd.client_order_id, error=str(e))
                found = await self._reconcile(cmd, record, delivery)
                if found is not None:
                    return self._outcome(cmd, found)
                # the venue says it has no such order: sending once more is not blind
            except (NetworkError, VenueUnavailable) as e:
                if attempt + 1 == self.send_attempts:
                    return event_for(cmd, "failed", error=e.code, reason=str(e))  # type: ignore[arg-type]
                await asyncio.sleep(0.2 * (attempt + 1))
            except (RateLimited, LeaseTimeout) as e:
                # refused unprocessed, or never sent (no rate-limit lease: the fleet is blocked):
                # the redelivery sends again without reconciling first
                await self._unsend(cmd)
                return final_refusal(cmd, e)
            except (CredentialsUnavailable, VenueError) as e:
                return final_refusal(cmd, e)
            except NatsError as e:  # nats-py's own errors only: the transport raises none of them
                # the bus failed around the call (a leader lost): before the request (lease,
                # credentials, nonce) or after its answer (usage headers). No request of ours is
                # in flight, so one look at the venue tells which, once the bus answers again
                # (a redelivery would wait out the whole reconcile window instead)
                log.info("bus lost around a place, looking it up", client_order_id=cmd.client_order_id,
                         error=repr(e), at=interrupted_at(e))
                found = await self._look_up(cmd, record, delivery)
                if found is not None:
                    return self._outcome(cmd, found)
                # the venue has no such order: it was never sent
        return event_for(cmd, "failed", error="outcome_unknown",
                         reason="the venue neither confirmed nor denied the order after repeated queries")

    async def _look_up(self, cmd: PlaceOrder, record: OrderRecord, delivery: int) -> OrderInfo | None:
        """The order by client order id when none of this replica's requests for it is in
        flight: one answer is conclusive (retried through a failover); a venue that cannot
        answer now gets the full reconcile window."""
        query = OrderStatusQuery(symbol=cmd.symbol, client_order_id=cmd.client_order_id,
                                 venue_order_id=record.venue_order_id)

        async def look(_: float) -> OrderInfo | None:
            try:
                return await self.gateway.call(cmd.venue, cmd.account, "order_status", query)
            except OrderNotFound:
                return None

        try:
            return await through_failover(look)
        except (OutcomeUnknown, NetworkError, VenueUnavailable, LeaseTimeout, RateLimited, ValueError):
            return await self._reconcile(cmd, record, delivery)

    async def _unsend(self, cmd: PlaceOrder) -> None:
        """Mark a place the venue refused without processing it (a rate-limit answer), or one
        never sent (no lease), as not sent, so its redelivery sends it again instead of
        querying for an order that cannot exist. Left as it is when the record changed meanwhile (then the query decides)."""
        key = order_key(cmd.venue, cmd.account, cmd.client_order_id)
        record, rev = await self.states.latest(key)
        if record is not None and rev is not None and record.command_id == cmd.command_id and record.phase == "sent":
            record.phase = "claimed"
            await self.states.update(key, record, rev)

    async def _reconcile(self, cmd: PlaceOrder, record: OrderRecord, delivery: int) -> OrderInfo | None:
        """The order as the venue knows it, by client order id; None when the venue keeps
        answering that it has no such order (so it never got it). Raises Retry when the
        venue cannot tell yet."""
        query = OrderStatusQuery(symbol=cmd.symbol, client_order_id=cmd.client_order_id,
                                 venue_order_id=record.venue_order_id)
        delays = self.reconcile_delays_s
        if record.ts and time.time_ns() - record.ts > sum(delays) * 1e9:
            # marked sent longer ago than the whole window (a replica died after sending, the
            # command was redelivered): one "no such order" is conclusive. Waiting the window
            # again on every redelivery never ends while replicas keep dying.
            delays = (0.0,)
        not_found = 0
        for delay in delays:
            if delay:
                await asyncio.sleep(delay)
            try:
                info = await self.gateway.call(cmd.venue, cmd.account, "order_status", query)
                return info
            except OrderNotFound:
                not_found += 1
            except (OutcomeUnknown, NetworkError, VenueUnavailable, LeaseTimeout, ValueError) as e:
                # ValueError: the adapter cannot ask this venue for this order (yet): not known either
                log.info("order status not known yet", client_order_id=cmd.client_order_id, error=str(e))
            except RateLimited as e:
                await asyncio.sleep(min(e.retry_after or 1.0, 5.0))
        if not_found == len(delays):
            return None
        raise Retry(2.0, "the venue would not tell the order's status", "outcome_unknown")

    def _outcome(self, cmd: PlaceOrder, info: OrderInfo | CancelAccepted) -> OrderEvent:
        """The command's terminal event. An order the venue filled (in part) as it took it ends
        the command ``accepted``: its fills come next as events of their own, each with its
        trade id and fee, from the private stream or the trade history the tracker follows
        (the reply to a place request names totals, not fills)."""
        assert isinstance(info, OrderInfo)
        if info.state in ("filled", "partially_filled") and info.filled_quantity > 0:
            info = msgspec.structs.replace(info, state="open", filled_quantity=Decimal(0), average_price=None)
        return event_for(cmd, STATUS_OF_STATE[info.state], info=info,
                         error="invalid_order" if info.state == "rejected" else None,
                         reason="the venue rejected the order" if info.state == "rejected" else None)

    async def _finish(self, cmd: PlaceOrder, event: OrderEvent) -> None:
        key = order_key(cmd.venue, cmd.account, cmd.client_order_id)
        for attempt in range(5):
            # first the record as this replica wrote it ('sent'): a stale revision only fails the update
            record, rev = await (self.states.get(key) if attempt else self.states.latest(key))
            if record is None or rev is None or record.command_id != cmd.command_id:
                return  # a rejected duplicate: the record belongs to the first command
            record.phase = "done"
            record.status = event.status
            record.venue_order_id = event.venue_order_id or record.venue_order_id
            record.filled_quantity = event.filled_quantity
            # open orders, and orders that may exist at the venue (outcome unknown), stay tracked
            record.tracking = event.status in ("accepted", "partially_filled") or event.error == "outcome_unknown"
            if await self.states.update(key, record, rev) is not None:
                return

    async def _check_rules(self, cmd: PlaceOrder) -> OrderEvent | None:
        rules = self._rules.get(cmd.venue)
        if rules is None:
            try:
                rules = await self.gateway.call(cmd.venue, "public", "instruments", None)
            except Exception as e:  # rules unknown: the venue checks them itself
                log.warning("market rules unavailable", venue=cmd.venue, error=repr(e))
                rules = {}
            self._rules[cmd.venue] = rules
        market = rules.get(cmd.symbol)
        if market is None:
            return None
        try:
            check_order(cmd, market)
        except MarketRulesViolation as e:
            return event_for(cmd, "rejected", error="market_rules", reason=str(e))
        return None

    # --- cancel -------------------------------------------------------------------------------------
    async def _cancel(self, cmd: CancelOrder) -> OrderEvent:
        key = order_key(cmd.venue, cmd.account, cmd.client_order_id)
        record, _ = await self.states.get(key)
        if record is not None and record.venue_order_id and not cmd.venue_order_id:
            cmd = msgspec.structs.replace(cmd, venue_order_id=record.venue_order_id)
        try:
            self.gateway.adapter(cmd.venue)
        except ValueError as e:
            return event_for(cmd, "rejected", error="invalid_command", reason=str(e))
        for attempt in range(self.send_attempts):
            try:
                result = await self.gateway.call(cmd.venue, cmd.account, "cancel_order", cmd)
                info = result if isinstance(result, OrderInfo) else None
                event = event_for(cmd, "canceled", info=info)
                await self._untrack(key, "canceled")
                return event
            except OrderNotFound as e:
                return event_for(cmd, "rejected", error="order_not_found", reason=str(e))
            except ValueError as e:  # a cancel this venue's adapter cannot express
                return event_for(cmd, "rejected", error="invalid_command", reason=str(e))
            except (OutcomeUnknown, NetworkError, VenueUnavailable) as e:
                if attempt + 1 == self.send_attempts:
                    return event_for(cmd, "failed", error=e.code, reason=str(e))  # type: ignore[arg-type]
                await asyncio.sleep(0.2 * (attempt + 1))
            except (RateLimited, LeaseTimeout, CredentialsUnavailable, VenueError) as e:
                return final_refusal(cmd, e)
        raise AssertionError("unreachable")

    async def _untrack(self, key: str, status: str) -> None:
        for _ in range(5):
            record, rev = await self.states.get(key)
            if record is None or rev is None:
                return
            record.tracking = False
            record.status = status
            if await self.states.update(key, record, rev) is not None:
                return
