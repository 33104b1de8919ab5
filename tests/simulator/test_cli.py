"""`exbus sim`: runs standalone, prints its URLs, serves, stops cleanly on SIGTERM; flags and
TOML become simulator settings."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import aiohttp

from services.cli import build_parser
from services.simulator.commands import config_from_args
from services.simulator.server import VENUES
from services.venues import rest_adapter


async def test_exbus_sim_prints_its_urls_and_serves(exbus_cmd: list[str], clean_env: dict[str, str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        *exbus_cmd, "sim", "--no-replay", "--timeout-ratio", "1", env=clean_env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        urls: dict[str, str] = {}
        while "LEDGER" not in urls:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, (await proc.stderr.read()).decode()
            name, _, value = line.decode().strip().partition("=")
            urls[name] = value
        assert {f"{v.upper()}_URL" for v in VENUES} | {"BINANCE_WS_URL", "UPBIT_WS_URL", "LEDGER"} <= set(urls), urls
        async with aiohttp.ClientSession() as s:
            for venue in VENUES:  # each venue's own public market list, at its own port
                request = rest_adapter(venue, urls[f"{venue.upper()}_URL"]).build_request("instruments", None, None, 0)
                async with s.get(request.url) as r:
                    assert r.status == 200, (venue, r.status, await r.text())
            async with s.get(urls["BINANCE_URL"] + "/api/v3/ping") as r:
                assert (r.status, await r.json()) == (200, {})
            async with s.get(urls["UPBIT_URL"] + "/v1/market/all") as r:
                assert r.status == 200
            async with s.get(urls["BINANCE_URL"] + "/__sim/config") as r:
                (rule,) = (await r.json())["faults"]
                assert (rule["kind"], rule["route"], rule["ratio"]) == ("timeout", "place", 1.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0


def test_flags_and_toml_become_settings(tmp_path: Path) -> None:
    toml = tmp_path / "sim.toml"
    toml.write_text('[sim]\nreplay_speed = 4.0\n[[sim.faults]]\nkind = "drop"\nroute = "cancel"\n'
                    '[[sim.binance.accounts]]\nname = "x"\napi_key = "k"\nsecret = "topsecret-value"\n'
                    '[sim.binance.accounts.balances]\nUSDT = "5"\n'
                    '[sim.okx]\nport = 0\nrate_limits = { order = 2 }\n[[sim.okx.accounts]]\nname = "desk"\n'
                    'api_key = "ok"\nsecret = "okx-secret-value"\npassphrase = "okx-phrase-value"\n')
    args = build_parser().parse_args(["sim", "--sim-config", str(toml), "--latency-ms", "25",
                                      "--error-5xx-ratio", "0.1", "--upbit-port", "0", "--seed", "3"])
    config = config_from_args(args)
    assert (config.replay_speed, config.seed, config.upbit_port) == (4.0, 3, 0)
    assert [(f.kind, f.route, f.ratio, f.latency_ms) for f in config.faults] == [
        ("drop", "cancel", 1.0, 0.0), ("latency", "*", 1.0, 25.0), ("error_5xx", "place", 0.1, 0.0)]
    (account,) = config.binance.accounts
    assert (account.name, str(account.balances["USDT"])) == ("x", "5")
    assert account.secret == "topsecret-value" and "topsecret" not in repr(account) + str(config)
    (okx,) = config.okx.accounts
    assert (okx.name, okx.passphrase, config.okx.rate_limits) == ("desk", "okx-phrase-value", {"order": 2})
    assert "okx-secret" not in repr(okx) and "okx-phrase" not in repr(okx)


def test_a_bad_setting_names_the_key(tmp_path: Path, exbus_cmd: list[str], clean_env: dict[str, str]) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text('[sim]\nreplay_speed = "fast"\n')
    run = subprocess.run([*exbus_cmd, "sim", "--sim-config", str(toml)], capture_output=True, text=True,
                         timeout=60, env=clean_env)
    assert run.returncode != 0 and "replay_speed" in run.stderr, run.stderr
