from pathlib import Path

import httpx

from app.main import create_app
from tests.conftest import asgi_client, make_settings


async def test_liveness_reports_status_and_version(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "version": "0.1.0"}


async def test_readiness_checks_each_configured_dependency(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["status"] == "ok"


async def test_readiness_is_503_naming_an_unreachable_database(tmp_path: Path) -> None:
    settings = make_settings(
        "postgresql+asyncpg://nobody@127.0.0.1:9/nowhere",
        tmp_path / "unused.db",
        redis_url=None,
        health_check_timeout=1.0,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application), asgi_client(application) as c:
        liveness = await c.get("/health")
        readiness = await c.get("/health/ready")
    assert liveness.status_code == 200, "liveness must not depend on the database"
    assert readiness.status_code == 503
    assert readiness.headers["content-type"] == "application/problem+json"
    body = readiness.json()
    assert body["checks"]["database"]["status"] == "failed"
    assert "database" in body["detail"]


async def test_readiness_reports_an_unreachable_redis_as_degraded_and_stays_ready(
    tmp_path: Path,
) -> None:
    # The service runs without Redis (in-process fallbacks), so a Redis outage must not take
    # every replica out of the load balancer's rotation.
    settings = make_settings(
        None, tmp_path / "ready.db", redis_url="redis://127.0.0.1:9/0", health_check_timeout=1.0
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application), asgi_client(application) as c:
        readiness = await c.get("/health/ready")
    assert readiness.status_code == 200
    body = readiness.json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"]["status"] == "degraded"
    assert body["checks"]["redis"]["error"]
    assert body["checks"]["database"]["status"] == "ok"


async def test_readiness_is_503_when_the_database_fails_whatever_redis_does(
    tmp_path: Path,
) -> None:
    settings = make_settings(
        "postgresql+asyncpg://nobody@127.0.0.1:9/nowhere",
        tmp_path / "unused.db",
        redis_url="redis://127.0.0.1:9/0",
        health_check_timeout=1.0,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application), asgi_client(application) as c:
        readiness = await c.get("/health/ready")
    assert readiness.status_code == 503
    checks = readiness.json()["checks"]
    assert checks["database"]["status"] == "failed"
    assert checks["redis"]["status"] == "degraded"
