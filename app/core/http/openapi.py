"""The OpenAPI document, corrected to describe what the service really answers.

FastAPI documents its own defaults, which the error handlers and the schema bases replace:

- validation errors are `application/problem+json` problems (with `errors`), not FastAPI's
  `HTTPValidationError` JSON;
- the platform answers before or around any route, and those answers are problems too:
  400 for a Content-Length that is not a number (and, on an operation with a body, a body
  that is not UTF-8 JSON), 413 for a body over the limit, 431 for headers over theirs, 503
  on every operation that reaches the database while it is unavailable (app.core.errors);
- a problem's schema belongs to `application/problem+json`, not to `application/json`
  where FastAPI puts the model of a `responses=` entry;
- a PATCH body refuses an explicit null (app.core.schemas.PartialUpdate), so its fields
  are optional but not nullable, although their Python type says `X | None`;
- the dependency that authenticates callers reads their credentials itself rather than
  through FastAPI's security scheme dependencies (each would cost every authenticated request
  a resolution), so the schemes it reads and the scopes each route asks for are declared
  here, as FastAPI would have declared them.
- FastAPI drops every null from the document it writes, the nulls of the schemas' examples
  included, which leaves an example such as a new API key's (`"last_used_at": null`)
  without a required field: they are put back.

- the requests the service sends (the document's top-level `webhooks`) are described as
  sent, like responses (`sent_body`): a body parameter would be described as an input and
  split every model it shares with the responses (`OrderRead`) into an input and an output
  variant; and any 2xx answer counts, its body never parsed, so no answer has a schema.

Operations are named by their handlers (`operation_id`), not by FastAPI's default.
"""

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security.base import SecurityBase
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.core.deps import AUTHENTICATING_DEPENDENCIES, DATABASE_DEPENDENCIES
from app.core.errors import PROBLEM_JSON, Problem

_NULL = {"type": "null"}
_SCHEMAS = "#/components/schemas/"


def operation_id(route: APIRoute) -> str:
    """An operation's id: its handler's name (`place_order`).

    Generated clients name their methods after it, so it has to be short and stable:
    FastAPI's default appends the path and method (`place_order_api_v1_orders_post`).
    Handler names are unique across the API (FastAPI warns of a duplicate id, and warnings
    fail the tests), and `make lint` treats a changed id as a breaking change.
    """
    return route.name


def sent_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` of a webhook whose request carries `model`, which `install_openapi`
    must be given among the models the service sends."""
    schema = {"$ref": f"{_SCHEMAS}{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def install_openapi(app: FastAPI, sent: Sequence[type[BaseModel]] = ()) -> None:
    """Serve the corrected document at the app's OpenAPI URL; built once, on first use.
    `sent` are the bodies of the requests the service sends (`sent_body`)."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    corrected: dict[str, Any] | None = None

    def openapi() -> dict[str, Any]:
        nonlocal corrected
        if corrected is None:
            document = generate()
            declare_security(document, app)
            corrected = correct(document, database_operations(app), sent)
        return corrected

    app.openapi = openapi  # type: ignore[method-assign]


def database_operations(app: FastAPI) -> set[tuple[str, str]]:
    """(path, method) of every operation whose dependencies reach the database."""
    return {
        (str(route.path_format), method.lower())
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute)
        and _reaches(route.dependant, DATABASE_DEPENDENCIES)
        for method in route.methods or ()
    }


Requirement = dict[str, list[str]]


def declare_security(document: dict[str, Any], app: FastAPI) -> None:
    """The security schemes and scopes of every operation whose caller is authenticated."""
    schemes: dict[str, Any] = {}
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        requirements: dict[str, list[str]] = {}
        for scheme, scopes in _schemes(route.dependant, []):
            schemes[scheme.scheme_name] = jsonable_encoder(
                scheme.model, by_alias=True, exclude_none=True
            )
            merged = requirements.setdefault(scheme.scheme_name, [])
            merged.extend(scope for scope in scopes if scope not in merged)
        if not requirements:
            continue
        path_item = document.get("paths", {}).get(str(route.path_format), {})
        for method in route.methods or ():
            operation = path_item.get(method.lower())
            if operation is not None:
                operation["security"] = [{name: scopes} for name, scopes in requirements.items()]
    if schemes:
        document.setdefault("components", {}).setdefault("securitySchemes", {}).update(schemes)


def _schemes(dependant: Dependant, inherited: list[str]) -> list[tuple[SecurityBase, list[str]]]:
    """(scheme, scopes) for each authenticating dependency under `dependant`, with the scopes
    that `Security(..., scopes=...)` gathered on the way down to it."""
    found: list[tuple[SecurityBase, list[str]]] = []
    for sub in dependant.dependencies:
        scopes = inherited + [s for s in sub.own_oauth_scopes or [] if s not in inherited]
        schemes = AUTHENTICATING_DEPENDENCIES.get(sub.call, ()) if sub.call else ()
        found.extend((scheme, scopes) for scheme in schemes)
        found.extend(_schemes(sub, scopes))
    return found


def _reaches(dependant: Dependant, calls: set[Callable[..., Any]]) -> bool:
    return any(sub.call in calls or _reaches(sub, calls) for sub in dependant.dependencies)


def correct(
    document: dict[str, Any],
    database: set[tuple[str, str]],
    sent: Sequence[type[BaseModel]] = (),
) -> dict[str, Any]:
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    _add_problem_schema(schemas)
    _add_sent_schemas(schemas, sent)
    problem = {PROBLEM_JSON: {"schema": {"$ref": f"{_SCHEMAS}Problem"}}}

    def declare(responses: dict[str, Any], status: str, description: str) -> None:
        responses.setdefault(status, {"description": description, "content": problem})

    for path, path_item in document.get("paths", {}).items():
        for method, operation in path_item.items():
            responses: dict[str, Any] = operation.get("responses", {})
            if "422" in responses:
                responses["422"]["content"] = problem
            for response in responses.values():
                _problem_media_type(response.get("content", {}))
            body = operation.get("requestBody", {}).get("content", {})
            if body:
                declare(responses, "400", "The body is not UTF-8 JSON, or Content-Length is bad")
                declare(responses, "413", "The body is over the size limit")
            else:
                declare(responses, "400", "Content-Length is not a number")
            declare(responses, "431", "The request headers are over the size limit")
            if (path, method) in database:
                declare(responses, "503", "The database is unavailable; retry after Retry-After")
            if method == "patch" and "application/json" in body:
                _not_nullable(schemas, body["application/json"].get("schema", {}))
    # The webhooks are requests the service sends: any 2xx answer counts, and its body is
    # kept for operators, never parsed, so no answer has a schema and none is a 422.
    for path_item in document.get("webhooks", {}).values():
        for operation in path_item.values():
            received = operation.get("responses", {}).get("200", {}).get("description", "")
            operation["responses"] = {"2XX": {"description": received or "Received"}}
    for schema in schemas.values():
        for example in schema.get("examples", []):
            _restore_nulls(schemas, schema, example)
    # FastAPI's validation schemas are unused now, unless a route names them itself.
    if "HTTPValidationError" not in _references(document.get("paths", {})):
        schemas.pop("HTTPValidationError", None)
    if "ValidationError" not in _references(document.get("paths", {})) | _references(schemas):
        schemas.pop("ValidationError", None)
    return document


def _add_sent_schemas(schemas: dict[str, Any], sent: Sequence[type[BaseModel]]) -> None:
    if not sent:
        return
    _, definitions = models_json_schema(
        [(model, "serialization") for model in sent], ref_template=f"{_SCHEMAS}{{model}}"
    )
    # A model the responses share (OrderRead) is described the same way, and already there.
    for name, schema in definitions.get("$defs", {}).items():
        schemas.setdefault(name, schema)


def _problem_media_type(content: dict[str, Any]) -> None:
    # `responses=` entries with a model put its schema under application/json and leave
    # problem+json, the type the handlers really send, without one.
    if PROBLEM_JSON in content and "schema" not in content[PROBLEM_JSON]:
        schema = content.pop("application/json", {}).get("schema")
        if schema is not None:
            content[PROBLEM_JSON] = {"schema": schema}


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


def _resolve(schemas: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    name = schema.get("$ref", "").removeprefix(_SCHEMAS)
    resolved: dict[str, Any] = schemas.get(name, {}) if name else schema
    return resolved


def _restore_nulls(schemas: dict[str, Any], schema: dict[str, Any], example: object) -> None:
    """Put back the nulls FastAPI dropped from `example`: a required field that is missing
    can only have been a null, and only where the schema allows one."""
    schema = _resolve(schemas, schema)
    if isinstance(example, list) and "items" in schema:
        for element in example:
            _restore_nulls(schemas, schema["items"], element)
    if not isinstance(example, dict):
        return
    properties: dict[str, Any] = schema.get("properties", {})
    for name in schema.get("required", []):
        field = _resolve(schemas, properties.get(name, {}))
        if name not in example and (field == _NULL or _NULL in field.get("anyOf", [])):
            example[name] = None
    for name, value in example.items():
        if name in properties:
            _restore_nulls(schemas, properties[name], value)


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
