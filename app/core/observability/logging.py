"""Structured logging: JSON lines in production, readable text locally.

Every record carries the request id (and the trace and span ids once tracing sets them),
so one request can be followed across log lines and services.
"""

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from app.core.observability.context import request_id_var

# `trace` is the text formatter's rendering of the two ids.
_CONTEXT = {"request_id", "trace_id", "span_id", "trace"}
# Attributes every LogRecord has; anything else was passed through `extra=` and is logged.
# Uvicorn's `color_message` repeats the message with terminal colour codes.
_RESERVED = (
    set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"} | _CONTEXT
)
# A newline in a request path ("%0a") would otherwise start a forged line in a text log.
# The backslash is escaped too, so an escape in the log always means a control character.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\\]")


def escape_controls(text: str) -> str:
    """Render control characters (and the backslash) as Python-style escapes."""
    return _UNSAFE.sub(lambda match: match.group().encode("unicode_escape").decode(), text)


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

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        # The message only: a traceback appended after it keeps its lines.
        record.message = escape_controls(record.message)
        return super().formatMessage(record)


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
