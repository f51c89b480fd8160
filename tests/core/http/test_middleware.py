import io
import json
import logging
import sys

import httpx

from app.core.observability.logging import JsonFormatter, RequestContextFilter, TextFormatter


async def test_well_formed_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "abc-123.def:4_5"})
    assert response.headers["x-request-id"] == "abc-123.def:4_5"


async def test_request_id_is_generated_when_absent(client: httpx.AsyncClient) -> None:
    first = (await client.get("/health")).headers["x-request-id"]
    second = (await client.get("/health")).headers["x-request-id"]
    assert len(first) == 32
    assert first != second


async def test_malformed_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    for hostile in ["bad id with spaces", "x" * 129, "<script>", "a\u00e9b"]:
        response = await client.get("/health", headers={b"X-Request-ID": hostile.encode()})
        assert response.headers["x-request-id"] != hostile
        assert len(response.headers["x-request-id"]) == 32


async def test_error_responses_carry_the_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/missing", headers={"X-Request-ID": "trace-me"})
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "trace-me"
    assert response.json()["request_id"] == "trace-me"


async def test_log_lines_carry_the_request_id(client: httpx.AsyncClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    request_logger = logging.getLogger("app.request")
    request_logger.addHandler(handler)
    previous_level = request_logger.level
    request_logger.setLevel(logging.INFO)
    try:
        await client.get("/health", headers={"X-Request-ID": "log-me"})
    finally:
        request_logger.removeHandler(handler)
        request_logger.setLevel(previous_level)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert any(
        entry["request_id"] == "log-me" and entry["status"] == 200 and entry["path"] == "/health"
        for entry in entries
    )


def captured_request_log(formatter: logging.Formatter) -> tuple[logging.Handler, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RequestContextFilter())
    return handler, stream


async def test_a_newline_in_the_path_cannot_forge_a_text_log_line(
    client: httpx.AsyncClient,
) -> None:
    handler, stream = captured_request_log(TextFormatter())
    request_logger = logging.getLogger("app.request")
    request_logger.addHandler(handler)
    previous_level = request_logger.level
    request_logger.setLevel(logging.INFO)
    try:
        await client.get("/health%0a2030-01-01 00:00:00 INFO [admin] forged%1b[2J%5c")
    finally:
        request_logger.removeHandler(handler)
        request_logger.setLevel(previous_level)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert "/health\\n2030-01-01 00:00:00 INFO [admin] forged\\x1b[2J\\\\ 404" in lines[0]


def test_a_traceback_keeps_its_lines_in_a_text_log() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "a\nb", None, sys.exc_info())
    rendered = TextFormatter().format(record)
    assert "a\\nb" in rendered
    assert "Traceback (most recent call last):\n" in rendered


def test_json_lines_leave_out_uvicorns_colour_copy_of_the_message() -> None:
    record = logging.makeLogRecord(
        {"msg": "Started server process", "color_message": "\x1b[32mStarted\x1b[0m"}
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "Started server process"
    assert "color_message" not in entry
