"""Driving the servers with wrk: one scenario, interleaved repetitions, two workers."""

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

from bench.cache import cache_counts, warm
from bench.options import Options
from bench.scenarios import Scenario, ServerName
from bench.servers import SERVICE_CONFIG, Server, cpu_seconds
from bench.service import running, worker_rss
from bench.summary import Summary
from bench.wrk import Load, WrkResult, run_wrk

WORKER_SCENARIOS = ("health", "item-cached", "users-me")

STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def drive(
    scenario: Scenario,
    servers: Mapping[ServerName, Server],
    load: Load,
    connections: int,
    *,
    measured: bool = True,
) -> WrkResult:
    """One wrk run; a measured run of a cached scenario starts warm and counts its hits."""
    server = servers[scenario.server]
    namespace = scenario.cache_namespace if measured else None
    counted_before = (0, 0)
    if namespace is not None:
        warm(server.port, scenario.warm_paths, scenario.headers)
        counted_before = cache_counts(server.port, namespace)
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
    result = replace(result, server_cpu_seconds=cpu_seconds(workers) - before)
    if namespace is not None:
        hits, misses = cache_counts(server.port, namespace)
        result = replace(
            result, cache_hits=hits - counted_before[0], cache_misses=misses - counted_before[1]
        )
    return result


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
            drive(scenario, servers, warmup, options.connections, measured=False)
    runs: dict[str, list[WrkResult]] = {scenario.key: [] for scenario in scenarios}
    for repetition in range(options.repetitions):
        for scenario in scenarios:
            result = drive(scenario, servers, load, options.connections)
            runs[scenario.key].append(result)
            progress(
                f"{label} {repetition + 1}/{options.repetitions} {scenario.key:<14} "
                f"{result.requests_per_second:>8.0f} req/s  p99 {result.p99_ms:7.2f} ms  "
                f"errors {result.errors}  cpu {result.cpu_us_per_request or 0:6.0f} us/req"
                + _hits(result)
            )
    return runs


def _hits(result: WrkResult) -> str:
    if result.cache_hits is None or result.cache_misses is None:
        return ""
    lookups = result.cache_hits + result.cache_misses
    return f"  hits {result.cache_hits / lookups:.2%}" if lookups else "  no cache look-ups"


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
