"""OpenTelemetry tracing: request, SQL, Redis and outgoing HTTP spans, exported over OTLP.

Tracing is on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (or `OTEL_ENABLED=true`). When it is
off nothing is created: no provider, no instrumentation, no trace ids in logs, and services
get a no-op tracer, so a disabled deployment pays nothing on the request path.

Request spans come from FastAPI's native telemetry (`FastAPI(telemetry=...)`), fed an
explicit provider rather than the global one, so two apps in one process (tests) never
share or leak spans.
"""

from collections.abc import MutableMapping
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings

TRACER_NAME = "app"
# Scrapes arrive every few seconds and would drown the traces that matter.
_UNTRACED_PATHS = frozenset({"/metrics"})

# FastAPI traces requests as soon as any global provider exists; this keeps a disabled app
# off the tracing path even when a library in the process installs one.
DISABLED: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in _UNTRACED_PATHS


class Telemetry:
    """A tracer provider and the instrumentation that feeds it, for one application."""

    def __init__(self, settings: Settings, exporter: SpanExporter | None = None) -> None:
        resource = Resource.create(
            {
                "service.name": settings.otel_service_name,
                "service.version": settings.version,
                "deployment.environment.name": settings.environment.value,
            }
        )
        self.provider = TracerProvider(
            resource=resource, sampler=ParentBased(TraceIdRatioBased(settings.otel_sample_ratio))
        )
        if exporter is None:
            endpoint = settings.otel_exporter_otlp_endpoint
            # None lets the exporter read the OTEL_EXPORTER_OTLP_* variables itself.
            exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces" if endpoint else None)
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer(TRACER_NAME)

    def fastapi_config(self) -> TelemetryConfig:
        # Prometheus serves the metrics and the log handler the logs; only spans go out here.
        return {
            "tracer_provider": self.provider,
            "tracing": True,
            "metrics": False,
            "logs": False,
            "exclude": _untraced,
        }

    def instrument(self, engine: AsyncEngine) -> None:
        """Trace SQL on the engine, and every Redis command and httpx request."""
        # The SQLAlchemy instrumentation declares support up to 2.0 only; it hooks the
        # engine events that 2.1 keeps, and the telemetry tests check the spans still come.
        SQLAlchemyInstrumentor().instrument(
            engine=engine.sync_engine, tracer_provider=self.provider, skip_dep_check=True
        )
        RedisInstrumentor().instrument(tracer_provider=self.provider)
        HTTPXClientInstrumentor().instrument(tracer_provider=self.provider)

    def shutdown(self) -> None:
        """Undo the instrumentation and flush the spans still queued for export."""
        for instrumentor in (
            HTTPXClientInstrumentor(),
            RedisInstrumentor(),
            SQLAlchemyInstrumentor(),
        ):
            instrumentor.uninstrument()
        self.provider.shutdown()


def create_telemetry(settings: Settings, exporter: SpanExporter | None = None) -> Telemetry | None:
    """The application's telemetry, or None when tracing is off.

    `exporter` replaces the OTLP exporter (tests pass an in-memory one); the settings still
    decide whether there is anything to export.
    """
    if not settings.tracing_enabled:
        return None
    return Telemetry(settings, exporter)


def tracer_for(telemetry: Telemetry | None) -> trace.Tracer:
    return telemetry.tracer if telemetry is not None else trace.NoOpTracer()
