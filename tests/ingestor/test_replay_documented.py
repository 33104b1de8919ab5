"""`exbus replay` on the recordings built from documented examples (tests/data/recorded,
see its README): the whole live path runs for venues without a real recording."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "services" / "simulator" / "recordings"

CASES = [
    ("COINBASE.ws.docs", "BTC-USD", {"trade": 1, "ticker": 1, "book": 3}),
    ("KORBIT.ws.docs", "BTC-KRW", {"trade": 1, "ticker": 1, "book": 2}),
    ("COINONE.ws.docs", "BTC-KRW", {"trade": 1, "ticker": 1, "book": 2}),
    ("BITHUMB.ws.docs", "BTC-KRW", {"trade": 1, "ticker": 1, "book": 2}),
]


@pytest.mark.parametrize(("name", "symbol", "expected"), CASES, ids=[c[0].split(".")[0].lower() for c in CASES])
def test_replay_summary(name: str, symbol: str, expected: dict, clean_env: dict) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "services.cli", "replay", str(DATA / name), "--speed", "max", "--symbols", symbol,
         "--channels", "trade,ticker,book"],
        capture_output=True, text=True, timeout=60, env=clean_env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["venue"] == name.split(".")[0].lower()
    assert summary["frames"] == len([l for l in (DATA / name).read_text().splitlines() if l[:1].isdigit()])
    assert summary["gaps"] == 0 and summary["checksum_failures"] == 0
    for channel, count in expected.items():
        assert summary["published"][channel] == count, (channel, summary)
