"""`exbus venue sign --jsonl` and `exbus venue call --dry-run`, as an operator runs them."""

from __future__ import annotations

import json
import subprocess
import sys

BINANCE_DOC = {  # rest-api.md "SIGNED Endpoint Examples for POST /api/v3/order - HMAC Keys"
    "venue": "binance", "method": "POST", "path": "/api/v3/order",
    "params": [["symbol", "LTCBTC"], ["side", "BUY"], ["type", "LIMIT"], ["timeInForce", "GTC"], ["quantity", "1"],
               ["price", "0.1"], ["recvWindow", "5000"]],
    "credentials": {"api_key": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
                    "secret": "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"},
    "time_ms": 1499827319559, "nonce": None,
}
UPBIT_DERIVED = {  # research notes 2.3: ccxt upbit.sign() == hashlib/PyJWT for this input
    "venue": "upbit", "method": "GET", "path": "/v1/order", "params": [["uuid", "abc"], ["identifier", "my-id-1"]],
    "credentials": {"api_key": "ACCESS", "secret": "SECRETKEY"}, "time_ms": 0,
    "nonce": "00000000-0000-4000-8000-000000000000",
}


def _run(args: list[str], stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], input=stdin, capture_output=True, text=True,
                          timeout=60, env=env)


def test_sign_jsonl_one_line_out_per_line_in(clean_env) -> None:
    lines = [json.dumps(BINANCE_DOC), json.dumps(UPBIT_DERIVED), json.dumps(BINANCE_DOC | {"venue": "mtgox"}), "{not json"]
    proc = _run(["venue", "sign", "--jsonl"], "\n".join(lines) + "\n", clean_env)
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) == 4
    assert out[0]["body"].endswith("signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71")
    assert out[0]["url"] == "https://api.binance.com/api/v3/order" and out[0]["method"] == "POST"
    assert out[1]["url"] == "https://api.upbit.com/v1/order?uuid=abc&identifier=my-id-1" and out[1]["body"] is None
    assert out[1]["headers"]["Authorization"].endswith("3BUunvFxuLmn4kFhLBT7YHy-bDXr4UHLsgnuv1BuUvE")
    assert "mtgox" in out[2]["error"] and "error" in out[3]


def test_call_dry_run_prints_the_signed_request(tmp_path, clean_env) -> None:
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps({"api_key": "k", "secret": "s"}))
    creds.chmod(0o600)
    proc = _run(["venue", "call", "binance", "place_order", "--dry-run", "--credentials", str(creds), "--args",
                 json.dumps({"symbol": "BTC-USDT", "client_order_id": "cli-1", "side": "sell", "order_type": "limit",
                             "quantity": "0.5", "price": "70000"})], env=clean_env)
    assert proc.returncode == 0, proc.stderr
    req = json.loads(proc.stdout)
    assert req["method"] == "POST" and "newClientOrderId=cli-1" in req["body"] and "signature=" in req["body"]


def test_call_refuses_a_world_readable_credentials_file_and_bad_args(tmp_path, clean_env) -> None:
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps({"api_key": "k", "secret": "s"}))
    creds.chmod(0o644)
    proc = _run(["venue", "call", "binance", "balance", "--dry-run", "--credentials", str(creds)], env=clean_env)
    assert proc.returncode != 0 and "chmod 600" in proc.stderr
    proc = _run(["venue", "call", "binance", "ticker", "--dry-run", "--args", '{"symbol":"btcusdt"}'], env=clean_env)
    assert proc.returncode != 0 and "$.symbol" in proc.stderr
