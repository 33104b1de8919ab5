"""The embedded nats-server: starts on a free loopback port with JetStream, stops on
exit, and never outlives its owner, even one killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nats
import pytest

from services.bus.embedded import EmbeddedNats, EmbeddedServerError


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _wait_dead(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


async def test_starts_with_jetstream_on_loopback_and_stops(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    url = await server.start()
    pid = server.pid
    assert pid is not None and url.startswith("nats://127.0.0.1:")
    nc = await nats.connect(url)
    info = await nc.jetstream().account_info()
    assert info.limits is not None  # JetStream is enabled
    await nc.close()
    assert (tmp_path / "nats" / "jetstream").is_dir()
    await server.stop()
    assert _wait_dead(pid)
    assert server.pid is None


async def test_two_servers_get_different_ports(tmp_path: Path) -> None:
    async with EmbeddedNats(tmp_path / "a") as a, EmbeddedNats(tmp_path / "b") as b:
        assert a.url != b.url


async def test_a_bad_config_fails_with_the_servers_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text("this is { not a nats config\n")
    with pytest.raises(EmbeddedServerError, match="nats-server exited"):
        await EmbeddedNats(tmp_path / "nats", config_file=bad).start()


@pytest.mark.parametrize("how", ["exit", "sigterm", "sigkill"])
def test_no_stray_server_after_the_owner_ends(tmp_path: Path, how: str) -> None:
    """The owning process exits normally, is terminated, or is SIGKILLed: the server goes too."""
    script = textwrap.dedent(f"""
        import sys, time
        from services.bus.embedded import EmbeddedNats
        server = EmbeddedNats({str(tmp_path / 'nats')!r})
        server.start_sync()
        print(server.pid, flush=True)
        sys.stdin.readline()  # the test has seen the server alive
        if {how!r} == "exit":
            sys.exit(0)
        time.sleep(60)
    """)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    owner = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    assert owner.stdout is not None and owner.stdin is not None
    server_pid = int(owner.stdout.readline())
    assert _alive(server_pid)
    owner.stdin.write("go\n")
    owner.stdin.flush()
    if how == "sigterm":
        owner.send_signal(signal.SIGTERM)
    elif how == "sigkill":
        owner.kill()
    owner.wait(timeout=20)
    assert _wait_dead(server_pid), f"nats-server {server_pid} outlived its owner ({how})"
