"""The demo's dev bootstrap: the simulator's paper keys (services/simulator/config.py
defaults) reach the dev executor through the vault."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import nats

from services.bus.streams import ensure_streams
from services.config import Config, StreamSettings
from services.simulator.server import VENUES
from services.vault.client import CredentialsClient
from services.vault.dev import DEV_SERVICE_ID, dev_bootstrap, simulator_paper_keys
from services.vault.service import run_vault


async def test_dev_bootstrap_serves_the_paper_keys(nats_url: str, tmp_path: Path) -> None:
    nc = await nats.connect(nats_url)
    await ensure_streams(nc.jetstream(), StreamSettings())
    config = Config()
    out = io.StringIO()
    identity = await dev_bootstrap(nc, config, root=tmp_path / "vault", out=out)
    assert "DEVELOPMENT master key" in out.getvalue()
    assert (tmp_path / "vault" / "dev-master.key").stat().st_mode & 0o777 == 0o600
    every_venue = [f"{venue}/demo" for venue in VENUES]
    assert sorted(config.vault.policy[DEV_SERVICE_ID]) == sorted(every_venue)
    again = await dev_bootstrap(nc, config, root=tmp_path / "vault", out=out)  # idempotent
    assert again.service_id == identity.service_id and sorted(config.vault.policy[DEV_SERVICE_ID]) == sorted(every_venue)

    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_vault(nc, config, stop, ready=ready))
    await asyncio.wait_for(ready.wait(), 10)
    client = CredentialsClient(nc, identity.service_id, identity.private_key)
    for (venue, account), expected in simulator_paper_keys().items():
        assert await client.get(venue, account) == expected
    await client.close()
    stop.set()
    await asyncio.wait_for(task, 10)
    await nc.drain()
