"""The deployment files stay true to the code: what Docker and Compose run, runs."""

import asyncio
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.deployment import (
    compose,
    dockerfile_command,
    dockerfile_instructions,
    setting_names,
    with_compose_defaults,
)
from support.processes import ROOT, free_port


@pytest.fixture(scope="module", name="compose")
def compose_file() -> dict[str, Any]:
    return compose()


def test_env_example_documents_every_setting() -> None:
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    assert documented == setting_names()


def test_compose_runs_migrations_once_before_the_api(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["alembic", "upgrade", "head"]
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    assert services["api"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"


def test_compose_sets_only_real_settings(compose: dict[str, Any]) -> None:
    for name in ("migrate", "api", "worker"):
        assert set(compose["services"][name]["environment"]) <= setting_names()
    api_environment = compose["services"]["api"]["environment"]
    assert api_environment["ENVIRONMENT"] == "production"
    assert api_environment["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert api_environment["REDIS_URL"].startswith("redis://")


def test_dockerfile_installs_the_hashed_lock_and_copies_what_runs() -> None:
    runs = " ".join(dockerfile_instructions("RUN"))
    assert "--require-hashes -r /tmp/requirements.txt" in runs
    for copy in dockerfile_instructions("COPY"):
        if not copy.startswith("--from"):
            source = copy.split()[-2]
            assert (ROOT / source).exists(), source
    command = dockerfile_command()
    assert command[:2] == ["gunicorn", "app.main:app"]
    assert command[command.index("--worker-class") + 1] == "app.core.http.server.UvicornWorker"
    assert command[command.index("--config") + 1] == "gunicorn.conf.py"


@pytest.fixture
def container_environment(postgres_url: str, compose: dict[str, Any]) -> dict[str, str]:
    """The api service's environment, pointed at this machine's PostgreSQL and Redis."""
    redis_url = os.environ.get("TEST_REDIS_URL")
    if redis_url is None:
        pytest.skip("needs Redis: set TEST_REDIS_URL=redis://...")
    environment = {
        key: with_compose_defaults(value)
        for key, value in compose["services"]["api"]["environment"].items()
        # The compose network's addresses; this machine's servers replace them below.
        if key not in ("SMTP_HOST", "SMTP_PORT", "SMTP_SECURITY")
    }
    environment |= {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "WEB_CONCURRENCY": "2",
        "DOCS_ENABLED": "false",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    return environment


async def test_the_image_commands_migrate_and_serve(container_environment: dict[str, str]) -> None:
    migrate = await asyncio.create_subprocess_exec(
        "alembic", "upgrade", "head", cwd=ROOT, env=container_environment
    )
    assert await migrate.wait() == 0

    port = free_port()
    command = [part.replace("0.0.0.0:8000", f"127.0.0.1:{port}") for part in dockerfile_command()]
    server = await asyncio.create_subprocess_exec(*command, cwd=ROOT, env=container_environment)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(100):
                try:
                    ready = await http.get("/health/ready")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("gunicorn did not start serving within 10 s")
            assert ready.status_code == 200
            assert set(ready.json()["checks"]) == {"database", "redis"}
            assert (await http.get("/docs")).status_code == 404
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), timeout=30)
