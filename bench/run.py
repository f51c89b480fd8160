"""Throughput and latency of the service against baselines: `make bench`.

wrk drives every path with Lua scripts (bench/lua/) against servers started as production
starts them: gunicorn with the project's worker class, ENVIRONMENT=production, PostgreSQL
and Redis, rate limits (raised so requests pass), metrics, request ids and security headers
on, JSON logs at WARNING, telemetry off. On two or more cores the servers share one core and
wrk gets another. The baselines (bench/baselines/) run in the same session and the same way.
Repetitions are interleaved across scenarios, so slow drift on a noisy machine spreads over
every row instead of landing on one; the table shows medians.
"""

import argparse
import http.client
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from app.core.config import Settings
from bench.machine import describe
from bench.prepare import (
    HOT_ITEM_STOCK,
    REDIS_KEY_PREFIX,
    Backends,
    DemoSize,
    PrerequisiteError,
    StockCheck,
    check_backends,
    check_stock,
    check_tools,
    last_order_id,
    load_database,
)
from bench.report import Summary, Verdict, table, verdict_table, verdicts
from bench.scenarios import Kind, Scenario, ServerName, build_scenarios
from bench.servers import (
    SERVICE_CONFIG,
    Server,
    ServerError,
    cpu_seconds,
    cpus_for_pinning,
    rss_megabytes,
)
from bench.wrk import Load, WrkError, WrkResult, run_wrk

# High enough that no request of a run is refused, with a one-second window so each
# moving window in Redis holds one second of hits rather than growing all run long.
RAISED_RATE_LIMIT = "1000000/second"
HIGH_CONCURRENCY = 256
WORKER_SCENARIOS = ("health", "item-cached", "users-me")
TOKEN_USERS = 8
BASELINE_APPS = {
    ServerName.BARE_ASGI: "bench.baselines.bare_asgi:app",
    ServerName.PK_READ: "bench.baselines.pk_read:app",
    ServerName.RAW_INSERT: "bench.baselines.insert:app",
}


@dataclass(frozen=True)
class Options:
    quick: bool
    json_path: Path | None
    connections: int
    seconds: float
    repetitions: int
    warmup_seconds: float
    cold_starts: int
    high_concurrency: bool
    demo: DemoSize

    @classmethod
    def parse(cls, argv: Sequence[str] | None) -> "Options":
        parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
        parser.add_argument("--quick", action="store_true", help="a short smoke run for CI")
        parser.add_argument("--json", type=Path, dest="json_path", help="also write results here")
        parser.add_argument("--connections", type=int)
        parser.add_argument("--seconds", type=float)
        parser.add_argument("--repetitions", type=int)
        arguments = parser.parse_args(argv)
        quick: bool = arguments.quick
        return cls(
            quick=quick,
            json_path=arguments.json_path,
            connections=arguments.connections or (16 if quick else 64),
            seconds=arguments.seconds or (1 if quick else 10),
            repetitions=arguments.repetitions or (1 if quick else 3),
            warmup_seconds=0 if quick else 2,
            cold_starts=1 if quick else 5,
            high_concurrency=not quick,
            demo=DemoSize(users=3, items=100, posts=0, orders=0)
            if quick
            else DemoSize(users=20, items=3000, posts=200, orders=500),
        )


def service_environment(
    backends: Backends, secret_key: str, *, cache_enabled: bool = True
) -> dict[str, str]:
    environment = os.environ | {
        "ENVIRONMENT": "production",
        "SECRET_KEY": secret_key,
        "DATABASE_URL": backends.database_url,
        "REDIS_URL": backends.redis_url,
        "REDIS_KEY_PREFIX": REDIS_KEY_PREFIX,
        "RATE_LIMIT_ENABLED": "true",
        "METRICS_ENABLED": "true",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
        "OTEL_ENABLED": "false",
        "CACHE_ENABLED": "true" if cache_enabled else "false",
        # Tokens taken before the run must outlive it; expiry costs nothing per request.
        "ACCESS_TOKEN_EXPIRE_MINUTES": "120",
    }
    # Every limit the settings define, so one added later is raised too.
    for name in Settings.model_fields:
        if name.startswith("rate_limit_") and name != "rate_limit_enabled":
            environment[name.upper()] = RAISED_RATE_LIMIT
    return environment


def cache_setting_supported() -> bool:
    return "cache_enabled" in Settings.model_fields


def baseline_environment(backends: Backends) -> dict[str, str]:
    return os.environ | {"DATABASE_URL": backends.database_url}


def log_in(server: Server, email: str, password: str) -> str:
    form = urllib.parse.urlencode({"username": email, "password": password})
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(
            "POST",
            "/api/v1/auth/token",
            body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = connection.getresponse()
        if response.status != 200:
            raise ServerError(f"logging in as {email} answered {response.status}")
        token: str = json.load(response)["access_token"]
        return token
    finally:
        connection.close()


@contextmanager
def running(servers: Sequence[Server]) -> Iterator[None]:
    with ExitStack() as stack:
        for server in servers:
            server.start()
            stack.callback(server.stop)
        for server in servers:
            server.wait_until_serving()
            server.pin()
        yield


STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def measure_cold_start(environment: Mapping[str, str], cpu: int | None, times: int) -> list[float]:
    """Seconds from process start to the first 200 from /health, one fresh start each."""
    found = []
    for _ in range(times):
        server = Server(
            "cold-start",
            "app.main:app",
            environment,
            cpu=cpu,
            pin_at_start=True,
            config=SERVICE_CONFIG,
        )
        server.start()
        try:
            found.append(server.wait_until_serving())
        finally:
            server.stop()
    return found


def drive(
    scenario: Scenario, servers: Mapping[ServerName, Server], load: Load, connections: int
) -> WrkResult:
    server = servers[scenario.server]
    scenario_load = Load(
        connections=scenario.connections or connections,
        seconds=load.seconds,
        threads=load.threads,
        timeout_seconds=load.timeout_seconds,
        cpu=load.cpu,
    )
    workers = server.worker_pids()
    before = cpu_seconds(workers)
    result = run_wrk(
        server.url + scenario.path,
        scenario.script,
        scenario.arguments,
        scenario_load,
        scenario.headers,
    )
    return replace(result, server_cpu_seconds=cpu_seconds(workers) - before)


def interleaved(
    scenarios: Sequence[Scenario],
    servers: Mapping[ServerName, Server],
    load: Load,
    options: Options,
    label: str,
) -> dict[str, list[WrkResult]]:
    """Every scenario once per repetition, round-robin, after one unrecorded warm-up each."""
    if options.warmup_seconds > 0:
        warmup = Load(options.connections, options.warmup_seconds, load.threads, cpu=load.cpu)
        for scenario in scenarios:
            drive(scenario, servers, warmup, options.connections)
    runs: dict[str, list[WrkResult]] = {scenario.key: [] for scenario in scenarios}
    for repetition in range(options.repetitions):
        for scenario in scenarios:
            result = drive(scenario, servers, load, options.connections)
            runs[scenario.key].append(result)
            progress(
                f"{label} {repetition + 1}/{options.repetitions} {scenario.key:<14} "
                f"{result.requests_per_second:>8.0f} req/s  p99 {result.p99_ms:7.2f} ms  "
                f"errors {result.errors}  cpu {result.cpu_us_per_request or 0:6.0f} us/req"
            )
    return runs


def worker_rss(server: Server) -> list[float]:
    return [round(rss_megabytes(pid), 1) for pid in server.worker_pids()]


def run(options: Options) -> int:
    check_tools()
    backends = Backends.from_environment(os.environ)
    postgres, redis = check_backends(backends)
    machine = describe(postgres, redis)
    # Other work on the machine moves every figure; the load average says how much there was.
    load_before = os.getloadavg()
    progress(f"loading demo data into {backends.database_name} ...")
    catalog = load_database(backends, options.demo)
    pinning = cpus_for_pinning()
    wrk_cpu, server_cpu = pinning if pinning is not None else (None, None)
    secret_key = secrets.token_urlsafe(48)
    environment = service_environment(backends, secret_key)

    progress(f"{catalog.last_id - catalog.first_id + 1} items; cold starts ...")
    cold_starts = measure_cold_start(environment, server_cpu, options.cold_starts)

    servers = {
        ServerName.SERVICE: Server(
            "service", "app.main:app", environment, cpu=server_cpu, config=SERVICE_CONFIG
        ),
        ServerName.UNCACHED: Server(
            "service-uncached",
            "app.main:app",
            service_environment(backends, secret_key, cache_enabled=False),
            cpu=server_cpu,
            config=SERVICE_CONFIG,
        ),
    } | {
        name: Server(name.value, app, baseline_environment(backends), cpu=server_cpu)
        for name, app in BASELINE_APPS.items()
    }
    load = Load(options.connections, options.seconds, threads=1, cpu=wrk_cpu)
    scratch = Path(tempfile.mkdtemp(prefix="bench-tokens-"))
    tokens_file = scratch / "tokens.txt"
    high: dict[str, Summary] = {}
    hot_orders = 0
    progress("starting the servers ...")
    with running(list(servers.values())):
        service = servers[ServerName.SERVICE]
        from app.demo import DEMO_PASSWORD

        tokens = [
            log_in(service, f"demo{number}@example.com", DEMO_PASSWORD)
            for number in range(1, min(TOKEN_USERS, catalog.users) + 1)
        ]
        tokens_file.write_text("\n".join(tokens) + "\n")
        scenarios = build_scenarios(catalog, tokens[0], tokens_file)
        orders_before = last_order_id(backends)
        runs = interleaved(scenarios, servers, load, options, "run")
        rss = worker_rss(service)
        if options.high_concurrency:
            # Longer than wrk's timeout, so a request stuck for the whole run is counted.
            busy = Load(
                HIGH_CONCURRENCY,
                max(options.seconds, load.timeout_seconds + 5),
                threads=1,
                cpu=wrk_cpu,
            )
            for scenario in scenarios:
                if scenario.kind in (Kind.READ, Kind.WRITE):
                    result = drive(scenario, servers, busy, HIGH_CONCURRENCY)
                    high[scenario.key] = Summary.of([result])
                    hot_orders += result.successes if scenario.key == "order-hot" else 0
                    progress(
                        f"{HIGH_CONCURRENCY} connections {scenario.key:<14} "
                        f"{result.requests_per_second:>8.0f} req/s  errors {result.errors}"
                    )
        stock = check_stock(backends, catalog.hot_item_id, HOT_ITEM_STOCK, orders_before)
    hot_orders += sum(result.successes for result in runs["order-hot"])
    summaries = {key: Summary.of(results) for key, results in runs.items()}

    two_workers, two_worker_rss = measure_two_workers(environment, scenarios, options)
    tokens_file.unlink()
    scratch.rmdir()

    load_after = os.getloadavg()
    machine["load_average"] = {"start": load_before, "end": load_after}
    cold_start = statistics.median(cold_starts)
    largest_rss = max(rss) if rss else None
    found = verdicts(
        scenarios,
        summaries,
        high_concurrency=high,
        cold_start_seconds=cold_start,
        rss_megabytes=largest_rss,
    )
    print_report(
        options,
        machine,
        scenarios,
        summaries,
        high,
        found,
        cold_starts,
        rss,
        two_workers,
        two_worker_rss,
        stock,
        hot_orders,
        pinning is not None,
        (load_before[0], load_after[0]),
    )
    if options.json_path is not None:
        document = {
            "machine": machine,
            "conditions": {
                "connections": options.connections,
                "seconds": options.seconds,
                "repetitions": options.repetitions,
                "pinned": pinning is not None,
                "server_cpu": server_cpu,
                "wrk_cpu": wrk_cpu,
                "quick": options.quick,
                "cache_setting_supported": cache_setting_supported(),
                "demo": vars(options.demo),
            },
            "scenarios": [
                {
                    "key": scenario.key,
                    "title": scenario.title,
                    "kind": scenario.kind.value,
                    "baseline": scenario.baseline,
                    "connections": scenario.connections or options.connections,
                    "target_ratio": scenario.target_ratio,
                    "p99_target_ms": scenario.p99_target_ms,
                    "median": summaries[scenario.key].to_json(),
                    "runs": [result.to_json() for result in runs[scenario.key]],
                }
                for scenario in scenarios
            ],
            "high_concurrency": {key: summary.to_json() for key, summary in high.items()},
            "workers": {
                "one_pinned": {key: summaries[key].to_json() for key in two_workers},
                "two_unpinned": {key: summary.to_json() for key, summary in two_workers.items()},
            },
            "cold_start_seconds": {"runs": cold_starts, "median": cold_start},
            "rss_megabytes": {"one_worker": rss, "two_workers": two_worker_rss},
            "flash_sale": stock.to_json() | {"orders_answered_201": hot_orders},
            "targets": [verdict.to_json() for verdict in found],
        }
        options.json_path.parent.mkdir(parents=True, exist_ok=True)
        options.json_path.write_text(json.dumps(document, indent=2) + "\n")
    return failures(scenarios, summaries, stock, hot_orders)


def measure_two_workers(
    environment: Mapping[str, str], scenarios: Sequence[Scenario], options: Options
) -> tuple[dict[str, Summary], list[float]]:
    """The service with two workers, unpinned: the workers and wrk share every core."""
    server = Server(
        "service-2-workers", "app.main:app", environment, workers=2, config=SERVICE_CONFIG
    )
    chosen = [scenario for scenario in scenarios if scenario.key in WORKER_SCENARIOS]
    with running([server]):
        runs = interleaved(
            chosen,
            {ServerName.SERVICE: server},
            Load(options.connections, options.seconds, 2),
            options,
            "2 workers",
        )
        rss = worker_rss(server)
    return {key: Summary.of(results) for key, results in runs.items()}, rss


def failures(
    scenarios: Sequence[Scenario],
    summaries: Mapping[str, Summary],
    stock: StockCheck,
    hot_orders: int,
) -> int:
    """1 when a scenario could not run at all or the flash sale's stock does not add up."""
    failed = [scenario.key for scenario in scenarios if summaries[scenario.key].all_failed]
    for key in failed:
        print(f"bench: every request of {key} failed", file=sys.stderr)
    # A request wrk gave up on may still have placed its order, never the other way round.
    if not stock.exact or hot_orders > stock.ordered:
        print(f"bench: flash-sale stock does not add up: {stock.to_json()}", file=sys.stderr)
        return 1
    return 1 if failed else 0


def print_report(
    options: Options,
    machine: Mapping[str, object],
    scenarios: Sequence[Scenario],
    summaries: Mapping[str, Summary],
    high: Mapping[str, Summary],
    found: Sequence[Verdict],
    cold_starts: Sequence[float],
    rss: Sequence[float],
    two_workers: Mapping[str, Summary],
    two_worker_rss: Sequence[float],
    stock: StockCheck,
    hot_orders: int,
    pinned: bool,
    load_average: tuple[float, float],
) -> None:
    where = "server on one core, wrk on another" if pinned else "unpinned (fewer than 2 cores)"
    print(
        f"\n{options.connections} connections, {options.repetitions} interleaved repetitions "
        f"of {options.seconds:g} s, medians (errors summed); {where}"
    )
    print(
        f"{machine['cpu']}, {machine['cores']} cores; Python {machine['python']}, "
        f"PostgreSQL {machine['postgresql']}, Redis {machine['redis']}; {machine['wrk']}; "
        f"load average {load_average[0]:.1f} at the start, {load_average[1]:.1f} at the end\n"
    )
    print(table(scenarios, summaries))
    print(
        "\nEach row is compared to the baseline named under 'vs' (figure / baseline figure); "
        "the section 8 targets below are all against pk-read."
    )
    if not cache_setting_supported():
        print(
            "note: this version has no CACHE_ENABLED setting, so the 'uncached' row was "
            "served from the cache"
        )
    if high:
        errors = ", ".join(
            f"{key} {'no response' if summary.requests == 0 else summary.errors}"
            for key, summary in high.items()
        )
        print(f"\nerrors at {HIGH_CONCURRENCY} connections: {errors}")
    print(
        "\nworkers: req/s with 1 worker (pinned) and 2 workers (unpinned, sharing cores with wrk)"
    )
    for key, summary in two_workers.items():
        one = summaries[key].requests_per_second
        print(
            f"  {key:<14} 1 worker {one:>8.0f}   2 workers {summary.requests_per_second:>8.0f}"
            f"   ({summary.requests_per_second / one if one else 0:.2f}x)"
        )
    runs = ", ".join(f"{seconds:.2f}" for seconds in cold_starts)
    median = statistics.median(cold_starts)
    print(f"\ncold start to the first 200 from /health: median {median:.2f} s ({runs})")
    print(
        f"RSS per worker after the run: {', '.join(f'{mb:.0f} MB' for mb in rss)} (1 worker); "
        f"{', '.join(f'{mb:.0f} MB' for mb in two_worker_rss)} (2 workers)"
    )
    state = "exact" if stock.exact else "WRONG"
    print(
        f"flash sale on item {stock.item_id}: stock {stock.initial} -> {stock.final}, "
        f"{stock.ordered} ordered ({hot_orders} answered 201): {state}"
    )
    print("\nARCHITECTURE.md section 8 targets")
    print(verdict_table(found))


def main(argv: Sequence[str] | None = None) -> int:
    options = Options.parse(argv)
    try:
        return run(options)
    except (PrerequisiteError, ServerError, WrkError) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
