"""Running wrk and reading the summary line bench/lua/common.lua prints when a run ends."""

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

LUA_DIR = Path(__file__).resolve().parent / "lua"
MARKER = "BENCH-RESULT "


class WrkError(RuntimeError):
    """wrk could not run, or ended without its summary."""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int
    timeouts: int
    statuses: dict[int, int] = field(default_factory=dict)
    # 503s with the `overloaded` problem type and Retry-After: how section 8 allows the
    # service to refuse work it cannot start in time. Any other 503 is an error.
    refused: int = 0
    # CPU time the server's workers spent during the run: unlike throughput, it barely moves
    # when other processes compete for the machine.
    server_cpu_seconds: float | None = None
    # The cache look-ups of the scenario's namespace during the run, from the service's
    # /metrics; None where the scenario reads no cache.
    cache_hits: int | None = None
    cache_misses: int | None = None

    @property
    def cpu_us_per_request(self) -> float | None:
        if self.server_cpu_seconds is None or self.requests == 0:
            return None
        return self.server_cpu_seconds * 1_000_000 / self.requests

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def non_2xx(self) -> int:
        return sum(count for status, count in self.statuses.items() if not 200 <= status < 300)

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors + self.timeouts

    @property
    def successes(self) -> int:
        return self.requests - self.non_2xx

    @property
    def other_errors(self) -> int:
        """Every error but a timeout and an `overloaded` 503 with Retry-After."""
        return self.non_2xx - self.refused + self.socket_errors

    @property
    def tail_ratio(self) -> float | None:
        """p99 over p50: how far the slow requests are from the typical one."""
        return self.p99_ms / self.p50_ms if self.p50_ms > 0 else None

    def to_json(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "seconds": self.seconds,
            "requests_per_second": round(self.requests_per_second, 1),
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "socket_errors": self.socket_errors,
            "timeouts": self.timeouts,
            "non_2xx": self.non_2xx,
            "refused_503": self.refused,
            "other_errors": self.other_errors,
            "errors": self.errors,
            "statuses": {str(status): count for status, count in sorted(self.statuses.items())},
            "cpu_us_per_request": (
                None if self.cpu_us_per_request is None else round(self.cpu_us_per_request, 1)
            ),
            "tail_ratio": None if self.tail_ratio is None else round(self.tail_ratio, 2),
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
        }


def parse_summary(output: str) -> WrkResult:
    """The result in wrk's output; WrkError when the summary line is missing or malformed."""
    lines = [line for line in output.splitlines() if line.startswith(MARKER)]
    if not lines:
        raise WrkError("wrk printed no summary line")
    try:
        data = json.loads(lines[-1].removeprefix(MARKER))
        microseconds = 1000.0

        def latency(name: str) -> float:
            value = data[name]
            return round(float(value) / microseconds, 3) if value is not None else 0.0

        return WrkResult(
            requests=int(data["requests"]),
            seconds=float(data["duration_us"]) / 1_000_000,
            p50_ms=latency("latency_p50_us"),
            p90_ms=latency("latency_p90_us"),
            p99_ms=latency("latency_p99_us"),
            max_ms=latency("latency_max_us"),
            # Statuses of 400 and above are counted from `statuses`; wrk's `status` count
            # would count them twice.
            socket_errors=int(data["connect_errors"])
            + int(data["read_errors"])
            + int(data["write_errors"]),
            timeouts=int(data["timeouts"]),
            statuses={int(status): int(count) for status, count in data["statuses"].items()},
            refused=int(data["refused"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise WrkError(f"unreadable wrk summary: {error}") from error


@dataclass(frozen=True)
class Load:
    """How hard and how long wrk drives one run."""

    connections: int
    seconds: float
    threads: int = 1
    timeout_seconds: float = 5.0
    cpu: int | None = None


def wrk_command(
    url: str, script: str, arguments: Sequence[str], load: Load, headers: Sequence[str] = ()
) -> list[str]:
    command = [
        "wrk",
        f"--threads={min(load.threads, load.connections)}",
        f"--connections={load.connections}",
        f"--duration={max(1, round(load.seconds))}s",
        f"--timeout={load.timeout_seconds:g}s",
        f"--script={script}",
        *(f"--header={header}" for header in headers),
        url,
    ]
    if arguments:
        command += ["--", *arguments]
    if load.cpu is not None:
        command = ["taskset", "--cpu-list", str(load.cpu), *command]
    return command


def run_wrk(
    url: str, script: str, arguments: Sequence[str], load: Load, headers: Sequence[str] = ()
) -> WrkResult:
    if shutil.which("wrk") is None:
        raise WrkError("wrk is not installed")
    command = wrk_command(url, script, arguments, load, headers)
    try:
        # Run from the Lua directory: the scenarios `require "common"` from there.
        done = subprocess.run(  # noqa: S603 - a fixed program and our own arguments
            command,
            cwd=LUA_DIR,
            capture_output=True,
            text=True,
            timeout=load.seconds + load.timeout_seconds + 30,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise WrkError(f"wrk did not finish: {' '.join(command)}") from error
    if done.returncode != 0:
        raise WrkError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    return parse_summary(done.stdout)
