"""A scenario's repetitions summed up: medians of the figures, sums of the counts."""

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bench.wrk import WrkResult


def ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference <= 0:
        return None
    return value / reference


def _median_of(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def _sum_of(values: Iterable[int | None]) -> int | None:
    present = [value for value in values if value is not None]
    return sum(present) if present else None


@dataclass(frozen=True)
class Summary:
    """Medians of the figures; errors, timeouts, refusals and cache look-ups summed."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    repetitions: int
    cpu_us_per_request: float | None = None
    # The median of each repetition's own p99/p50, not a ratio of the medians above: a tail
    # belongs to the run it was measured in.
    tail_ratio: float | None = None
    timeouts: int = 0
    refused: int = 0
    other_errors: int = 0
    cache_hits: int | None = None
    cache_misses: int | None = None

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
            tail_ratio=_median_of(run.tail_ratio for run in runs),
            timeouts=sum(run.timeouts for run in runs),
            refused=sum(run.refused for run in runs),
            other_errors=sum(run.other_errors for run in runs),
            cache_hits=_sum_of(run.cache_hits for run in runs),
            cache_misses=_sum_of(run.cache_misses for run in runs),
        )

    @property
    def all_failed(self) -> bool:
        return self.requests == 0 or self.errors >= self.requests

    @property
    def cache_hit_ratio(self) -> float | None:
        """Hits over look-ups in the scenario's namespace during the measured runs."""
        if self.cache_hits is None or self.cache_misses is None:
            return None
        lookups = self.cache_hits + self.cache_misses
        return self.cache_hits / lookups if lookups else None

    def to_json(self) -> dict[str, object]:
        return {
            "requests_per_second": round(self.requests_per_second, 1),
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "tail_ratio": None if self.tail_ratio is None else round(self.tail_ratio, 2),
            "errors": self.errors,
            "timeouts": self.timeouts,
            "refused_503": self.refused,
            "other_errors": self.other_errors,
            "requests": self.requests,
            "repetitions": self.repetitions,
            "cpu_us_per_request": (
                None if self.cpu_us_per_request is None else round(self.cpu_us_per_request, 1)
            ),
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "cache_hit_ratio": (
                None if self.cache_hit_ratio is None else round(self.cache_hit_ratio, 4)
            ),
        }
