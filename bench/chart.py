"""Chart a results file: `python -m bench.chart results.json docs/benchmarks.png`.

Needs matplotlib (the `bench` extra), which the service itself never imports.
"""

import argparse
import json
from pathlib import Path
from typing import Any

BASELINE_COLOUR = "#9e9e9e"
MET_COLOUR = "#2e7d32"
MISSED_COLOUR = "#c62828"
NO_TARGET_COLOUR = "#1565c0"


def _colour(baseline: bool, met: bool | None) -> str:
    if baseline:
        return BASELINE_COLOUR
    if met is None:
        return NO_TARGET_COLOUR
    return MET_COLOUR if met else MISSED_COLOUR


def throughput_colours(scenarios: list[dict[str, Any]], reference_rps: float) -> list[str]:
    """Grey for baselines; green or red where a req/s target exists; blue where none does."""
    return [
        _colour(
            s["kind"] == "baseline",
            None
            if s["target_ratio"] is None
            else s["median"]["requests_per_second"] >= s["target_ratio"] * reference_rps,
        )
        for s in scenarios
    ]


def latency_colours(scenarios: list[dict[str, Any]]) -> list[str]:
    return [
        _colour(
            s["kind"] == "baseline",
            None if s["p99_target_ms"] is None else s["median"]["p99_ms"] <= s["p99_target_ms"],
        )
        for s in scenarios
    ]


def draw(results: dict[str, Any], output: Path) -> None:
    # Imported here so the rest of bench/ (and its type check) runs without matplotlib.
    import matplotlib  # type: ignore[import-not-found, unused-ignore]

    matplotlib.use("Agg")
    from matplotlib import pyplot  # type: ignore[import-not-found, unused-ignore]

    scenarios: list[dict[str, Any]] = results["scenarios"]
    reference = next(s for s in scenarios if s["key"] == "pk-read")
    reference_rps = float(reference["median"]["requests_per_second"])
    labels = [s["title"].replace(" (baseline)", "\n(baseline)") for s in scenarios]
    positions = list(range(len(scenarios)))[::-1]

    figure, (throughput, latency) = pyplot.subplots(
        1, 2, figsize=(13, 0.55 * len(scenarios) + 1.8), sharey=True
    )
    rates = [float(s["median"]["requests_per_second"]) for s in scenarios]
    throughput.barh(positions, rates, color=throughput_colours(scenarios, reference_rps))
    throughput.set_xscale("log")
    # Room on the right of the longest bar for its label.
    throughput.set_xlim(right=max(rates) * 4)
    throughput.set_xlabel("requests/s (median, log scale)")
    for position, scenario, rate in zip(positions, scenarios, rates, strict=True):
        throughput.annotate(f" {rate:,.0f}", (rate, position), va="center", fontsize=8)
        if scenario["target_ratio"] is not None:
            goal = scenario["target_ratio"] * reference_rps
            throughput.plot([goal, goal], [position - 0.4, position + 0.4], color="black", lw=2)
    throughput.set_yticks(positions, labels, fontsize=8)
    throughput.set_title("Throughput; black marks: section 8 target (x pk-read)", fontsize=10)

    p99 = [float(s["median"]["p99_ms"]) for s in scenarios]
    latency.barh(positions, p99, color=latency_colours(scenarios))
    latency.set_xscale("log")
    bounds = [float(s["p99_target_ms"]) for s in scenarios if s["p99_target_ms"] is not None]
    # Wide enough to the left that every bound's mark shows, even below the fastest bar.
    latency.set_xlim(left=min([*p99, *bounds]) / 2, right=max(p99) * 4)
    latency.set_xlabel("p99 latency, ms (median of repetitions, log scale)")
    for position, scenario, value in zip(positions, scenarios, p99, strict=True):
        latency.annotate(f" {value:.1f}", (value, position), va="center", fontsize=8)
        bound = scenario["p99_target_ms"]
        if bound is not None:
            latency.plot([bound, bound], [position - 0.4, position + 0.4], color="black", lw=2)
    latency.set_title("p99 latency; black marks: section 8 bound", fontsize=10)

    conditions = results["conditions"]
    machine = results["machine"]
    figure.suptitle(
        f"{conditions['connections']} connections, {conditions['repetitions']} x "
        f"{conditions['seconds']:g} s interleaved, "
        f"{'one server core' if conditions['pinned'] else 'unpinned'}; {machine['cpu']}, "
        f"commit {machine['commit']}. Grey: baselines; green: target met; red: missed; "
        "blue: no target",
        fontsize=10,
    )
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=110)
    pyplot.close(figure)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.chart", description=__doc__)
    parser.add_argument("results", type=Path, help="a file written by bench.run --json")
    parser.add_argument("output", type=Path, help="the PNG to write")
    arguments = parser.parse_args(argv)
    draw(json.loads(arguments.results.read_text()), arguments.output)


if __name__ == "__main__":
    main()
