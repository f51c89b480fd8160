"""The OpenAPI document, corrected to describe what the service really answers.

FastAPI documents its own defaults, which the error handlers and the schema bases replace:

- validation errors are `application/problem+json` problems (with `errors`), not FastAPI's
  `HTTPValidationError` JSON;
- a body that is not UTF-8 JSON is a 400 problem, on every operation that reads JSON;
- a PATCH body refuses an explicit null (app.core.schemas.PartialUpdate), so its fields
  are optional but not nullable, although their Python type says `X | None`.
"""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from app.core.errors import PROBLEM_JSON, Problem

_NULL = {"type": "null"}
_SCHEMAS = "#/components/schemas/"


def install_openapi(app: FastAPI) -> None:
    """Serve the corrected document at the app's OpenAPI URL; built once, on first use."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    corrected: dict[str, Any] | None = None

    def openapi() -> dict[str, Any]:
        nonlocal corrected
        if corrected is None:
            corrected = correct(generate())
        return corrected

    app.openapi = openapi  # type: ignore[method-assign]


def correct(document: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    _add_problem_schema(schemas)
    problem = {PROBLEM_JSON: {"schema": {"$ref": f"{_SCHEMAS}Problem"}}}
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            responses: dict[str, Any] = operation.get("responses", {})
            if "422" in responses:
                responses["422"]["content"] = problem
            body = operation.get("requestBody", {}).get("content", {})
            if "application/json" in body:
                responses.setdefault(
                    "400",
                    {"description": "The body is not UTF-8 JSON", "content": problem},
                )
                if method == "patch":
                    _not_nullable(schemas, body["application/json"].get("schema", {}))
    # FastAPI's validation schemas are unused now, unless a route names them itself.
    if "HTTPValidationError" not in _references(document.get("paths", {})):
        schemas.pop("HTTPValidationError", None)
    if "ValidationError" not in _references(document.get("paths", {})) | _references(schemas):
        schemas.pop("ValidationError", None)
    return document


def _references(node: object) -> set[str]:
    if isinstance(node, dict):
        found = (
            {node["$ref"].removeprefix(_SCHEMAS)} if isinstance(node.get("$ref"), str) else set()
        )
        return found.union(*(_references(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_references(value) for value in node))
    return set()


def _add_problem_schema(schemas: dict[str, Any]) -> None:
    if "Problem" in schemas:
        return
    schema = Problem.model_json_schema(ref_template=_SCHEMAS + "{model}")
    schemas.update(schema.pop("$defs", {}))
    schemas["Problem"] = schema


def _not_nullable(schemas: dict[str, Any], reference: dict[str, Any]) -> None:
    name = reference.get("$ref", "").removeprefix(_SCHEMAS)
    for field in schemas.get(name, {}).get("properties", {}).values():
        choices = field.get("anyOf")
        if not choices or _NULL not in choices:
            continue
        rest = [choice for choice in choices if choice != _NULL]
        if len(rest) == 1:
            del field["anyOf"]
            field.update(rest[0])
        else:
            field["anyOf"] = rest
        if field.get("default", ...) is None:
            del field["default"]
