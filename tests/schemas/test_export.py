"""`exbus schema export` output is committed; this fails when it is stale, and checks
that the exported documents are valid and describe real messages."""

from __future__ import annotations

import json
from decimal import Decimal

import jsonschema

import schemas
from schemas import PlaceOrder
from schemas.export import GENERATED_DIR, MESSAGES, render


def test_generated_files_are_current() -> None:
    expected = render()
    on_disk = {p.name: p.read_text() for p in GENERATED_DIR.glob("*.json")}
    stale = sorted(n for n in expected if on_disk.get(n) != expected[n])
    extra = sorted(set(on_disk) - set(expected))
    assert not stale and not extra, f"schemas/generated is stale ({stale}, extra {extra}): run `exbus schema export`"


def test_every_message_has_a_valid_json_schema() -> None:
    for name in MESSAGES:
        schema = json.loads((GENERATED_DIR / f"{name}.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)


def test_json_schema_accepts_real_messages_and_rejects_bad_ones() -> None:
    schema = json.loads((GENERATED_DIR / "OrderCommand.schema.json").read_text())
    order = PlaceOrder(command_id="c1", venue="okx", account="main", symbol="ETH-USDT", client_order_id="c1",
                       side="sell", order_type="limit", quantity=Decimal("1.5"), price=Decimal("2000"))
    jsonschema.validate(json.loads(schemas.encode(order)), schema)
    bad = json.loads(schemas.encode(order)) | {"venue": "mtgox"}
    assert not jsonschema.Draft202012Validator(schema).is_valid(bad)
    place_schema = json.loads((GENERATED_DIR / "PlaceOrder.schema.json").read_text())
    errors = list(jsonschema.Draft202012Validator(place_schema).iter_errors(bad))
    assert [list(e.path) for e in errors] == [["venue"]]


def test_asyncapi_document_lists_every_subject() -> None:
    doc = json.loads((GENERATED_DIR / "asyncapi.json").read_text())
    assert doc["asyncapi"] == "3.0.0"
    addresses = {c["address"] for c in doc["channels"].values()}
    for address in ["md.{venue}.trade.{symbol}", "md.{venue}.book.{symbol}", "md.{venue}.status",
                    "orders.submit.{venue}.{account}", "orders.events.{venue}.{account}.{client_order_id}",
                    "venue.{venue}.{account}.{query}", "venue.{venue}.public.{query}",
                    "vault.credentials.get", "vault.audit", "vault.revoked.{venue}.{account}"]:
        assert address in addresses
    # every $ref resolves inside the document
    refs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    for ref in refs:
        target: object = doc
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(target, dict) and part in target, f"dangling $ref {ref}"
            target = target[part]
