"""Everything a run measured, and the JSON document `--json` writes of it."""

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench.options import Options
from bench.prepare import StockCheck
from bench.scenarios import Scenario
from bench.service import cache_setting_supported
from bench.summary import Summary
from bench.verdicts import TAIL_RATIO_BOUND, TWO_WORKERS_SCENARIO, Verdict
from bench.wrk import WrkResult


@dataclass(frozen=True)
class Outcome:
    machine: Mapping[str, object]
    scenarios: Sequence[Scenario]
    runs: Mapping[str, Sequence[WrkResult]]
    summaries: Mapping[str, Summary]
    high_concurrency: Mapping[str, Summary]
    two_workers: Mapping[str, Summary]
    two_worker_rss: Sequence[float]
    cold_starts: Sequence[float]
    rss: Sequence[float]
    stock: StockCheck
    hot_orders: int
    verdicts: Sequence[Verdict]
    pinning: tuple[int, int] | None

    def to_json(self, options: Options) -> dict[str, object]:
        server_cpu = self.pinning[1] if self.pinning is not None else None
        wrk_cpu = self.pinning[0] if self.pinning is not None else None
        return {
            "machine": self.machine,
            "conditions": {
                "connections": options.connections,
                "seconds": options.seconds,
                "repetitions": options.repetitions,
                "pinned": self.pinning is not None,
                "server_cpu": server_cpu,
                "wrk_cpu": wrk_cpu,
                "quick": options.quick,
                "cache_setting_supported": cache_setting_supported(),
                "demo": vars(options.demo),
                "tail_ratio_bound": TAIL_RATIO_BOUND,
            },
            "scenarios": [
                {
                    "key": scenario.key,
                    "title": scenario.title,
                    "kind": scenario.kind.value,
                    "baseline": scenario.baseline,
                    "connections": scenario.connections or options.connections,
                    "target_ratio": scenario.target_ratio,
                    "stretch_ratio": scenario.stretch_ratio,
                    "cache_namespace": scenario.cache_namespace,
                    "median": self.summaries[scenario.key].to_json(),
                    "runs": [result.to_json() for result in self.runs[scenario.key]],
                }
                for scenario in self.scenarios
            ],
            "high_concurrency": {
                key: summary.to_json() for key, summary in self.high_concurrency.items()
            },
            "workers": {
                "judged_by": TWO_WORKERS_SCENARIO,
                "one_pinned": {key: self.summaries[key].to_json() for key in self.two_workers},
                "two_unpinned": {
                    key: summary.to_json() for key, summary in self.two_workers.items()
                },
            },
            "cold_start_seconds": {
                "runs": list(self.cold_starts),
                "median": statistics.median(self.cold_starts),
            },
            "rss_megabytes": {
                "one_worker": list(self.rss),
                "two_workers": list(self.two_worker_rss),
            },
            "flash_sale": self.stock.to_json() | {"orders_answered_201": self.hot_orders},
            "targets": [verdict.to_json() for verdict in self.verdicts],
        }
