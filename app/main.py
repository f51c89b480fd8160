"""Application factory and the ASGI entry point (`app.main:app`)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter

from app.api import health
from app.api.router import include_v1
from app.api.v1 import webhooks
from app.core.config import Settings, get_settings, settings_or_exit
from app.core.http.docs import install_docs
from app.core.http.edge import Edge
from app.core.http.metrics import metrics_endpoint
from app.core.http.openapi import install_openapi, operation_id
from app.core.http.problems import install_error_handlers
from app.core.observability import telemetry as otel
from app.core.observability.logging import configure_logging
from app.core.observability.metrics import pool_usage_refresh
from app.core.resources import open_resources
from app.domains.users.service import ensure_admin
from app.jobs import register_handlers
from app.pages import links

DESCRIPTION = """
A layered REST API: users and authentication, a catalog of items, orders and posts.

Every error is an RFC 9457 `application/problem+json` document; every response carries
`X-Request-ID`. Money is a decimal string with two places. Lists are pages:
`{"items": [...], "total": N, "offset": O, "limit": L, "next_cursor": ...}`; pass
`next_cursor` back as `?cursor=` for the following page.
"""

TAGS = [
    {
        "name": "auth",
        "description": "Log in, rotate refresh tokens, log out; reset a password, verify an email.",
    },
    {"name": "users", "description": "Registration, your account, user administration."},
    {
        "name": "api-keys",
        "description": "Personal access tokens: send `Authorization: Bearer fsk_...` wherever "
        "an access token is accepted (in Swagger: Authorize, then the APIKey field).",
    },
    {"name": "items", "description": "The catalog: public cached reads, owners change items."},
    {"name": "posts", "description": "Posts: public reads, authors write."},
    {
        "name": "orders",
        "description": "Place orders priced on the server, read, cancel and ship them.",
    },
    {
        "name": "webhooks",
        "description": "Order events signed and sent to your endpoints (administrators).",
    },
    {
        "name": "events",
        "description": "Order events as they happen, over server-sent events (`EventSource`).",
    },
    {"name": "audit", "description": "The append-only audit log (administrators)."},
    {"name": "health", "description": "Liveness and readiness probes."},
]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    telemetry: otel.Telemetry | None = app.state.telemetry
    async with open_resources(settings, register_handlers, app.state.tracer) as resources:
        if settings.first_admin_email and settings.first_admin_password:
            await ensure_admin(
                resources.sessionmaker,
                resources.passwords,
                email=settings.first_admin_email,
                password=settings.first_admin_password.get_secret_value(),
            )
        app.state.resources = resources
        if telemetry is not None:
            telemetry.instrument(resources.engine)
        try:
            async with pool_usage_refresh(resources.engine):
                yield
        finally:
            if telemetry is not None:
                telemetry.shutdown()


def create_app(
    settings: Settings | None = None, *, span_exporter: SpanExporter | None = None
) -> FastAPI:
    """Build the application; `span_exporter` replaces OTLP export when tracing is on."""
    settings = settings or get_settings()
    settings.check_production()
    telemetry = otel.create_telemetry(settings, span_exporter)
    configure_logging(
        level=settings.log_level, json_lines=settings.json_logs, trace_ids=telemetry is not None
    )

    docs = settings.show_docs
    app = FastAPI(
        title=settings.project_name,
        description=DESCRIPTION,
        version=settings.version,
        contact={"name": "Service maintainers", "email": "maintainers@example.com"},
        license_info={"name": "MIT", "identifier": "MIT"},
        openapi_tags=TAGS,
        generate_unique_id_function=operation_id,
        openapi_url="/openapi.json" if docs else None,
        # FastAPI's own pages load their assets from a CDN; install_docs serves local ones.
        docs_url=None,
        redoc_url=None,
        swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None},
        lifespan=lifespan,
        telemetry=telemetry.fastapi_config() if telemetry is not None else otel.DISABLED,
    )
    app.state.settings = settings
    app.state.telemetry = telemetry
    app.state.tracer = otel.tracer_for(telemetry)
    install_error_handlers(app)
    install_openapi(app, sent=webhooks.SENT_PAYLOADS)
    # Probes first: two routes, matched before the API's many.
    app.include_router(health.router)
    include_v1(app)
    # The pages the emailed links open, last: two paths, rarely asked for.
    app.include_router(links.router)
    if docs:
        install_docs(app, openapi_url="/openapi.json")
    if settings.metrics_enabled:
        app.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    # The one middleware: everything between the server and the routes (app.core.http.edge).
    app.add_middleware(Edge, settings=settings)
    return app


def _create_default_app() -> FastAPI:
    # One clear line for the operator instead of a traceback.
    return create_app(settings_or_exit())


app = _create_default_app()
