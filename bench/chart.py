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


def tail_colours(scenarios: list[dict[str, Any]], bound: float) -> list[str]:
    """Grey for baselines; green or red against the p99/p50 bound every other row has."""
    return [
        _colour(
            s["kind"] == "baseline",
            s["median"]["tail_ratio"] is not None and s["median"]["tail_ratio"] <= bound,
        )
        for s in scenarios
    ]


def _mark(axes: Any, value: float, position: int, **style: Any) -> None:
    axes.plot([value, value], [position - 0.4, position + 0.4], color="black", lw=2, **style)


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

    figure, (throughput, tails) = pyplot.subplots(
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
            _mark(throughput, scenario["target_ratio"] * reference_rps, position)
        if scenario.get("stretch_ratio") is not None:
            _mark(throughput, scenario["stretch_ratio"] * reference_rps, position, ls=":")
    throughput.set_yticks(positions, labels, fontsize=8)
    throughput.set_title(
        "Throughput; black marks: section 8 target (x pk-read), dotted: stretch", fontsize=10
    )

    bound = float(results["conditions"]["tail_ratio_bound"])
    ratios = [float(s["median"]["tail_ratio"] or 0) for s in scenarios]
    tails.barh(positions, ratios, color=tail_colours(scenarios, bound))
    tails.axvline(bound, color="black", lw=2)
    tails.set_xlim(left=0, right=max([*ratios, bound]) * 1.3)
    tails.set_xlabel("p99 / p50 (median of repetitions)")
    for position, scenario, value in zip(positions, scenarios, ratios, strict=True):
        p99 = float(scenario["median"]["p99_ms"])
        # Right of the bound's line too, so the line never runs through a label.
        tails.annotate(
            f" {value:.1f}x (p99 {p99:.1f} ms)",
            (max(value, bound), position),
            va="center",
            fontsize=8,
        )
    tails.set_title(f"Tail: p99 over p50; black line: section 8 bound ({bound:g}x)", fontsize=10)

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
