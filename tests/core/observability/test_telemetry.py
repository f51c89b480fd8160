import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import text

from app.core.config import Settings
from app.core.deps import SessionDep, TracerDep
from app.core.observability.logging import JsonFormatter, RequestContextFilter, TraceContextFilter
from app.main import create_app
from tests.conftest import running, variant

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def traced_app(settings: Settings, exporter: InMemorySpanExporter) -> FastAPI:
    application = create_app(settings, span_exporter=exporter)

    @application.get("/reports/{report_id}")
    async def read_report(report_id: int, session: SessionDep, tracer: TracerDep) -> dict[str, int]:
        with tracer.start_as_current_span("reports.compute"):
            value = (
                await session.execute(text("SELECT CAST(:n AS INTEGER)"), {"n": report_id})
            ).scalar_one()
            logging.getLogger("app.reports").warning("computed report %s", report_id)
        return {"value": value}

    return application


def instrumented() -> list[str]:
    instrumentors: dict[str, BaseInstrumentor] = {
        "sqlalchemy": SQLAlchemyInstrumentor(),
        "redis": RedisInstrumentor(),
        "httpx": HTTPXClientInstrumentor(),
    }
    return [name for name, it in instrumentors.items() if it.is_instrumented_by_opentelemetry]


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    handler.addFilter(TraceContextFilter())
    reports = logging.getLogger("app.reports")
    reports.addHandler(handler)
    try:
        yield stream
    finally:
        reports.removeHandler(handler)


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    matching = [span for span in spans if span.name == name]
    assert matching, f"no span {name!r} among {[span.name for span in spans]}"
    return matching[0]


async def test_enabled_tracing_exports_request_domain_and_sql_spans(
    migrated: Settings, log_lines: io.StringIO
) -> None:
    exporter = InMemorySpanExporter()
    application = traced_app(variant(migrated, otel_enabled=True), exporter)
    async with running(application) as client:
        assert instrumented() == ["sqlalchemy", "redis", "httpx"]
        response = await client.get(
            "/reports/7", headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
        )
        assert response.json() == {"value": 7}
    assert instrumented() == [], "shutdown must undo the instrumentation"

    spans = exporter.get_finished_spans()
    request = by_name(spans, "GET /reports/{report_id}")
    assert request.kind is SpanKind.SERVER
    assert request.attributes is not None
    assert request.attributes["http.route"] == "/reports/{report_id}"
    assert request.resource.attributes["service.name"] == "fastapi-reference-service"
    assert request.resource.attributes["service.version"] == migrated.version
    domain = by_name(spans, "reports.compute")
    sql = [span for span in spans if span.kind is SpanKind.CLIENT and "SELECT" in span.name]
    assert sql, f"no SQL span among {[span.name for span in spans]}"
    for span in (request, domain, *sql):
        assert trace.format_trace_id(span.context.trace_id) == TRACE_ID
    assert sql[0].parent is not None
    assert sql[0].parent.span_id == domain.context.span_id

    entry = json.loads(log_lines.getvalue().splitlines()[0])
    assert entry["trace_id"] == TRACE_ID
    assert entry["span_id"] == trace.format_span_id(domain.context.span_id)


async def test_disabled_tracing_creates_and_exports_nothing(
    migrated: Settings, log_lines: io.StringIO
) -> None:
    exporter = InMemorySpanExporter()
    application = traced_app(variant(migrated, otel_enabled=None), exporter)
    assert application.state.telemetry is None
    assert isinstance(application.state.tracer, trace.NoOpTracer)
    root_filters = logging.getLogger().handlers[0].filters
    assert not any(isinstance(f, TraceContextFilter) for f in root_filters)
    async with running(application) as client:
        assert instrumented() == []
        assert (await client.get("/reports/3")).json() == {"value": 3}
    assert exporter.get_finished_spans() == ()
    entry = json.loads(log_lines.getvalue().splitlines()[0])
    assert "trace_id" not in entry


def test_an_otlp_endpoint_turns_tracing_on(migrated: Settings) -> None:
    settings = variant(migrated, otel_exporter_otlp_endpoint="http://collector:4318/")
    assert settings.tracing_enabled
    assert settings.otel_exporter_otlp_endpoint == "http://collector:4318"
    assert not variant(settings, otel_enabled=False).tracing_enabled
    with pytest.raises(ValueError, match="http"):
        variant(migrated, otel_exporter_otlp_endpoint="collector:4318")
