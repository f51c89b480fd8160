import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.config import Environment
from app.main import create_app
from tests.conftest import asgi_client, make_settings
from tests.transport import VIA_NGINX


async def test_docs_and_redoc_are_served(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200
    assert (await client.get("/redoc")).status_code == 200


async def test_openapi_describes_the_service(client: httpx.AsyncClient) -> None:
    info = (await client.get("/openapi.json")).json()["info"]
    assert info["title"] == "FastAPI Reference Service"
    assert info["version"] == "0.1.0"
    assert info["license"]["name"] == "MIT"
    assert "contact" in info


async def test_production_hides_docs_by_default(tmp_path: Path) -> None:
    settings = make_settings(
        "postgresql+asyncpg://app@127.0.0.1:9/app",
        tmp_path / "unused.db",
        environment=Environment.PRODUCTION,
        secret_key=secrets.token_urlsafe(48),
        docs_enabled=None,
    )
    async with asgi_client(create_app(settings)) as c:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert (await c.get(path)).status_code == 404


async def test_docs_pages_load_only_local_assets(client: httpx.AsyncClient) -> None:
    for path, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        page = await client.get(path)
        assert f'src="/static/docs/{asset}"' in page.text
        assert "://" not in page.text.replace("window.location.origin", ""), path
        script = await client.get(f"/static/docs/{asset}")
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]
    assert (await client.get("/static/docs/swagger-ui.css")).status_code == 200


async def test_docs_policy_allows_exactly_the_pages_inline_scripts(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/docs")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "cdn" not in policy
    assert '"persistAuthorization": true' in page.text
    redirect = await client.get("/docs/oauth2-redirect")
    assert "'sha256-" in redirect.headers["content-security-policy"]


async def test_docs_assets_are_absent_when_docs_are_off(tmp_path: Path) -> None:
    settings = make_settings(None, tmp_path / "app.db", docs_enabled=False)
    async with asgi_client(create_app(settings)) as c:
        for path in ("/docs/oauth2-redirect", "/static/docs/swagger-ui-bundle.js"):
            assert (await c.get(path)).status_code == 404


async def openapi_document(client: httpx.AsyncClient) -> dict[str, Any]:
    document: dict[str, Any] = (await client.get("/openapi.json")).json()
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


async def test_openapi_documents_validation_errors_as_problems(client: httpx.AsyncClient) -> None:
    document = await openapi_document(client)
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    documented = [
        op["responses"]["422"] for _, _, op in operations(document) if "422" in op["responses"]
    ]
    assert documented
    assert all(response["content"] == problem for response in documented)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert "errors" in document["components"]["schemas"]["Problem"]["properties"]


async def test_openapi_documents_the_400_for_bodies_that_are_not_json(
    client: httpx.AsyncClient,
) -> None:
    document = await openapi_document(client)
    for path, method, operation in operations(document):
        if "application/json" in operation.get("requestBody", {}).get("content", {}):
            assert "application/problem+json" in operation["responses"]["400"]["content"], (
                path,
                method,
            )
    response = await client.post(
        "/api/v1/users",
        content=b'{"email": "\xff"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


async def test_openapi_patch_fields_are_optional_but_not_nullable(
    client: httpx.AsyncClient,
) -> None:
    document = await openapi_document(client)
    schemas = document["components"]["schemas"]
    patched = [
        op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        for _, method, op in operations(document)
        if method == "patch"
    ]
    assert "ItemUpdate" in patched
    for name in patched:
        for field, schema in schemas[name]["properties"].items():
            assert {"type": "null"} not in schema.get("anyOf", []), (name, field)
            assert schema.get("type") != "null", (name, field)
            assert schema.get("default", "unset") is not None, (name, field)
        assert not schemas[name].get("required"), name
    assert schemas["ItemUpdate"]["properties"]["stock"]["type"] == "integer"


async def test_openapi_documents_what_the_platform_answers_around_every_route(
    client: httpx.AsyncClient,
) -> None:
    document = await openapi_document(client)
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, method, operation in operations(document):
        declared = operation["responses"]
        expected = {"400", "431"}
        if "requestBody" in operation:
            expected.add("413")
        if path.startswith("/api/v1/"):
            expected |= {"429", "503"}
        assert expected <= declared.keys(), (method, path)
        assert all(declared[status]["content"] == problem for status in expected), (method, path)
    assert "503" not in document["paths"]["/health"]["get"]["responses"]
    assert "503" in document["paths"]["/health/ready"]["get"]["responses"]


async def test_the_platform_answers_match_the_document(client: httpx.AsyncClient) -> None:
    too_long = {"X-Padding": "x" * (17 * 1024)}
    response = await client.get("/health", headers=too_long)
    assert response.status_code == 431
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.skipif(
    VIA_NGINX,
    reason="about the app as an ASGI callable: over a connection httpx refuses to send a "
    "Content-Length that is not a number, and nginx (like uvicorn's parser) would refuse "
    "one with its own 400 before the app (its problem+json: tests/stack/test_nginx_problems.py); "
    "the in-process pass checks the service's",
)
async def test_a_content_length_that_is_not_a_number_is_a_400_problem(
    client: httpx.AsyncClient,
) -> None:
    bad_length = {"content-length": "ten", "content-type": "application/json"}
    response = await client.post("/api/v1/items", content=b"{}", headers=bad_length)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
