from collections.abc import Iterator
from typing import Any

import httpx
from fastapi import params
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import TypeAdapter, ValidationError

from app.core.config import Settings
from app.main import create_app
from tests.conftest import serve, variant
from tests.factories import user
from tests.waiting import clear_of_window_end

ME = "/api/v1/users/me"


async def test_default_limit_is_per_user_when_authenticated_else_per_address(
    client: httpx.AsyncClient, migrated: Settings
) -> None:
    await clear_of_window_end(60)
    async with serve(variant(migrated, rate_limit_default="3/minute")) as limited:
        # Registration, login and one anonymous call spend the address's budget of 3...
        first = await user(limited)
        assert (await limited.get(ME)).status_code == 401
        assert (await limited.get(ME)).status_code == 429
        # ...while each user counts against a budget of their own, from the same address.
        for _ in range(3):
            assert (await limited.get(ME, headers=first.headers)).status_code == 200
        refused = await limited.get(ME, headers=first.headers)
        assert refused.status_code == 429
        assert refused.headers["ratelimit-remaining"] == "0"
        assert int(refused.headers["retry-after"]) >= 1
    assert (await client.get("/health")).status_code == 200


async def test_callers_never_see_each_others_responses(client: httpx.AsyncClient) -> None:
    first, second = await user(client), await user(client)
    for _ in range(2):  # the second round would be served from any shared cache
        for account in (first, second):
            for path in (ME, "/api/v1/users/me/dashboard", "/api/v1/orders"):
                response = await client.get(path, headers=account.headers)
                assert response.status_code == 200, path
                assert response.headers["cache-control"] == "private, no-store", path
                assert "etag" not in response.headers, path
            me = (await client.get(ME, headers=account.headers)).json()
            assert me["email"] == account.email


def _loose_inputs(
    schema: dict[str, Any], definitions: dict[str, Any], path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], object]]:
    """(where, a value of the wrong JSON type) for every integer and boolean in `schema`."""
    if "$ref" in schema:
        schema = definitions[schema["$ref"].rsplit("/", 1)[-1]]
    forms = [schema, *schema.get("anyOf", [])]
    types = {form.get("type") for form in forms}
    if "integer" in types:
        yield from ((path, value) for value in ("5", 5.5, True))
    if "boolean" in types:
        yield from ((path, value) for value in (0, 1, "no", "off", "true"))
    for form in forms:
        for name, child in form.get("properties", {}).items():
            yield from _loose_inputs(child, definitions, (*path, name))
        if "items" in form:
            yield from _loose_inputs(form["items"], definitions, (*path, 0))


def _body(path: tuple[str | int, ...], value: object) -> object:
    if not path:
        return value
    inner = _body(path[1:], value)
    return [inner] if isinstance(path[0], int) else {path[0]: inner}


def test_json_bodies_take_numbers_and_booleans_only_as_such() -> None:
    """`{"is_active": 0}` or `{"stock": "5"}` is a client's mistake to report, not to guess
    at: a JSON body's integers and booleans are taken only as JSON has them (query strings,
    all text, stay lax). An integer may still come as 5.0: to JSON, and to a JSON Schema's
    `integer`, that is the same number."""
    application = create_app(Settings(_env_file=None))
    checked = set()
    for context in iter_route_contexts(application.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or route.body_field is None:
            continue
        if isinstance(route.body_field.field_info, params.Form):
            continue
        body_type = route.body_field.field_info.annotation
        assert body_type is not None
        adapter: TypeAdapter[Any] = TypeAdapter(body_type)
        schema = adapter.json_schema()
        for path, value in _loose_inputs(schema, schema.get("$defs", {})):
            checked.add((route.name, path))
            try:
                adapter.validate_python(_body(path, value))
            except ValidationError as error:
                refused = [problem["loc"] for problem in error.errors()]
            else:
                refused = []
            assert path in refused, f"{route.name}: {'.'.join(map(str, path))}={value!r}"
            if value == "5":
                try:
                    adapter.validate_python(_body(path, 5.0))
                except ValidationError as error:
                    refused = [problem["loc"] for problem in error.errors()]
                else:
                    refused = []
                assert path not in refused, f"{route.name}: {'.'.join(map(str, path))}=5.0"
    assert ("update_user", ("is_active",)) in checked
    assert ("place_order", ("lines", 0, "quantity")) in checked
