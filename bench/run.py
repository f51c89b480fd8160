"""Throughput and latency of the service against baselines: `make bench`.

wrk drives every path with Lua scripts (bench/lua/) against servers started as production
starts them: gunicorn with the project's worker class, ENVIRONMENT=production, PostgreSQL
and Redis, rate limits (raised so requests pass), metrics, request ids and security headers
on, JSON logs at WARNING, telemetry off. On two or more cores the servers share one core and
wrk gets another. The baselines (bench/baselines/) run in the same session and the same way.
Repetitions are interleaved across scenarios, so slow drift on a noisy machine spreads over
every row instead of landing on one; the table shows medians.
"""

import json
import os
import secrets
import signal
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.drive import drive, interleaved, measure_two_workers, progress
from bench.machine import describe
from bench.options import HIGH_CONCURRENCY, Options
from bench.outcome import Outcome
from bench.prepare import (
    HOT_ITEM_STOCK,
    Backends,
    PrerequisiteError,
    check_backends,
    check_stock,
    check_tools,
    last_order_id,
    load_database,
)
from bench.report import failures, print_report
from bench.scenarios import Kind, ServerName, build_scenarios
from bench.servers import SERVICE_CONFIG, Server, ServerError, cpus_for_pinning
from bench.service import (
    BASELINE_APPS,
    baseline_environment,
    log_in,
    measure_cold_start,
    running,
    service_environment,
    worker_rss,
)
from bench.summary import Summary
from bench.verdicts import verdicts
from bench.wrk import Load, WrkError

TOKEN_USERS = 8


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
    if backends.read_url is not None:
        servers[ServerName.REPLICA] = Server(
            ServerName.REPLICA.value,
            "app.main:app",
            service_environment(backends, secret_key, cache_enabled=False, replica=True),
            cpu=server_cpu,
            config=SERVICE_CONFIG,
        )
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
        scenarios = build_scenarios(
            catalog, tokens[0], tokens_file, replica=backends.read_url is not None
        )
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
                        f"{result.requests_per_second:>8.0f} req/s  timeouts {result.timeouts}  "
                        f"503 overloaded {result.refused}  other errors {result.other_errors}"
                    )
        stock = check_stock(backends, catalog.hot_item_id, HOT_ITEM_STOCK, orders_before)
    hot_orders += sum(result.successes for result in runs["order-hot"])
    summaries = {key: Summary.of(results) for key, results in runs.items()}

    two_workers, two_worker_rss = measure_two_workers(environment, scenarios, options)
    tokens_file.unlink()
    scratch.rmdir()

    machine["load_average"] = {"start": load_before, "end": os.getloadavg()}
    largest_rss = max(rss) if rss else None
    found = verdicts(
        scenarios,
        summaries,
        high_concurrency=high,
        stock=stock,
        hot_orders=hot_orders,
        cold_start_seconds=statistics.median(cold_starts),
        rss_megabytes=largest_rss,
        two_workers=two_workers,
    )
    outcome = Outcome(
        machine=machine,
        scenarios=scenarios,
        runs=runs,
        summaries=summaries,
        high_concurrency=high,
        two_workers=two_workers,
        two_worker_rss=two_worker_rss,
        cold_starts=cold_starts,
        rss=rss,
        stock=stock,
        hot_orders=hot_orders,
        verdicts=found,
        pinning=pinning,
    )
    print_report(options, outcome)
    if options.json_path is not None:
        options.json_path.parent.mkdir(parents=True, exist_ok=True)
        options.json_path.write_text(json.dumps(outcome.to_json(options), indent=2) + "\n")
    return failures(scenarios, summaries, stock, hot_orders)


def main(argv: Sequence[str] | None = None) -> int:
    options = Options.parse(argv, __doc__ or "")
    # A stopped run (SIGTERM, as from `kill` or a CI timeout) unwinds like Ctrl-C, so every
    # server it started is stopped too instead of outliving it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        return run(options)
    except (PrerequisiteError, ServerError, WrkError) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
