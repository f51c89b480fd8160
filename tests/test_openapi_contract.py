"""The committed contract (docs/openapi.json) and the check that guards it."""

import copy
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from scripts.openapi import CONTRACT, breaking_changes, generate, render, unacknowledged

_DOCUMENT_URI = "urn:contract"


@cache
def _generated() -> dict[str, Any]:
    return generate()


def _document() -> dict[str, Any]:
    return copy.deepcopy(_generated())


def test_the_committed_contract_is_what_the_code_serves() -> None:
    assert CONTRACT.read_text() == render(_generated()), "run `make openapi` and commit it"


def test_an_unchanged_document_breaks_nothing() -> None:
    assert breaking_changes(_document(), _document()) == []


def test_removed_paths_methods_fields_and_enum_values_are_breaking() -> None:
    old, new = _document(), _document()
    del new["paths"]["/api/v1/posts/{post_id}"]
    del new["paths"]["/api/v1/items/{item_id}"]["delete"]
    del new["components"]["schemas"]["ItemRead"]["properties"]["stock"]
    new["components"]["schemas"]["OrderStatus"]["enum"].remove("shipped")

    changes = breaking_changes(old, new)

    assert "removed path: /api/v1/posts/{post_id}" in changes
    assert "removed method: DELETE /api/v1/items/{item_id}" in changes
    assert "removed response field: GET /api/v1/items/{item_id} 200 stock" in changes
    assert "removed response field: GET /api/v1/items 200 items[].stock" in changes
    assert "removed enum value: OrderStatus shipped" in changes


def test_every_event_payload_is_declared_and_guarded_as_the_paths_are() -> None:
    old, new = _document(), _document()
    assert set(old["webhooks"]) == {
        "order.placed",
        "order.cancelled",
        "order.shipped",
        "webhook.ping",
    }
    placed = old["webhooks"]["order.placed"]["post"]
    assert placed["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OrderEventPayload"
    }
    assert {p["name"] for p in placed["parameters"]} == {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
    assert set(placed["responses"]) == {"2XX"}
    del new["webhooks"]["webhook.ping"]
    del new["components"]["schemas"]["OrderEventPayload"]["properties"]["timestamp"]
    new["components"]["schemas"]["OrderRead"]["properties"].pop("total")

    changes = breaking_changes(old, new)

    assert "removed webhook: POST webhook.ping" in changes
    assert "removed webhook payload field: POST order.placed timestamp" in changes
    assert "removed webhook payload field: POST order.shipped data.total" in changes


def test_a_newly_required_request_field_is_breaking_and_an_optional_one_is_not() -> None:
    old, new = _document(), _document()
    item_create = new["components"]["schemas"]["ItemCreate"]
    item_create["properties"]["colour"] = {"type": "string"}
    assert breaking_changes(old, new) == []

    item_create["required"].append("colour")
    assert breaking_changes(old, new) == ["newly required: POST /api/v1/items body field colour"]


def _pointer(path: tuple[str, ...]) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in path)


def _examples(node: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, str, Any]]:
    """(where, the pointer of the schema it must fit, the example) for every example in the
    document: a schema's `examples`, and a parameter's or media type's `example(s)`."""
    if isinstance(node, list):
        for index, child in enumerate(node):
            yield from _examples(child, (*path, str(index)))
        return
    if not isinstance(node, dict):
        return
    in_schemas = path[:2] == ("components", "schemas") or "schema" in path
    if in_schemas and isinstance(node.get("examples"), list):
        for example in node["examples"]:
            yield _pointer(path), _pointer(path), example
    if "schema" in node and not in_schemas:
        schema = _pointer((*path, "schema"))
        if "example" in node:
            yield _pointer(path), schema, node["example"]
        for name, example in (node.get("examples") or {}).items():
            yield f"{_pointer(path)}/examples/{name}", schema, example["value"]
    for key, child in node.items():
        yield from _examples(child, (*path, key))


def test_every_example_in_the_document_fits_its_schema() -> None:
    document = _generated()
    registry = Registry().with_resource(
        _DOCUMENT_URI, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    found = list(_examples(document))
    assert any("ApiKeyCreated" in where for where, _, _ in found)
    for where, schema, example in found:
        validator = Draft202012Validator(
            {"$ref": f"{_DOCUMENT_URI}#{schema}"},
            registry=registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        errors = [error.message for error in validator.iter_errors(example)]
        assert errors == [], (where, example)


def test_operations_are_named_by_their_handlers() -> None:
    operations = [
        (f"{method.upper()} {path}", operation)
        for path, item in _generated()["paths"].items()
        for method, operation in item.items()
    ]
    ids = [operation["operationId"] for _, operation in operations]
    assert len(ids) == len(set(ids)), "operation ids must be unique"
    named = {key: operation["operationId"] for key, operation in operations}
    assert named["POST /api/v1/orders"] == "place_order"
    assert named["GET /api/v1/items/{item_id}"] == "read_item"
    assert named["GET /health"] == "health"
    for operation_id in ids:
        # What a generated client makes a method of: a short snake_case name, no path in it.
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", operation_id), operation_id
        assert "api_v1" not in operation_id


def test_a_changed_operation_id_is_breaking() -> None:
    old, new = _document(), _document()
    new["paths"]["/api/v1/orders"]["post"]["operationId"] = "create_order"
    assert breaking_changes(old, new) == [
        "changed operation id: POST /api/v1/orders place_order -> create_order"
    ]


def test_a_change_quoted_in_the_changelog_is_acknowledged() -> None:
    changes = ["removed path: /api/v1/posts/{post_id}", "removed method: GET /health"]
    changelog = "## Unreleased\n- Breaking: `removed path: /api/v1/posts/{post_id}`\n"
    assert unacknowledged(changes, changelog) == ["removed method: GET /health"]
