"""The benchmark's pure parts: reading wrk's summary, medians, verdicts, the tables,
command lines, and the instruction counter's bookkeeping."""

import contextlib
import json
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.asgi import InProcess
from bench.baselines.database import asyncpg_dsn
from bench.cache import parse_cache_counts
from bench.exercise import Workload
from bench.instructions import callgrind_total, per_request
from bench.markdown import other_tables, results_table, targets_table
from bench.options import Options
from bench.outcome import Outcome
from bench.prepare import Backends, Catalog, StockCheck
from bench.report import table, verdict_table
from bench.scenarios import TARGET_REFERENCE, ServerName, build_scenarios
from bench.servers import gunicorn_command
from bench.service import RAISED_RATE_LIMIT, service_environment
from bench.summary import Summary
from bench.verdicts import Verdict, verdicts
from bench.wrk import MARKER, Load, WrkError, WrkResult, parse_summary, wrk_command

SCENARIOS = build_scenarios(Catalog(1, 100, 1, 5), "token", Path("tokens.txt"))


SUMMARY = json.loads(
    '{"requests": 1000, "duration_us": 2000000, "bytes": 123456, "connect_errors": 0,'
    ' "read_errors": 1, "write_errors": 0, "status_errors": 3, "timeouts": 2, "refused": 0,'
    ' "latency_mean_us": 1500.5, "latency_max_us": 9000, "latency_p50_us": 1200,'
    ' "latency_p90_us": 2500, "latency_p99_us": 7000,'
    ' "statuses": {"200": 990, "304": 7, "429": 3}}'
)


def summary_line(**overrides: object) -> str:
    return MARKER + json.dumps(SUMMARY | overrides)


def result(rps: float, p99: float = 10.0, errors: int = 0, *, p50: float = 0) -> WrkResult:
    requests, p50 = int(rps * 10), p50 or p99 / 2
    return WrkResult(requests, 10.0, p50, p99 / 1.5, p99, p99 * 2, errors, 0, {200: requests})


def summaries_of(rps: float = 1000, p99: float = 10.0) -> dict[str, Summary]:
    return {scenario.key: Summary.of([result(rps, p99)]) for scenario in SCENARIOS}


def test_summary_is_read_from_the_marked_line_and_errors_are_every_non_2xx() -> None:
    parsed = parse_summary("Running 2s test @ http://127.0.0.1:1/\n" + summary_line())
    assert parsed.requests_per_second == 500
    assert (parsed.p50_ms, parsed.p90_ms, parsed.p99_ms, parsed.max_ms) == (1.2, 2.5, 7.0, 9.0)
    # A 304 is not a 2xx (wrk's own count would miss it); wrk's status count is not added.
    assert (parsed.non_2xx, parsed.errors, parsed.successes) == (10, 10 + 1 + 2, 990)


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
    assert (summary.requests_per_second, summary.p99_ms, summary.errors) == (200, 20, 3)
    assert (summary.repetitions, summary.all_failed) == (3, False)
    failed = WrkResult(0, 1.0, 0, 0, 0, 0, socket_errors=64, timeouts=0)
    assert Summary.of([failed]).all_failed


def test_busy_errors_tell_timeouts_and_overload_refusals_from_the_rest() -> None:
    parsed = parse_summary(summary_line(statuses={"200": 900, "503": 100}, refused=95))
    # Five 503s lacked the overloaded type or Retry-After: errors like any other.
    assert parsed.other_errors == 5 + 1
    assert parsed.timeouts == 2
    assert parsed.tail_ratio == pytest.approx(7000 / 1200)


def test_verdicts_are_the_section_8_targets_against_the_pk_read() -> None:
    summaries = summaries_of(1000)
    summaries[TARGET_REFERENCE] = Summary.of([result(2000, 5)])
    found = {(v.name, v.stretch): v for v in verdicts(SCENARIOS, summaries)}
    budget = {
        name: v.bound for (name, stretch), v in found.items() if "pk-read" in name and not stretch
    }
    stretches = {name: v.bound for (name, stretch), v in found.items() if stretch}
    assert budget == {
        "GET /health: req/s vs pk-read": 1.3,
        "GET /api/v1/items/{id} cached: req/s vs pk-read": 0.6,
        "GET /api/v1/items/{id} uncached: req/s vs pk-read": 0.4,
        "GET /api/v1/items?sort=price page: req/s vs pk-read": 0.45,
        "GET /api/v1/users/me: req/s vs pk-read": 0.45,
        "POST /api/v1/orders random item: req/s vs pk-read": 0.2,
        "POST /api/v1/orders hot item: req/s vs pk-read": 0.1,
    }
    assert stretches == {
        "GET /api/v1/items/{id} cached: req/s vs pk-read": 0.8,
        "GET /api/v1/items/{id} uncached: req/s vs pk-read": 0.45,
    }
    cached = found["GET /api/v1/items/{id} cached: req/s vs pk-read", False]
    assert cached.measured == 0.5
    assert not cached.met
    assert found["GET /api/v1/users/me: req/s vs pk-read", False].met
    assert not any(name.startswith(("bare ASGI", "Starlette")) for name, _ in found)


def test_every_service_row_has_its_tail_bounded_at_three_times_p50() -> None:
    summaries = summaries_of()
    summaries["users-me"] = Summary.of([result(1000, 80, p50=10), result(1000, 20, p50=10)])
    summaries["health"] = Summary.of([result(1000, 31, p50=10)])
    found = {v.name: v for v in verdicts(SCENARIOS, summaries) if v.name.endswith("p99/p50")}
    assert len(found) == 8
    # The median of the repetitions' own ratios (8x and 2x), not a ratio of medians.
    assert found["GET /api/v1/users/me: p99/p50"].measured == 5
    assert not found["GET /api/v1/users/me: p99/p50"].met
    assert not found["GET /health: p99/p50"].met
    assert found["POST /api/v1/auth/token (Argon2): p99/p50"].met


def test_a_missed_stretch_target_is_reported_without_reading_as_a_miss() -> None:
    stretch = Verdict("cached", 0.7, 0.8, at_least=True, unit="x", stretch=True)
    printed = verdict_table([stretch, Verdict("cold start", 2.0, 1.5, at_least=False, unit="s")])
    first, second = printed.splitlines()
    assert ("stretch missed" in first, "MISSED" in first, "MISSED" in second) == (True, False, True)


def busy(**statuses: int) -> Summary:
    timeouts, refused = statuses.pop("timeouts", 0), statuses.pop("refused", 0)
    counts = {int(status.removeprefix("s")): count for status, count in statuses.items()}
    run = WrkResult(sum(counts.values()), 10.0, 1, 2, 3, 4, 0, timeouts, counts, refused)
    return Summary.of([run])


@pytest.mark.parametrize(
    ("high", "timeouts_met", "errors_met"),
    [
        ({"order": busy(s201=100, s503=400, refused=400)}, True, True),
        ({"order": busy(s201=100, s503=400, refused=400, timeouts=3)}, False, True),
        ({"order": busy(s201=100, s503=400, refused=399)}, True, False),
        ({"order": busy(s201=100, s500=1)}, True, False),
        ({"order-hot": busy()}, False, False),
    ],
)
def test_at_256_connections_only_overload_refusals_with_retry_after_are_allowed(
    high: dict[str, Summary], timeouts_met: bool, errors_met: bool
) -> None:
    found = verdicts(SCENARIOS, summaries_of(), high_concurrency=high)
    timeouts, errors = (v for v in found if "256" in v.name)
    assert (timeouts.met, errors.met) == (timeouts_met, errors_met)


def test_the_flash_sale_and_two_workers_are_judged() -> None:
    two = {"health": Summary.of([result(900)]), "item-cached": Summary.of([result(1800)])}
    stock = StockCheck(1, 100, 90, 10)
    found = verdicts(SCENARIOS, summaries_of(), stock=stock, hot_orders=11, two_workers=two)
    by_name = {verdict.name: verdict for verdict in found}
    # Eleven answered 201 but ten ordered: one unit unaccounted for.
    assert by_name["POST /api/v1/orders hot item: stock units unaccounted for"].measured == 1
    scaling = by_name["2 workers vs 1, item-cached req/s"]
    assert (scaling.measured, scaling.bound, scaling.met) == (1.8, 1.7, True)


def test_the_hit_ratio_is_read_by_namespace_from_the_metrics() -> None:
    exposition = (
        "# HELP cache_hits_total Cache look-ups answered from the cache.\n"
        "# TYPE cache_hits_total counter\n"
        'cache_hits_total{namespace="item"} 990.0\n'
        'cache_hits_total{namespace="items"} 40.0\n'
        "# HELP cache_misses_total Cache look-ups that fell through.\n"
        "# TYPE cache_misses_total counter\n"
        'cache_misses_total{namespace="item"} 10.0\n'
    )
    assert parse_cache_counts(exposition, "item") == (990, 10)
    assert parse_cache_counts(exposition, "items") == (40, 0)
    assert parse_cache_counts(exposition, "user") == (0, 0)
    run = result(100)
    counted = [replace(run, cache_hits=90, cache_misses=10), replace(run, cache_hits=100)]
    assert Summary.of([*counted, run]).cache_hit_ratio == 0.95
    assert Summary.of([run]).cache_hit_ratio is None


def test_scenarios_use_every_server_and_cached_rows_warm_every_path_they_request() -> None:
    catalog = Catalog(10, 100, 10, 5)
    scenarios = {s.key: s for s in build_scenarios(catalog, "t", Path("t"), replica=True)}
    assert {scenario.server for scenario in scenarios.values()} == set(ServerName)
    # Without a replica, no row reads from one.
    alone = build_scenarios(catalog, "t", Path("t"))
    assert ServerName.REPLICA not in {scenario.server for scenario in alone}
    keys = list(scenarios)
    assert keys.index("item-replica") == keys.index("item-uncached") + 1
    assert scenarios["item-replica"].arguments == scenarios["item-uncached"].arguments
    # The hot item is kept out of the spread orders.
    assert scenarios["order"].arguments[1:] == ("11", "100")
    assert scenarios["order-hot"].arguments[1:] == ("10", "10")
    warmed = scenarios["item-cached"].warm_paths
    assert (len(warmed), warmed[0]) == (91, "/api/v1/items/10")
    assert scenarios["list-page"].warm_paths[-1].endswith("&sort=price&order=asc&offset=80")
    assert scenarios["item-uncached"].cache_namespace is None


def test_every_row_prints_its_tail_and_names_the_baseline_it_is_compared_to() -> None:
    printed = table(SCENARIOS, summaries_of())
    assert "p99/p50" in printed.splitlines()[0]
    health = next(line for line in printed.splitlines() if line.startswith("GET /health"))
    assert ("bare-asgi" in health, "1.00x" in health, "2.00x" in health) == (True,) * 3


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


def test_only_the_replica_row_reads_from_the_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    # As scripts.with_replica runs the benchmark: the replica named in its environment.
    monkeypatch.setenv("DATABASE_READ_URL", "postgresql+asyncpg://postgres@standby/bench")
    backends = Backends.from_environment(os.environ)
    assert "DATABASE_READ_URL" not in service_environment(backends, "secret")
    assert "DATABASE_READ_URL" not in service_environment(backends, "secret", cache_enabled=False)
    replica = service_environment(backends, "secret", cache_enabled=False, replica=True)
    assert replica["DATABASE_READ_URL"] == "postgresql+asyncpg://postgres@standby/bench"


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


def test_the_page_tables_carry_every_new_figure() -> None:
    summaries = summaries_of()
    high = {"order": busy(s201=100, s503=400, refused=400, timeouts=2)}
    outcome = Outcome(
        machine={"cpu": "cpu", "cores": 2},
        scenarios=SCENARIOS,
        runs={key: [result(1000)] for key in summaries},
        summaries=summaries,
        high_concurrency=high,
        two_workers={"item-cached": Summary.of([result(1800)])},
        two_worker_rss=[100.0, 100.0],
        cold_starts=[1.0],
        rss=[120.0],
        stock=StockCheck(1, 100, 90, 10),
        hot_orders=10,
        verdicts=[Verdict("cached", 0.7, 0.8, at_least=True, unit="x", stretch=True)],
        pinning=(0, 1),
    )
    document = json.loads(json.dumps(outcome.to_json(Options.parse([], ""))))
    results = results_table(document)
    assert "| p99/p50 |" in results
    assert "| GET /health | 1000 | 5.00 | 10.00 | 2.00x |" in results
    assert "stretch missed" in targets_table(document)
    busy_rows, workers = other_tables(document).split("\n\n")
    assert "| order | 50 | 3.00 | 2 | 400 | 0 |" in busy_rows
    assert "| item-cached (judged by) | 1000 | 1800 | 1.80x |" in workers


def test_instructions_are_each_window_less_the_empty_one_per_request() -> None:
    workload = Workload(("/a", "/b"), (False, True), warmup=5, requests=100)
    assert Workload.from_json(workload.to_json()) == workload
    # Two marks around the empty window and around each path's.
    assert workload.marks == 6
    assert per_request([5_000, 105_000, 20_005_000], 100) == [1_000, 200_000]
    output = "# callgrind format\nevents: Ir\nsummary: 4776807607\ntotals: 4776807607\n"
    assert callgrind_total(output) == 4776807607


async def test_the_app_is_driven_in_process_through_its_lifespan() -> None:
    started: list[bool] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started.append(True)
        yield

    async def echo(request: Request) -> Response:
        return Response(request.url.query + request.headers["authorization"], status_code=201)

    app = Starlette(routes=[Route("/x", echo)], lifespan=lifespan)
    async with InProcess(app) as client:
        assert started == [True]
        assert await client.request("GET", "/x?a=1", [("Authorization", "k")]) == (201, b"a=1k")
