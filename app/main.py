"""Application factory and the ASGI entry point (`app.main:app`)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api import health
from app.api.router import api_router
from app.core.config import InsecureConfigurationError, Settings, get_settings
from app.core.errors import install_error_handlers
from app.core.logging import configure_logging
from app.core.middleware import RequestContextMiddleware
from app.core.resources import open_resources
from app.domains.users.service import ensure_admin

DESCRIPTION = """
A layered REST API: users and authentication, a catalog of items, orders and posts.

Every error is an RFC 9457 `application/problem+json` document; every response carries
`X-Request-ID`. Money is a decimal string with two places. Lists are pages:
`{"items": [...], "total": N, "offset": O, "limit": L}`.
"""

TAGS = [
    {"name": "auth", "description": "Log in, rotate refresh tokens, log out."},
    {"name": "users", "description": "Registration, your account, user administration."},
    {"name": "health", "description": "Liveness and readiness probes."},
]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    async with open_resources(settings) as resources:
        if settings.first_admin_email and settings.first_admin_password:
            await ensure_admin(
                resources.sessionmaker,
                resources.passwords,
                email=settings.first_admin_email,
                password=settings.first_admin_password.get_secret_value(),
            )
        app.state.resources = resources
        yield


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.check_production()
    configure_logging(level=settings.log_level, json_lines=settings.json_logs)

    docs = settings.show_docs
    app = FastAPI(
        title=settings.project_name,
        description=DESCRIPTION,
        version=settings.version,
        contact={"name": "Service maintainers", "email": "maintainers@example.com"},
        license_info={"name": "MIT", "identifier": "MIT"},
        openapi_tags=TAGS,
        openapi_url="/openapi.json" if docs else None,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(api_router)
    app.add_middleware(RequestContextMiddleware)
    return app


def _create_default_app() -> FastAPI:
    try:
        return create_app()
    except InsecureConfigurationError as error:
        # One clear line for the operator instead of a traceback.
        raise SystemExit(f"refusing to start in production: {error}") from None


app = _create_default_app()
