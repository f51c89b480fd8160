"""Structured logging: JSON lines in production, readable text locally.

Every record carries the request id (and the trace and span ids once tracing sets them),
so one request can be followed across log lines and services.
"""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from app.core.context import request_id_var

# `trace` is the text formatter's rendering of the two ids.
_CONTEXT = {"request_id", "trace_id", "span_id", "trace"}
# Attributes every LogRecord has; anything else was passed through `extra=` and is logged.
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"} | _CONTEXT


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class TraceContextFilter(logging.Filter):
    """Adds the current trace and span ids in their W3C hex form.

    Installed only while tracing is on, so a disabled deployment does no span lookup per line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = trace.format_trace_id(context.trace_id)
            record.span_id = trace.format_span_id(context.span_id)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        if hasattr(record, "trace_id"):
            entry["trace_id"] = record.trace_id
            entry["span_id"] = getattr(record, "span_id", None)
        entry.update((key, value) for key, value in record.__dict__.items() if key not in _RESERVED)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)-7s [%(request_id)s%(trace)s] %(name)s: %(message)s"
        )

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = "-"
        trace_id = getattr(record, "trace_id", None)
        record.trace = f" {trace_id}/{getattr(record, 'span_id', '-')}" if trace_id else ""
        return super().format(record)


def configure_logging(*, level: str, json_lines: bool, trace_ids: bool = False) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    handler.addFilter(RequestContextFilter())
    if trace_ids:
        handler.addFilter(TraceContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Uvicorn's own loggers go through the same handler so every line has one format.
    for name in ("uvicorn", "uvicorn.error", "gunicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
