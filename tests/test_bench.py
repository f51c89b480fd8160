"""The benchmark's pure parts: reading wrk's summary, medians, verdicts, command lines."""

import json
from pathlib import Path

import pytest

from bench.baselines.database import asyncpg_dsn
from bench.prepare import Backends, Catalog, StockCheck
from bench.report import Summary, Verdict, table, verdicts
from bench.scenarios import TARGET_REFERENCE, ServerName, build_scenarios
from bench.servers import gunicorn_command
from bench.service import RAISED_RATE_LIMIT, service_environment
from bench.wrk import MARKER, Load, WrkError, WrkResult, parse_summary, wrk_command


def summary_line(**overrides: object) -> str:
    values: dict[str, object] = {
        "requests": 1000,
        "duration_us": 2_000_000,
        "bytes": 123456,
        "connect_errors": 0,
        "read_errors": 1,
        "write_errors": 0,
        "status_errors": 3,
        "timeouts": 2,
        "latency_mean_us": 1500.5,
        "latency_max_us": 9000,
        "latency_p50_us": 1200,
        "latency_p90_us": 2500,
        "latency_p99_us": 7000,
        "statuses": {"200": 990, "304": 7, "429": 3},
    }
    values.update(overrides)
    return MARKER + json.dumps(values)


def result(rps: float, p99: float = 10.0, errors: int = 0) -> WrkResult:
    return WrkResult(
        requests=int(rps * 10),
        seconds=10.0,
        p50_ms=p99 / 2,
        p90_ms=p99 / 1.5,
        p99_ms=p99,
        max_ms=p99 * 2,
        socket_errors=errors,
        timeouts=0,
        statuses={200: int(rps * 10)},
    )


def test_summary_is_read_from_the_marked_line() -> None:
    output = "Running 2s test @ http://127.0.0.1:1/\n  Requests/sec: 500.00\n" + summary_line()
    parsed = parse_summary(output)
    assert parsed.requests_per_second == 500
    assert (parsed.p50_ms, parsed.p90_ms, parsed.p99_ms, parsed.max_ms) == (1.2, 2.5, 7.0, 9.0)


def test_errors_are_non_2xx_plus_socket_errors_and_timeouts() -> None:
    parsed = parse_summary(summary_line())
    # A 304 is not a 2xx (wrk's own count would miss it); wrk's status count is not added.
    assert parsed.non_2xx == 10
    assert parsed.errors == 10 + 1 + 2
    assert parsed.successes == 990


def test_a_run_without_responses_parses() -> None:
    parsed = parse_summary(
        summary_line(requests=0, statuses={}, latency_p50_us=None, latency_mean_us=None)
    )
    assert parsed.requests_per_second == 0
    assert parsed.p50_ms == 0


@pytest.mark.parametrize("output", ["", "Running 2s test\n", MARKER + "{not json", MARKER + "{}"])
def test_a_missing_or_broken_summary_is_an_error(output: str) -> None:
    with pytest.raises(WrkError):
        parse_summary(output)


def test_summary_takes_medians_and_sums_errors() -> None:
    summary = Summary.of([result(100, 30, 1), result(300, 10), result(200, 20, 2)])
    assert summary.requests_per_second == 200
    assert summary.p99_ms == 20
    assert summary.errors == 3
    assert summary.repetitions == 3
    assert not summary.all_failed


def test_a_scenario_whose_every_request_failed_is_flagged() -> None:
    failed = WrkResult(0, 1.0, 0, 0, 0, 0, socket_errors=64, timeouts=0)
    assert Summary.of([failed]).all_failed


def test_verdicts_compare_ratios_to_the_pk_read_and_bound_p99() -> None:
    scenarios = build_scenarios(Catalog(1, 100, 1, 5), "token", Path("tokens.txt"))
    summaries = {scenario.key: Summary.of([result(1000, 40)]) for scenario in scenarios}
    summaries[TARGET_REFERENCE] = Summary.of([result(2000, 5)])
    found = {verdict.name: verdict for verdict in verdicts(scenarios, summaries)}
    cached = found["GET /api/v1/items/{id} cached: req/s vs pk-read"]
    assert cached.measured == 0.5
    assert not cached.met
    assert found["GET /api/v1/users/me: req/s vs pk-read"].met
    assert found["POST /api/v1/orders random item: p99"].met
    assert not any(name.startswith("bare ASGI") for name in found)
    assert Verdict("cold start", 1.2, 1.5, at_least=False).met


def test_every_row_names_the_baseline_it_is_compared_to() -> None:
    scenarios = build_scenarios(Catalog(1, 100, 1, 5), "token", Path("tokens.txt"))
    summaries = {scenario.key: Summary.of([result(1000)]) for scenario in scenarios}
    printed = table(scenarios, summaries)
    health = next(line for line in printed.splitlines() if line.startswith("GET /health"))
    assert "bare-asgi" in health
    assert "1.00x" in health


def test_scenarios_use_every_server_and_keep_the_hot_item_out_of_spread_orders() -> None:
    scenarios = build_scenarios(Catalog(10, 100, 10, 5), "token", Path("tokens.txt"))
    assert {scenario.server for scenario in scenarios} == set(ServerName)
    spread = next(scenario for scenario in scenarios if scenario.key == "order")
    hot = next(scenario for scenario in scenarios if scenario.key == "order-hot")
    assert spread.arguments[1:] == ("11", "100")
    assert hot.arguments[1:] == ("10", "10")


def test_the_service_runs_in_production_with_every_limit_raised() -> None:
    environment = service_environment(
        Backends("postgresql+asyncpg://postgres@db/bench", "redis://cache/12"),
        "secret",
        cache_enabled=False,
    )
    assert environment["ENVIRONMENT"] == "production"
    assert environment["RATE_LIMIT_ENABLED"] == "true"
    assert environment["RATE_LIMIT_LOGIN"] == RAISED_RATE_LIMIT
    assert environment["RATE_LIMIT_ORDERS"] == RAISED_RATE_LIMIT
    assert environment["CACHE_ENABLED"] == "false"
    assert environment["OTEL_ENABLED"] == "false"


def test_command_lines_pin_when_asked() -> None:
    load = Load(connections=64, seconds=10, threads=4, cpu=0)
    command = wrk_command("http://127.0.0.1:1/x", "item.lua", ["/x/", "1", "9"], load, ["A: b"])
    assert command[:3] == ["taskset", "--cpu-list", "0"]
    assert "--duration=10s" in command
    assert command[-4:] == ["--", "/x/", "1", "9"]
    assert "--header=A: b" in command
    server = gunicorn_command("app.main:app", "gunicorn.conf.py", 8000, None, python="python")
    assert "app.core.http.server.UvicornWorker" in server
    assert server[0] == "python"


def test_stock_check_and_dsn() -> None:
    assert StockCheck(1, 100, 90, 10).exact
    assert not StockCheck(1, 100, 91, 10).exact
    assert asyncpg_dsn("postgresql+asyncpg://u@h:5432/bench") == "postgresql://u@h:5432/bench"
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        asyncpg_dsn("sqlite:///x.db")


def test_a_busy_run_without_any_response_fails_the_error_target() -> None:
    scenarios = build_scenarios(Catalog(1, 100, 1, 5), "token", Path("tokens.txt"))
    summaries = {scenario.key: Summary.of([result(1000)]) for scenario in scenarios}
    stalled = Summary.of([WrkResult(0, 10.0, 0, 0, 0, 0, socket_errors=0, timeouts=0)])
    found = verdicts(scenarios, summaries, high_concurrency={"order-hot": stalled})
    busy = next(verdict for verdict in found if verdict.name.startswith("errors at 256"))
    assert busy.measured is None
    assert not busy.met
