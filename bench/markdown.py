"""The tables of docs/benchmarks.md from a results file: `python -m bench.markdown results.json`.

Printed rather than written into the page, so the prose around the tables stays hand-made
while every figure in them comes from a run.
"""

import argparse
import json
from pathlib import Path
from typing import Any


def _times(value: float | None, reference: float | None) -> str:
    return f"{value / reference:.2f}x" if value is not None and reference else "-"


def _tail(median: dict[str, Any]) -> str:
    tail = median.get("tail_ratio")
    return "-" if tail is None else f"{tail:.2f}x"


def _hits(median: dict[str, Any]) -> str:
    hits = median.get("cache_hit_ratio")
    return "" if hits is None else f"{hits:.2%}"


def results_table(results: dict[str, Any]) -> str:
    scenarios: list[dict[str, Any]] = results["scenarios"]
    medians = {s["key"]: s["median"] for s in scenarios}
    lines = [
        "| scenario | req/s | p50 ms | p99 ms | p99/p50 | errors | cache hits | cpu us "
        "| compared to | req/s ratio | p50 ratio | p99 ratio | cpu ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for scenario in scenarios:
        median = scenario["median"]
        title = scenario["title"]
        if scenario["connections"] != results["conditions"]["connections"]:
            title += f" ({scenario['connections']} connections)"
        base = medians.get(scenario["baseline"]) if scenario["baseline"] else None
        cpu = median.get("cpu_us_per_request")
        ratios = ["", "", "", ""]
        if base is not None:
            ratios = [
                _times(median["requests_per_second"], base["requests_per_second"]),
                _times(median["p50_ms"], base["p50_ms"]),
                _times(median["p99_ms"], base["p99_ms"]),
                # Baseline over row, as req/s: what one core could serve, relative to it.
                _times(base.get("cpu_us_per_request"), cpu),
            ]
        lines.append(
            f"| {title} | {median['requests_per_second']:.0f} | {median['p50_ms']:.2f} "
            f"| {median['p99_ms']:.2f} | {_tail(median)} | {median['errors']} "
            f"| {_hits(median)} | {f'{cpu:.0f}' if cpu else '-'} | {scenario['baseline'] or '-'} "
            f"| {' | '.join(ratios)} |"
        )
    return "\n".join(lines)


def _shown(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if not unit else f"{value:.2f}{unit}"


def targets_table(results: dict[str, Any]) -> str:
    lines = ["| target | measured | bound | |", "|---|---:|---:|---|"]
    for verdict in results["targets"]:
        unit = verdict["unit"]
        sign = ">=" if verdict["at_least"] else "<="
        if verdict.get("stretch"):
            state = "stretch met" if verdict["met"] else "stretch missed"
        else:
            state = "met" if verdict["met"] else "**missed**"
        lines.append(
            f"| {verdict['target']} | {_shown(verdict['measured'], unit)} "
            f"| {sign} {verdict['bound']:g}{unit} | {state} |"
        )
    return "\n".join(lines)


def other_tables(results: dict[str, Any]) -> str:
    lines = [
        "| scenario | req/s at 256 connections | p99 ms | timeouts | 503 overloaded "
        "with Retry-After | other errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, summary in results["high_concurrency"].items():
        lines.append(
            f"| {key} | {summary['requests_per_second']:.0f} | {summary['p99_ms']:.2f} "
            f"| {summary['timeouts']} | {summary['refused_503']} | {summary['other_errors']} |"
        )
    workers = results["workers"]
    judged_by = workers["judged_by"]
    lines += ["", "| scenario | 1 worker, pinned | 2 workers, unpinned | ratio |"]
    lines.append("|---|---:|---:|---:|")
    for key, two in workers["two_unpinned"].items():
        one = workers["one_pinned"][key]["requests_per_second"]
        name = f"{key} (judged by)" if key == judged_by else key
        lines.append(
            f"| {name} | {one:.0f} | {two['requests_per_second']:.0f} "
            f"| {_times(two['requests_per_second'], one)} |"
        )
    return "\n".join(lines)


def machine_table(results: dict[str, Any]) -> str:
    machine = results["machine"]
    packages = ", ".join(f"{name} {version}" for name, version in machine["packages"].items())
    rows = [
        ("CPU", f"{machine['cpu']}, {machine['cores']} cores"),
        ("kernel", machine["kernel"]),
        ("Python", machine["python"]),
        ("PostgreSQL", machine["postgresql"]),
        ("Redis", machine["redis"]),
        ("wrk", machine["wrk"]),
        ("commit", machine["commit"]),
        ("packages", packages),
    ]
    return "\n".join(["| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.markdown", description=__doc__)
    parser.add_argument("results", type=Path)
    results = json.loads(parser.parse_args(argv).results.read_text())
    for part in (machine_table, results_table, targets_table, other_tables):
        print(part(results), end="\n\n")


if __name__ == "__main__":
    main()
