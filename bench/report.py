"""Medians, ratios to the baselines, the section 8 verdicts and the printed table."""

import statistics
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bench.options import HIGH_CONCURRENCY, Options
from bench.prepare import StockCheck
from bench.scenarios import TARGET_REFERENCE, Kind, Scenario
from bench.service import cache_setting_supported
from bench.wrk import WrkResult


@dataclass(frozen=True)
class Summary:
    """A scenario's repetitions: medians of the figures, the sum of the errors."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    repetitions: int
    cpu_us_per_request: float | None = None

    @classmethod
    def of(cls, runs: Sequence[WrkResult]) -> "Summary":
        if not runs:
            raise ValueError("no runs to summarise")
        return cls(
            requests_per_second=statistics.median(run.requests_per_second for run in runs),
            p50_ms=statistics.median(run.p50_ms for run in runs),
            p99_ms=statistics.median(run.p99_ms for run in runs),
            # Summed, not a median: one bad repetition must not disappear from the table.
            errors=sum(run.errors for run in runs),
            requests=sum(run.requests for run in runs),
            repetitions=len(runs),
            cpu_us_per_request=_median_of(run.cpu_us_per_request for run in runs),
        )

    @property
    def all_failed(self) -> bool:
        return self.requests == 0 or self.errors >= self.requests

    def to_json(self) -> dict[str, object]:
        return {
            "requests_per_second": round(self.requests_per_second, 1),
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "errors": self.errors,
            "requests": self.requests,
            "repetitions": self.repetitions,
            "cpu_us_per_request": (
                None if self.cpu_us_per_request is None else round(self.cpu_us_per_request, 1)
            ),
        }


def ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference <= 0:
        return None
    return value / reference


@dataclass(frozen=True)
class Verdict:
    """One section 8 target: the measured value, the bound, and whether it holds."""

    name: str
    measured: float | None
    bound: float
    at_least: bool
    unit: str = ""

    @property
    def met(self) -> bool:
        if self.measured is None:
            return False
        return self.measured >= self.bound if self.at_least else self.measured <= self.bound

    def to_json(self) -> dict[str, object]:
        return {
            "target": self.name,
            "measured": None if self.measured is None else round(self.measured, 3),
            "bound": self.bound,
            "at_least": self.at_least,
            "unit": self.unit,
            "met": self.met,
        }


def verdicts(
    scenarios: Sequence[Scenario],
    summaries: Mapping[str, Summary],
    *,
    high_concurrency: Mapping[str, Summary] | None = None,
    cold_start_seconds: float | None = None,
    rss_megabytes: float | None = None,
) -> list[Verdict]:
    reference = summaries[TARGET_REFERENCE].requests_per_second
    found: list[Verdict] = []
    for scenario in scenarios:
        summary = summaries.get(scenario.key)
        if summary is None:
            continue
        if scenario.target_ratio is not None:
            found.append(
                Verdict(
                    f"{scenario.title}: req/s vs {TARGET_REFERENCE}",
                    ratio(summary.requests_per_second, reference),
                    scenario.target_ratio,
                    at_least=True,
                    unit="x",
                )
            )
        if scenario.p99_target_ms is not None:
            found.append(
                Verdict(
                    f"{scenario.title}: p99",
                    summary.p99_ms,
                    scenario.p99_target_ms,
                    at_least=False,
                    unit="ms",
                )
            )
    if high_concurrency:
        # A run in which no request completed has no error count to show, and fails.
        stalled = any(summary.requests == 0 for summary in high_concurrency.values())
        errors = sum(summary.errors for summary in high_concurrency.values())
        found.append(
            Verdict("errors at 256 connections", None if stalled else errors, 0, at_least=False)
        )
    if cold_start_seconds is not None:
        found.append(Verdict("cold start", cold_start_seconds, 1.5, at_least=False, unit="s"))
    if rss_megabytes is not None:
        found.append(Verdict("RSS per worker", rss_megabytes, 150, at_least=False, unit="MB"))
    return found


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def table(scenarios: Sequence[Scenario], summaries: Mapping[str, Summary]) -> str:
    """The results, one row per scenario, each compared to the baseline it names."""
    header = (
        f"{'scenario':<40} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}  "
        f"{'vs':<11} {'req/s':>7} {'p50':>7} {'p99':>7} {'cpu us':>7} {'cpu':>7}"
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
            f"{summary.p99_ms:>8.2f} {summary.errors:>7}  {scenario.baseline or '':<11} "
            f"{ratios[0]:>7} {ratios[1]:>7} {ratios[2]:>7} {cpu:>7} {ratios[3]:>7}"
        )
    return "\n".join(lines)


def verdict_table(found: Sequence[Verdict]) -> str:
    lines = []
    for verdict in found:
        measured = "-" if verdict.measured is None else f"{verdict.measured:.2f}{verdict.unit}"
        sign = ">=" if verdict.at_least else "<="
        state = "met" if verdict.met else "MISSED"
        lines.append(
            f"{verdict.name:<58} {measured:>10}  {sign} {verdict.bound:g}{verdict.unit:<3} {state}"
        )
    return "\n".join(lines)


def is_login(scenario: Scenario) -> bool:
    return scenario.kind is Kind.LOGIN


def _median_of(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


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
