"""WebSocket frame receive: websockets against aiohttp's client (both exbus dependencies).

A server process sends small frames (Bitfinex-like single-level book updates,
``[chanId,[price,count,amount]]``, ~40 bytes) as fast as the socket takes them; the client
(this process) receives them with each client in turn (websockets as text, websockets
handing text frames over as bytes, aiohttp), alternating, and
counts its own CPU time per frame (``time.process_time``, so the server's CPU and a busy
machine count less). Best turn of each kept.

    .venv/bin/python bench/ws_clients.py [--frames 200000] [--turns 3] [--out bench/results/ws_clients.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAME = '[17470,[7616.6,2,0.01877]]'


async def serve(frames: int) -> None:
    from websockets.asyncio.server import serve as ws_serve

    async def handler(ws) -> None:
        await ws.recv()  # the client's "go"
        batch = [FRAME] * 1000
        for _ in range(frames // 1000):
            for frame in batch:
                await ws.send(frame)
        await ws.send("end")
        await ws.wait_closed()

    async with ws_serve(handler, "127.0.0.1", 0, compression=None, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def with_websockets(url: str, decode: bool = True) -> tuple[int, float]:
    """websockets; ``decode=False``: text frames handed over as bytes (no UTF-8 decode)."""
    from websockets.asyncio.client import connect

    end = "end" if decode else b"end"
    async with connect(url, compression=None, max_size=None) as ws:
        await ws.send("go")
        n, cpu = 0, time.process_time()
        recv = ws.recv
        while True:
            data = await recv(decode=decode)
            if data == end:
                break
            n += 1
        return n, time.process_time() - cpu


async def with_websockets_bytes(url: str) -> tuple[int, float]:
    return await with_websockets(url, decode=False)


async def with_aiohttp(url: str) -> tuple[int, float]:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.ws_connect(url, compress=0, max_msg_size=0,
                                                                        autoping=True) as ws:
        await ws.send_str("go")
        n, cpu = 0, time.process_time()
        receive = ws.receive
        while True:
            msg = await receive()
            if msg.data == "end":
                break
            n += 1
        return n, time.process_time() - cpu


async def main(args: argparse.Namespace) -> dict:
    results: dict[str, list[float]] = {"websockets": [], "websockets_bytes": [], "aiohttp": []}
    for _ in range(args.turns):
        for name, client in (("websockets", with_websockets), ("websockets_bytes", with_websockets_bytes),
                             ("aiohttp", with_aiohttp)):
            server = subprocess.Popen([sys.executable, __file__, "--serve", str(args.frames)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True, cwd=ROOT)
            assert server.stdout is not None and server.stdin is not None
            port = int(server.stdout.readline())
            try:
                n, cpu = await client(f"ws://127.0.0.1:{port}/")
            finally:
                server.stdin.close()
                server.wait(10)
            assert n == args.frames // 1000 * 1000, n
            results[name].append(cpu / n * 1e6)
    best = {name: round(min(v), 3) for name, v in results.items()}
    import aiohttp
    import websockets
    return {"benchmark": "ws_clients", "python": platform.python_version(), "cpus": os.cpu_count(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "frames": args.frames, "turns": args.turns,
            "frame": FRAME, "versions": {"websockets": websockets.__version__, "aiohttp": aiohttp.__version__},
            "client_cpu_us_per_frame": best, "turns_us_per_frame": {k: [round(x, 3) for x in v] for k, v in results.items()},
            "faster": min(best, key=best.get)}  # type: ignore[arg-type]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ws_clients.json")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
        sys.exit(0)
    result = asyncio.run(main(args))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("client CPU per frame (us): " + ", ".join(f"{k} {v}" for k, v in result["client_cpu_us_per_frame"].items()))
