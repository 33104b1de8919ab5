"""The ``[executor]`` section of the config file."""

from __future__ import annotations

from typing import Literal

import msgspec


class ExecutorSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The ``[executor]`` section of the config file."""

    concurrency: int = 16
    """Commands one replica works on at once."""
    ack_wait_s: float = 10.0
    """A delivered command neither acked nor reported in progress this long is redelivered
    (then reconciled by its order state): a replica that died, a delivery lost with a NATS
    node. A running command sends in-progress acks every ack_wait/4 (at most 5 s). Longer
    than a NATS leader election (4-9 s), so commands at work are not handed out twice."""
    max_deliver: int = 10
    """Deliveries after which a command that still cannot finish ends in a ``failed`` event."""
    rate_limit_margin: float = 0.9
    """Share of each venue limit the fleet may use."""
    egress: str = "default"
    """Name of this fleet's egress IP (per-IP limits are counted per egress)."""
    egress_check: Literal["off", "warn"] = "warn"
    """On each key's first use, compare this executor's public address with the IPs the key
    is allowed from at the venue (recorded by `exbus keys add --allowed-ip`) and warn on a
    mismatch; skipped where the address cannot be known (services/executor/egress.py)."""
    egress_ip: str = ""
    """This executor's public egress address when known (a NAT gateway's static IP)."""
    egress_echo_url: str = ""
    """Else a URL answering with the caller's public IP (plain or JSON ``ip``, e.g.
    https://api.ipify.org); empty: no address is asked for and the check is skipped."""
    tracker_interval_s: float = 1.0
    poll_only: list[str] = []
    """Venues whose private order streams are not run: their open orders are polled."""
    request_timeout_s: float = 10.0
    """A venue request unanswered this long is a network error (a place or cancel: outcome
    unknown, resolved by querying the venue)."""
    reconcile_delays_s: list[float] = msgspec.field(default_factory=lambda: [0.0, 0.25, 0.5, 1.0, 2.0, 4.0])
    """Pauses before each status query that resolves an unknown outcome; only when every one
    of them answers "no such order" is the order sent again."""
    venue_urls: dict[str, str] = {}
    """Base URL per venue, e.g. the simulator's."""
    service_id: str = "executor"
    """The identity the executors present to the vault (`exbus service register NAME`)."""
    identity_file: str = ""
    """That identity's Ed25519 private key file (mode 0600); empty: no vault (``--sim-credentials``)."""
