"""`exbus venue sign --jsonl` (raw signing conformance), `exbus venue call` (one
operation, for operators; --dry-run prints the signed request instead of sending it) and
`exbus venue parse` (a venue's raw reply -> the normalized result or classified error)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import msgspec

import schemas
from schemas.common import VENUES
from schemas.orders import CancelOrder, PlaceOrder
from schemas.queries import (
    BalanceQuery, OpenOrdersQuery, OrderBookQuery, OrderStatusQuery, TickerQuery, TradeHistoryQuery,
)
from schemas.vault import Credentials
from services.errors import CommandError
from services.venues import rest_adapter
from services.venues.base import NON_IDEMPOTENT, FollowUp, HttpRequest
from services.venues.errors import RateLimited, VenueError

OPERATION_ARGS: dict[str, Any] = {
    "ticker": TickerQuery, "orderbook": OrderBookQuery, "place_order": PlaceOrder, "cancel_order": CancelOrder,
    "order_status": OrderStatusQuery, "open_orders": OpenOrdersQuery, "balance": BalanceQuery,
    "trade_history": TradeHistoryQuery, "instruments": None,
}


class SignInput(msgspec.Struct, forbid_unknown_fields=True):
    venue: str
    method: str
    path: str
    params: list[tuple[str, str | int | float]]
    credentials: Credentials
    time_ms: int
    nonce: str | int | None = None


def request_json(req: HttpRequest) -> dict[str, Any]:
    return {"method": req.method, "url": req.url, "headers": req.headers,
            "body": req.body.decode() if req.body is not None else None}


def sign_line(line: str) -> dict[str, Any]:
    """One JSON line in, the signed request (or an error) out."""
    try:
        inp = msgspec.json.decode(line, type=SignInput)
        adapter = rest_adapter(inp.venue)
        params = [(str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in inp.params]
        return request_json(adapter.sign(inp.method.upper(), inp.path, params, inp.credentials, inp.time_ms, inp.nonce))
    except (msgspec.DecodeError, ValueError, KeyError) as e:
        return {"error": str(e)}


def cmd_sign(args: argparse.Namespace, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    if not args.jsonl:
        raise CommandError("only --jsonl input is supported")
    for line in stdin:
        if line.strip():
            stdout.write(json.dumps(sign_line(line)) + "\n")
            stdout.flush()
    return 0


def operation_args(venue: str, op: str, raw: str) -> Any:
    """Decode ``--args`` JSON into the schemas type of ``op``; commands get CLI defaults."""
    if op not in OPERATION_ARGS:
        raise CommandError(f"unknown operation {op!r}; one of {', '.join(OPERATION_ARGS)}")
    tp = OPERATION_ARGS[op]
    if tp is None:
        return None
    try:
        data = json.loads(raw or "{}")
    except ValueError as e:
        raise CommandError(f"--args is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise CommandError(f"--args must be a JSON object, got {type(data).__name__}")
    if tp in (PlaceOrder, CancelOrder):
        data = {"type": "place" if tp is PlaceOrder else "cancel", "venue": venue, "account": "cli",
                "command_id": data.get("client_order_id", "cli"), **data}
    else:
        data = {"type": op, **data}
    try:
        return schemas.decode(json.dumps(data), tp)
    except msgspec.ValidationError as e:
        raise CommandError(f"bad --args for {op}: {e}") from None


def load_credentials(path: str | None) -> Credentials | None:
    """Credentials from a JSON file {"api_key", "secret", "passphrase"?}; refuses a file others can read."""
    if not path:
        return None
    p = Path(path)
    try:
        if p.stat().st_mode & 0o077:
            raise CommandError(f"{path}: credentials file must not be readable by others (chmod 600)")
        return msgspec.json.decode(p.read_bytes(), type=Credentials)
    except OSError as e:
        raise CommandError(f"credentials file {path}: {e.strerror or e}") from None
    except msgspec.DecodeError as e:  # the message names the field, never a value
        raise CommandError(f"credentials file {path}: not a credentials object: {e}") from None


def adapter_for(venue: str, base_url: str | None = None) -> Any:
    """The venue's REST adapter, or a one-line error naming the known venues."""
    try:
        return rest_adapter(venue, base_url)
    except ValueError as e:
        raise CommandError(f"{e}; one of {', '.join(VENUES)}") from None


def cmd_call(args: argparse.Namespace) -> int:
    adapter = adapter_for(args.venue, args.base_url)
    op_args = operation_args(args.venue, args.op, args.args)
    creds = load_credentials(args.credentials)
    try:
        req = adapter.build_request(args.op, op_args, creds, time.time_ns() // 1_000_000)
    except ValueError as e:
        raise CommandError(str(e)) from None
    if args.dry_run:
        print(json.dumps(request_json(req), indent=2))
        return 0

    async def send() -> Any:
        from services.venues.http import HttpTransport

        op, call_args, request = args.op, op_args, req
        async with HttpTransport() as http:
            while True:
                resp = await http.send(request, idempotent=op not in NON_IDEMPOTENT)
                result = adapter.parse_response(op, resp.status, resp.headers, resp.body, call_args)
                if not isinstance(result, FollowUp):  # the venue's answer takes another request
                    return result
                op, call_args = result.op, result.args
                request = adapter.build_request(op, call_args, creds, time.time_ns() // 1_000_000)

    try:
        result = asyncio.run(send())
    except VenueError as e:
        result = e
    return print_result(result)


def error_json(err: VenueError) -> dict[str, Any]:
    """A classified venue error as the CLI prints it."""
    out: dict[str, Any] = {"error": err.code, "message": err.message, "venue_code": err.venue_code,
                           "status": err.status}
    if isinstance(err, RateLimited):
        out |= {"retry_after": err.retry_after, "banned": err.banned}
    return out


def print_result(result: Any, stdout: TextIO | None = None) -> int:
    """Print a parsed result (exit 0) or a classified error (exit 1) as JSON."""
    stdout = stdout or sys.stdout
    if isinstance(result, VenueError):
        stdout.write(json.dumps(error_json(result)) + "\n")
        return 1
    stdout.write(json.dumps(msgspec.to_builtins(result), indent=2, default=str) + "\n")
    return 0


def parse_headers(raw: list[str]) -> dict[str, str]:
    headers = {}
    for item in raw:
        key, sep, value = item.partition(":")
        if not sep or not key.strip():
            raise CommandError(f"bad --header {item!r}: expected NAME:VALUE")
        headers[key.strip()] = value.strip()
    return headers


def cmd_parse(args: argparse.Namespace, stdin: Any = None, stdout: TextIO | None = None) -> int:
    """Parse a venue reply read from stdin, as the executor and queries would."""
    adapter = adapter_for(args.venue)
    op_args = operation_args(args.venue, args.op, args.args) if args.args else None
    body = (stdin or sys.stdin.buffer).read()
    return print_result(adapter.parse_response(args.op, args.status, parse_headers(args.header), body, op_args), stdout)


def register(sub: Any) -> None:
    """Add `venue sign`, `venue call` and `venue parse` to the exbus parser."""
    p = sub.add_parser("venue", help="venue adapter tools")
    vsub = p.add_subparsers(dest="venue_command", required=True)
    s = vsub.add_parser("sign", help="sign raw requests: JSON lines on stdin -> signed requests on stdout")
    s.add_argument("--jsonl", action="store_true", help="read and write JSON lines")
    s.set_defaults(handler=cmd_sign)
    c = vsub.add_parser("call", help="run one operation against a venue")
    c.add_argument("venue")
    c.add_argument("op", help=", ".join(OPERATION_ARGS))
    c.add_argument("--args", default="{}", help="the operation's arguments as JSON")
    c.add_argument("--dry-run", action="store_true", help="print the signed request instead of sending it")
    c.add_argument("--credentials", help="JSON file with api_key, secret[, passphrase] (mode 600)")
    c.add_argument("--base-url", help="send to another base URL (simulator)")
    c.set_defaults(handler=cmd_call)
    r = vsub.add_parser("parse", help="normalize a venue's raw reply read from stdin (or classify its error)")
    r.add_argument("venue")
    r.add_argument("op", help=", ".join(OPERATION_ARGS))
    r.add_argument("--status", type=int, required=True, help="the reply's HTTP status")
    r.add_argument("--header", action="append", default=[], metavar="NAME:VALUE", help="a reply header (repeatable)")
    r.add_argument("--args", default="", help="the operation's arguments as JSON, where the parse needs them")
    r.set_defaults(handler=cmd_parse)
