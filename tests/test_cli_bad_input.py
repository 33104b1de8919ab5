"""Bad input to every `exbus` subcommand (issue 16, item 7): invalid JSON, unknown venue,
missing or unreadable files, wrong types, an unreachable NATS. Each answers with exactly
one line on stderr and exit status 2, never a traceback. And every long-running command
stops within 5 s of SIGTERM while NATS is unreachable, or after its server went away.

Every case runs as a real `python -m services.cli` process; the cases run in parallel.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from services.bus.embedded import EmbeddedNats
from services.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
RECORDING = ROOT.parent / "shared" / "data" / "recorded" / "BINANCE.ws.1.0"
"""A real Binance recording (../shared/data/recorded), for `replay` with a good file."""
EXBUS = [sys.executable, "-m", "services.cli"]
STOP_WITHIN_S = 5.0


def closed_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not (k.startswith("EXBUS_") or k == "NATS_URL")}
    env["PYTHONPATH"] = str(ROOT)
    for service in ("ingestor", "executor", "vault"):  # parallel processes: no fixed metrics port
        env[f"EXBUS_OBSERVABILITY_{service.upper()}_PORT"] = "0"
    return env


@dataclass(frozen=True)
class Case:
    id: str
    argv: list[str]
    expect: str
    """A piece of the one stderr line: the message names what is wrong."""
    stdin: str = ""
    env: dict[str, str] = field(default_factory=dict)
    nats: bool = True
    """NATS_URL points at a closed port (False: no NATS_URL at all)."""


BAD_TYPE = "connect_timeout_s"
CASES = [
    Case("up-bad-config", ["--config", "bad.toml", "up"], BAD_TYPE),
    Case("nats-bad-config", ["--config", "bad.toml", "nats"], BAD_TYPE),
    Case("demo-bad-config", ["--config", "bad.toml", "demo"], BAD_TYPE),
    Case("tail-unreachable", ["tail", "md.>"], "cannot connect to NATS"),
    Case("tail-no-nats-url", ["tail", "md.>"], "NATS_URL", nats=False),
    Case("schema-export-unwritable", ["schema", "export", "--out", "a_file/schemas"], "a_file/schemas"),
    Case("venue-sign-no-jsonl", ["venue", "sign"], "--jsonl"),
    Case("venue-call-invalid-json", ["venue", "call", "binance", "ticker", "--dry-run", "--args", "{bad"],
         "not valid JSON"),
    Case("venue-call-args-not-object", ["venue", "call", "binance", "ticker", "--dry-run", "--args", "[1]"],
         "JSON object"),
    Case("venue-call-wrong-type", ["venue", "call", "binance", "ticker", "--dry-run", "--args", '{"symbol": 5}'],
         "$.symbol"),
    Case("venue-call-unknown-venue", ["venue", "call", "nope", "ticker", "--dry-run"], "one of binance"),
    Case("venue-call-unknown-op", ["venue", "call", "binance", "nope", "--dry-run"], "unknown operation"),
    Case("venue-call-missing-credentials", ["venue", "call", "binance", "balance", "--dry-run",
                                            "--credentials", "missing.json"], "missing.json"),
    Case("venue-call-bad-credentials", ["venue", "call", "binance", "balance", "--dry-run",
                                        "--credentials", "creds-bad.json"], "not a credentials object"),
    Case("venue-parse-bad-header", ["venue", "parse", "binance", "ticker", "--status", "200", "--header", "x"],
         "NAME:VALUE"),
    Case("venue-parse-unknown-venue", ["venue", "parse", "nope", "ticker", "--status", "200"], "one of binance"),
    Case("venue-parse-bad-status", ["venue", "parse", "binance", "ticker", "--status", "ok"], "invalid int"),
    Case("ingest-unknown-venue", ["ingest", "--venue", "nope", "--symbols", "BTC-USDT"], "invalid choice"),
    Case("ingest-no-symbols", ["ingest", "--venue", "binance"], "--symbols"),
    Case("ingest-bad-config", ["--config", "bad.toml", "ingest"], BAD_TYPE),
    Case("ingest-unknown-venue-in-config", ["--config", "unknown-venue.toml", "ingest"], "'nope'"),
    Case("record-unwritable-out", ["record", "binance", "--symbols", "BTC-USDT", "--out", "a_file/rec"],
         "a_file/rec"),
    Case("replay-missing-file", ["replay", "missing.ws.0"], "missing.ws.0"),
    Case("replay-not-a-recording", ["replay", "BINANCE.ws.9"], "not a recording"),
    Case("replay-bad-speed", ["replay", str(RECORDING), "--speed", "fast"], "--speed"),
    Case("replay-unreachable", ["replay", str(RECORDING)], "cannot connect to NATS"),
    Case("vault-init-unwritable", ["vault", "init", "--key-file", "a_file/master.key"], "a_file"),
    Case("vault-run-no-master-key", ["vault", "run"], "master key"),
    Case("vault-rotate-no-key-file", ["vault", "rotate"], "master_key_file"),
    Case("vault-retire-no-key-file", ["vault", "retire"], "master_key_file"),
    Case("vault-backup-unreachable", ["vault", "backup", "backup.json"], "cannot connect to NATS"),
    Case("vault-restore-missing-file", ["vault", "restore", "missing.json"], "missing.json"),
    Case("vault-purge-unreachable", ["vault", "purge", "--dry-run"], "cannot connect to NATS"),
    Case("vault-dev-bootstrap-unreachable", ["vault", "dev-bootstrap"], "cannot connect to NATS"),
    Case("keys-add-invalid-json", ["keys", "add", "binance", "main", "--stdin"], "credentials", stdin="{bad"),
    Case("keys-add-unknown-venue", ["keys", "add", "nope", "main", "--stdin"], "nope", stdin="{}"),
    Case("keys-list-unreachable", ["keys", "list"], "cannot connect to NATS"),
    Case("keys-revoke-unknown-venue", ["keys", "revoke", "nope", "main"], "nope"),
    Case("service-register-unreachable", ["service", "register", "strategy"], "cannot connect to NATS"),
    Case("execute-no-nats-url", ["execute", "--sim-credentials"], "NATS_URL", nats=False),
    Case("execute-missing-identity", ["execute", "--identity", "missing.key"], "missing.key"),
    Case("sim-bad-config", ["sim", "--sim-config", "sim-bad.toml"], "seed"),
    Case("sim-missing-config", ["sim", "--sim-config", "missing.toml"], "missing.toml"),
    Case("config-check-missing-file", ["config", "check", "missing.toml"], "missing.toml"),
    Case("status-unreachable", ["status"], "cannot connect to NATS"),
    Case("status-no-nats-url", ["status"], "NATS_URL", nats=False),
    Case("status-bad-env-type", ["status"], BAD_TYPE, env={"EXBUS_NATS_CONNECT_TIMEOUT_S": "soon"}),
    Case("status-missing-config", ["--config", "missing.toml", "status"], "does not exist"),
    Case("status-unreadable-config", ["--config", "a_dir", "status"], "a_dir"),
    Case("status-config-not-toml", ["--config", "not.toml", "status"], "not valid TOML"),
    Case("alert-relay-bad-config", ["--config", "bad.toml", "alert-relay"], BAD_TYPE),
    Case("nats-users-unwritable", ["nats-users", "--out", "a_file/users"], "a_file/users"),
    Case("nats-certs-unwritable", ["nats-certs", "--out", "a_file/certs"], "a_file/certs"),
    Case("unknown-command", ["nope"], "invalid choice"),
]


def workspace(root: Path) -> Path:
    """The bad files the cases name, in the directory they run in."""
    (root / "bad.toml").write_text('[nats]\nconnect_timeout_s = "soon"\n')  # a string for a float
    (root / "sim-bad.toml").write_text('[sim]\nseed = "x"\n')
    (root / "unknown-venue.toml").write_text('[ingestor.venues.nope]\nsymbols = ["BTC-USDT"]\n')
    (root / "not.toml").write_text("[nats\nurl = 1\n")
    (root / "creds-bad.json").write_text("{bad")
    (root / "creds-bad.json").chmod(0o600)
    (root / "BINANCE.ws.9").write_text("hello\n")
    (root / "a_file").write_text("a file, not a directory\n")
    (root / "a_dir").mkdir()
    return root


def run_case(case: Case, cwd: Path, nats_url: str) -> subprocess.CompletedProcess[str]:
    env = {**base_env(), **case.env}
    if case.nats:
        env["NATS_URL"] = nats_url
        if case.expect == "cannot connect to NATS":  # gives up after it, as after the default 5 s
            env.setdefault("EXBUS_NATS_CONNECT_TIMEOUT_S", "1")
    return subprocess.run([*EXBUS, *case.argv], cwd=cwd, env=env, input=case.stdin, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case's finished process, run in parallel once for the module."""
    assert RECORDING.is_file(), f"{RECORDING} missing: ../shared must sit beside the project"
    cwd = workspace(tmp_path_factory.mktemp("bad-input"))
    url = f"nats://127.0.0.1:{closed_port()}"
    with ThreadPoolExecutor(max_workers=12) as pool:
        done = pool.map(lambda c: run_case(c, cwd, url), CASES)
        return {case.id: proc for case, proc in zip(CASES, done)}


def test_a_service_not_registered_leaves_no_key_file(results: dict[str, subprocess.CompletedProcess[str]],
                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    """Nothing half-done: `service register` that cannot reach the vault's bus removes the
    key it wrote, so running it again once NATS is back does not refuse on an existing file."""
    assert results["service-register-unreachable"].returncode == 2
    workspaces = list(tmp_path_factory.getbasetemp().glob("bad-input*"))
    assert workspaces and not any((w / ".exbus" / "vault" / "strategy.key").exists() for w in workspaces)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_exit_2(case: Case, results: dict[str, subprocess.CompletedProcess[str]]) -> None:
    proc = results[case.id]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}:\n{proc.stderr}"
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert lines[0].startswith("exbus") and case.expect in lines[0], lines[0]


def leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path
        return
    for name, sub in subs[0].choices.items():
        yield from leaf_commands(sub, path + (name,))


def command_of(argv: list[str]) -> tuple[str, ...]:
    """The subcommand path an argv runs (leading ``--config FILE`` skipped)."""
    words = argv[2:] if argv[:1] == ["--config"] else argv
    parser, path = build_parser(), ()
    for word in words:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or word not in subs[0].choices:
            break
        parser, path = subs[0].choices[word], path + (word,)
    return path


def test_every_subcommand_has_a_bad_input_case() -> None:
    covered = {command_of(case.argv) for case in CASES}
    missing = [" ".join(c) for c in leaf_commands(build_parser()) if c not in covered]
    assert not missing, f"add a bad-input case to CASES for: {', '.join(missing)}"


# -- SIGTERM -----------------------------------------------------------------------------

SERVICES = {
    "ingest": ["ingest", "--venue", "binance", "--symbols", "BTC-USDT", "--channels", "trade"],
    "tail": ["tail", "md.>"],
    "execute": ["execute", "--sim-credentials"],
    "vault run": ["vault", "run"],
    "up": ["up"],
    "alert-relay": ["alert-relay", "--host", "127.0.0.1", "--port", "0"],
}
"""Commands that run until stopped, each with the arguments to get it to its bus connection."""


class Running:
    """One command as a process, its output (stderr and stdout) in a file that can be waited on."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path, *,
                 command: list[str] = EXBUS) -> None:
        self.name = name
        self.log = cwd / f"{name.replace(' ', '-')}.stderr"
        self.proc = subprocess.Popen([*command, *argv], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=self.log.open("w"), stderr=subprocess.STDOUT)

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.stderr():
            assert self.proc.poll() is None, f"{self.name} exited ({self.proc.returncode}):\n{self.stderr()}"
            assert time.monotonic() < deadline, f"{self.name}: no {text!r} in {timeout_s} s:\n{self.stderr()}"
            time.sleep(0.05)


def stop_all(running: list[Running]) -> dict[str, float]:
    """SIGTERM every process at once; seconds until each exited (killed after 10 s)."""
    sent = time.monotonic()
    for r in running:
        r.proc.send_signal(signal.SIGTERM)
    took = {}
    for r in running:
        try:
            r.proc.wait(timeout=max(0.1, sent + 10 - time.monotonic()))
        except subprocess.TimeoutExpired:
            r.proc.kill()
            r.proc.wait()
        took[r.name] = time.monotonic() - sent
    return took


async def with_streams(nats_url: str) -> None:
    import nats

    from services.bus.streams import ensure_streams
    from services.config import StreamSettings

    nc = await nats.connect(nats_url)
    await ensure_streams(nc.jetstream(), StreamSettings())
    await nc.close()


def service_env(tmp_path: Path, nats_url: str) -> dict[str, str]:
    from services.vault.crypto import MasterKeyRing, write_master_keys

    key = tmp_path / "master.key"
    if not key.exists():
        write_master_keys(MasterKeyRing.generate(), key)
    return {**base_env(), "NATS_URL": nats_url, "EXBUS_LOG_LEVEL": "debug",
            "EXBUS_VAULT_MASTER_KEY_FILE": str(key)}


def assert_stopped(running: list[Running], took: dict[str, float]) -> None:
    for r in running:
        assert took[r.name] < STOP_WITHIN_S, f"{r.name} took {took[r.name]:.1f} s after SIGTERM:\n{r.stderr()[-3000:]}"
        assert r.proc.returncode in (0, 1), f"{r.name} exited {r.proc.returncode}:\n{r.stderr()[-3000:]}"
        assert "Traceback" not in r.stderr(), f"{r.name}:\n{r.stderr()[-3000:]}"


def test_services_stop_on_sigterm_while_nats_is_unreachable(tmp_path: Path) -> None:
    env = service_env(tmp_path, f"nats://127.0.0.1:{closed_port()}")
    env["EXBUS_NATS_CONNECT_TIMEOUT_S"] = "60"  # tail, a one-shot, would give up by itself after 5 s
    running = [Running(name, argv, env, tmp_path) for name, argv in SERVICES.items()]
    try:
        for r in running:
            r.wait_for("connecting to nats")  # in its connect attempt, which nats-py never ends
        time.sleep(0.5)
        took = stop_all(running)
    finally:
        for r in running:
            if r.proc.poll() is None:
                r.proc.kill()
    assert_stopped(running, took)
    for r in running:
        assert r.proc.returncode == 0, f"{r.name} exited {r.proc.returncode}:\n{r.stderr()[-3000:]}"


def test_services_stop_on_sigterm_after_their_nats_server_went_away(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    env = service_env(tmp_path, server.start_sync())
    asyncio.run(with_streams(env["NATS_URL"]))  # as a deployment has them (else execute stops: no ORDERS)
    running = [Running(name, argv, env, tmp_path) for name, argv in SERVICES.items()]
    try:
        for r in running:
            r.wait_for("nats connected")
        server.kill()  # the server dies: every client is left reconnecting
        for r in running:
            r.wait_for("nats disconnected")
        took = stop_all(running)
    finally:
        for r in running:
            if r.proc.poll() is None:
                r.proc.kill()
        server.kill()
    assert_stopped(running, took)


def test_commands_on_their_own_server_or_none_stop_on_sigterm(tmp_path: Path) -> None:
    """The rest of the long-running commands, each in its working state."""
    env = {**base_env(), "EXBUS_LOG_LEVEL": "debug"}
    commands = {  # name: (argv, the line that says it is running)
        "nats": (["nats"], "nats connected"),
        "sim": (["sim", "--venues", "binance", "--no-replay"], "LEDGER="),
        "record": (["record", "binance", "--symbols", "BTC-USDT", "--out", "rec.txt"], "ingesting"),
        "replay": (["replay", str(RECORDING), "--speed", "1"], "ingesting"),
    }
    running = [Running(name, argv, env, tmp_path) for name, (argv, _) in commands.items()]
    try:
        for r in running:
            r.wait_for(commands[r.name][1])
        took = stop_all(running)
    finally:
        for r in running:
            if r.proc.poll() is None:
                r.proc.kill()
    assert_stopped(running, took)
    assert [r.proc.returncode for r in running] == [0] * len(running), [r.stderr()[-2000:] for r in running]


STUBBORN = """
import asyncio, sys
from services.bus.lifecycle import run_until_signal
from services.logs import configure_logging

configure_logging()  # to stderr, where the test reads why it was cancelled

async def main(stop):
    print("ready", file=sys.stderr, flush=True)
    await stop.wait()
    await asyncio.sleep(60)  # a shutdown step that never ends by itself

sys.exit(run_until_signal(main))
"""


def test_a_main_that_does_not_wind_down_is_cancelled_within_5_s_or_at_a_second_signal(tmp_path: Path) -> None:
    running = [Running(name, ["-c", STUBBORN], base_env(), tmp_path, command=[sys.executable])
               for name in ("one signal", "two signals")]
    try:
        for r in running:
            r.wait_for("ready")
        sent = time.monotonic()
        for r in running:
            r.proc.send_signal(signal.SIGTERM)
        running[1].proc.send_signal(signal.SIGINT)
        running[1].proc.wait(timeout=10)
        second = time.monotonic() - sent
        running[0].proc.wait(timeout=10)
        first = time.monotonic() - sent
    finally:
        for r in running:
            if r.proc.poll() is None:
                r.proc.kill()
    assert 3.5 < first < STOP_WITHIN_S and "still running" in running[0].stderr(), (first, running[0].stderr())
    assert second < 2.0 and "second stop signal" in running[1].stderr(), (second, running[1].stderr())
    assert [r.proc.returncode for r in running] == [1, 1]
