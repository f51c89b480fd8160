from pathlib import Path

import httpx

from app.core.config import Environment
from app.main import create_app
from tests.conftest import asgi_client, make_settings


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
        secret_key="a-long-random-production-secret-value-0123456789",
        docs_enabled=None,
    )
    async with asgi_client(create_app(settings)) as c:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert (await c.get(path)).status_code == 404
