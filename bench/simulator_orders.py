"""Venue simulator benchmark: how many orders it takes per second, so that tests and the
demo know how hard they can push it before it, not exbus, is the bottleneck.

- ``engine``: place + cancel of resting limit orders in the matching engine alone
  (NKNUSDT book of ../shared/data/recorded/BINANCE.http.0.0), and crossing orders that fill;
- ``http``: signed POST /api/v3/order + DELETE over loopback HTTP from C concurrent
  clients (Binance HMAC, Upbit JWT), orders/s and request latency p50/p99.

    .venv/bin/python bench/simulator_orders.py [--orders N] [--clients C] [--out bench/results/simulator_orders.json]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import platform
import statistics
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import jwt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.simulator import Simulator  # noqa: E402
from services.simulator.matching import Order  # noqa: E402

KEY, SECRET = "bench-key", "bench-secret-" + "0" * 51
BIG = {"USDT": "100000000", "NKN": "100000000", "KRW": "100000000000", "LAMB": "100000000"}
SETTINGS = {
    "replay": False,
    "binance": {"accounts": [{"name": "bench", "api_key": KEY, "secret": SECRET, "balances": BIG}],
                "limits": {"request_weight_1m": 10**9, "raw_requests_5m": 10**9, "orders_10s": 10**9, "orders_1d": 10**9}},
    "upbit": {"accounts": [{"name": "bench", "api_key": KEY, "secret": SECRET, "balances": BIG}],
              "rate_limits": {"default": 10**9, "order": 10**9}},
}


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p / 100 * len(values)))] * 1e3, 3)


async def engine_bench(n: int) -> dict:
    async with Simulator(SETTINGS) as sim:
        ex = sim.binance.exchange
        start = time.perf_counter()
        for i in range(n):
            order = Order(order_id=i, client_order_id=f"e{i}", account="bench", symbol="NKNUSDT", side="buy",
                          order_type="limit", quantity=Decimal(100), price=Decimal("0.3400"))
            ex.place(order)
            ex.cancel(order)
        resting = time.perf_counter() - start
        start = time.perf_counter()
        for i in range(n):
            side = "buy" if i % 2 == 0 else "sell"
            ex.place(Order(order_id=n + i, client_order_id=f"f{i}", account="bench", symbol="NKNUSDT", side=side,
                           order_type="market", quantity=Decimal(10)))
        crossing = time.perf_counter() - start
    return {"orders": n, "place_cancel_per_s": round(n / resting), "market_fills_per_s": round(n / crossing)}


async def binance_client(session: aiohttp.ClientSession, base: str, sim: Simulator, n: int, tag: int,
                         latencies: list[float]) -> None:
    for i in range(n):
        for method, params in (
            ("POST", {"symbol": "NKNUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "100",
                      "price": "0.3400", "newClientOrderId": f"b{tag}-{i}"}),
            ("DELETE", {"symbol": "NKNUSDT", "origClientOrderId": f"b{tag}-{i}"}),
        ):
            query = urlencode(params | {"timestamp": sim.clock() // 1_000_000})
            body = query + "&signature=" + hmac.new(SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
            t0 = time.perf_counter()
            async with session.request(method, base + "/api/v3/order", data=body, headers={
                    "X-MBX-APIKEY": KEY, "Content-Type": "application/x-www-form-urlencoded"}) as r:
                await r.read()
                assert r.status == 200, await r.text()
            latencies.append(time.perf_counter() - t0)


async def upbit_client(session: aiohttp.ClientSession, base: str, n: int, tag: int, latencies: list[float]) -> None:
    for i in range(n):
        body = {"market": "KRW-LAMB", "side": "bid", "volume": "100", "price": "100", "ord_type": "limit",
                "identifier": f"u{tag}-{i}"}
        query = "&".join(f"{k}={v}" for k, v in body.items())
        token = jwt.encode({"access_key": KEY, "nonce": str(uuid.uuid4()),
                            "query_hash": hashlib.sha512(query.encode()).hexdigest(), "query_hash_alg": "SHA512"},
                           SECRET, algorithm="HS512")
        t0 = time.perf_counter()
        async with session.post(base + "/v1/orders", json=body, headers={"Authorization": f"Bearer {token}"}) as r:
            await r.read()
            assert r.status == 201, await r.text()
        latencies.append(time.perf_counter() - t0)


async def http_bench(n: int, clients: int) -> dict:
    out = {}
    async with Simulator(SETTINGS) as sim, aiohttp.ClientSession() as session:
        for venue in ("binance", "upbit"):
            latencies: list[float] = []
            per = n // clients
            start = time.perf_counter()
            if venue == "binance":
                await asyncio.gather(*(binance_client(session, sim.binance_url, sim, per, c, latencies) for c in range(clients)))
            else:
                await asyncio.gather(*(upbit_client(session, sim.upbit_url, per, c, latencies) for c in range(clients)))
            seconds = time.perf_counter() - start
            orders = per * clients
            out[venue] = {
                "orders": orders, "requests": len(latencies), "clients": clients, "seconds": round(seconds, 3),
                "orders_per_s": round(orders / seconds), "requests_per_s": round(len(latencies) / seconds),
                "latency_ms": {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
                               "mean": round(statistics.fmean(latencies) * 1e3, 3)},
                "what": "place + cancel per order" if venue == "binance" else "place per order (resting)",
            }
        ledger = sim.ledger_snapshot()
        out["ledger_orders"] = len(ledger["orders"])
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "simulator_orders.json"))
    args = parser.parse_args()
    result = {
        "benchmark": "simulator_orders", "python": platform.python_version(), "machine": platform.machine(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "engine": await engine_bench(args.orders),
        "http": await http_bench(args.orders, args.clients),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
