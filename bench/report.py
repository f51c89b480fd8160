"""The printed report: the results table, the section 8 verdicts, and what else was measured."""

import statistics
import sys
from collections.abc import Mapping, Sequence

from bench.options import HIGH_CONCURRENCY, Options
from bench.outcome import Outcome
from bench.prepare import StockCheck
from bench.scenarios import Scenario
from bench.service import cache_setting_supported
from bench.summary import Summary, ratio
from bench.verdicts import TAIL_RATIO_BOUND, TWO_WORKERS_SCENARIO, Verdict, unaccounted_units


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.2%}"


def table(scenarios: Sequence[Scenario], summaries: Mapping[str, Summary]) -> str:
    """The results, one row per scenario: its own tail ratio (p99/p50), its cache hit ratio
    where it reads the cache, and its figures against the baseline it names."""
    header = (
        f"{'scenario':<40} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'p99/p50':>7} "
        f"{'errors':>7} {'hits':>7}  {'vs':<11} {'req/s':>7} {'p50':>7} {'p99':>7} "
        f"{'cpu us':>7} {'cpu':>7}"
    )
    lines = [header, "-" * len(header)]
    for scenario in scenarios:
        summary = summaries.get(scenario.key)
        if summary is None:
            continue
        title = scenario.title
        if scenario.connections is not None:
            title += f" [{scenario.connections} conn]"
        base = summaries.get(scenario.baseline) if scenario.baseline else None
        ratios = ("", "", "", "")
        if base is not None:
            ratios = (
                _times(ratio(summary.requests_per_second, base.requests_per_second)),
                _times(ratio(summary.p50_ms, base.p50_ms)),
                _times(ratio(summary.p99_ms, base.p99_ms)),
                # Base CPU over this CPU: like throughput, higher is better.
                _times(ratio(base.cpu_us_per_request, summary.cpu_us_per_request)),
            )
        cpu = "" if summary.cpu_us_per_request is None else f"{summary.cpu_us_per_request:.0f}"
        lines.append(
            f"{title:<40} {summary.requests_per_second:>8.0f} {summary.p50_ms:>8.2f} "
            f"{summary.p99_ms:>8.2f} {_times(summary.tail_ratio):>7} {summary.errors:>7} "
            f"{_percent(summary.cache_hit_ratio):>7}  {scenario.baseline or '':<11} "
            f"{ratios[0]:>7} {ratios[1]:>7} {ratios[2]:>7} {cpu:>7} {ratios[3]:>7}"
        )
    return "\n".join(lines)


def shown(value: float | None, unit: str) -> str:
    """A measured value or bound with its unit; counts (no unit) as whole numbers."""
    if value is None:
        return "-"
    return f"{value:.0f}" if not unit else f"{value:.2f}{unit}"


def verdict_table(found: Sequence[Verdict]) -> str:
    lines = []
    for verdict in found:
        sign = ">=" if verdict.at_least else "<="
        bound = f"{sign} {verdict.bound:g}{verdict.unit}"
        if verdict.stretch:
            state = "stretch met" if verdict.met else "stretch missed"
        else:
            state = "met" if verdict.met else "MISSED"
        lines.append(
            f"{verdict.name:<66} {shown(verdict.measured, verdict.unit):>10}  {bound:<9} {state}"
        )
    return "\n".join(lines)


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
    if unaccounted_units(stock, hot_orders):
        print(f"bench: flash-sale stock does not add up: {stock.to_json()}", file=sys.stderr)
        return 1
    return 1 if failed else 0


def busy_table(high: Mapping[str, Summary]) -> str:
    lines = [
        f"  {'scenario':<14} {'req/s':>8} {'p99 ms':>9} {'timeouts':>9} "
        f"{'refused':>8} {'other errors':>13}"
    ]
    for key, summary in high.items():
        if summary.requests == 0:
            lines.append(f"  {key:<14} no response")
            continue
        lines.append(
            f"  {key:<14} {summary.requests_per_second:>8.0f} {summary.p99_ms:>9.2f} "
            f"{summary.timeouts:>9} {summary.refused:>8} {summary.other_errors:>13}"
        )
    return "\n".join(lines)


def print_report(options: Options, outcome: Outcome) -> None:
    machine = outcome.machine
    where = (
        "server on one core, wrk on another"
        if outcome.pinning is not None
        else "unpinned (fewer than 2 cores)"
    )
    print(
        f"\n{options.connections} connections, {options.repetitions} interleaved repetitions "
        f"of {options.seconds:g} s, medians (errors summed); {where}"
    )
    load = machine.get("load_average")
    loads = (load["start"][0], load["end"][0]) if isinstance(load, dict) else (0.0, 0.0)
    print(
        f"{machine['cpu']}, {machine['cores']} cores; Python {machine['python']}, "
        f"PostgreSQL {machine['postgresql']}, Redis {machine['redis']}; {machine['wrk']}; "
        f"load average {loads[0]:.1f} at the start, {loads[1]:.1f} at the end\n"
    )
    print(table(outcome.scenarios, outcome.summaries))
    print(
        "\nEach row is compared to the baseline named under 'vs' (figure / baseline figure); "
        "the section 8 ratio targets below are all against pk-read. p99/p50 is each row's "
        f"own tail (median over repetitions; the bound is {TAIL_RATIO_BOUND:g}x); 'hits' is "
        "the cache hit ratio during the measured runs of a cached row, each run started on "
        "a cache warmed with every path it requests."
    )
    if not cache_setting_supported():
        print(
            "note: this version has no CACHE_ENABLED setting, so the 'uncached' row was "
            "served from the cache"
        )
    if outcome.high_concurrency:
        print(
            f"\n{HIGH_CONCURRENCY} connections: wrk's timeouts; refused, 503 overloaded with "
            "Retry-After (the refusal section 8 allows); every other error"
        )
        print(busy_table(outcome.high_concurrency))
    if outcome.two_workers:
        print(
            "\nworkers: req/s with 1 worker (pinned) and 2 workers (unpinned, sharing the cores "
            f"with wrk); judged by {TWO_WORKERS_SCENARIO}, since /health at 2 workers is "
            "bound by wrk itself"
        )
    for key, summary in outcome.two_workers.items():
        one = outcome.summaries[key].requests_per_second
        print(
            f"  {key:<14} 1 worker {one:>8.0f}   2 workers {summary.requests_per_second:>8.0f}"
            f"   ({_times(ratio(summary.requests_per_second, one))})"
        )
    runs = ", ".join(f"{seconds:.2f}" for seconds in outcome.cold_starts)
    median = statistics.median(outcome.cold_starts)
    print(f"\ncold start to the first 200 from /health: median {median:.2f} s ({runs})")
    print(
        f"RSS per worker after the run: {', '.join(f'{mb:.0f} MB' for mb in outcome.rss)} "
        f"(1 worker); {', '.join(f'{mb:.0f} MB' for mb in outcome.two_worker_rss)} (2 workers)"
    )
    stock = outcome.stock
    state = "exact" if not unaccounted_units(stock, outcome.hot_orders) else "WRONG"
    print(
        f"flash sale on item {stock.item_id}: stock {stock.initial} -> {stock.final}, "
        f"{stock.ordered} ordered ({outcome.hot_orders} answered 201): {state}"
    )
    print("\nARCHITECTURE.md section 8 targets (a stretch target never fails the budget)")
    print(verdict_table(outcome.verdicts))
