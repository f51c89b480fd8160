"""Instructions per request on the hot paths, counted by valgrind's callgrind:
`python -m bench.instructions` (`make bench-instructions`).

Unlike time, an instruction count does not move with whatever else the machine runs, so a
change to a hot path can be judged on a busy machine. The app is built in process with the
benchmark's production settings, against the benchmark's database (recreated and loaded
with the quick run's small data set: none of these paths costs more on a larger one) and
Redis, and every request goes through the whole ASGI stack, called directly
(bench.exercise, bench.asgi).

One process per configuration (cache on, cache off) starts the app under callgrind, logs
in, warms every path up, then counts a window of N requests of each path and a window of
none: a path's count less the empty window's, over N, is what one request costs, with the
process's start-up and the windows' own bookkeeping left out. The app's clock-driven
timers (the metrics flush, the pool's heartbeat) fire in a window when they fall due, some
fifty times as often per request as natively, since callgrind runs the app that much
slower: the figures vary by a percent or two from run to run. The near cache's lease is
stretched for the same reason (SLOWED_DOWN).
"""

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.exercise import MARKER, Workload
from bench.options import QUICK_DEMO
from bench.prepare import Backends, PrerequisiteError, check_backends, load_database
from bench.scenarios import LIST_PATH
from bench.service import service_environment
from support.processes import ROOT

REQUESTS = 200
WARMUP = 20
# A process takes a minute or two; one that runs far longer is waiting on something lost.
TIMEOUT_SECONDS = 900
# Callgrind runs the app some fifty times slower than it runs natively. At its production
# 25 ms the near cache's lease would lapse between any two requests and every cached read
# would wait for a PING's answer, which production never does; at 1 s, its maximum, it holds
# as it does in production, and the PINGs (one a fifth of a lease) come about as often per
# request as they do there.
SLOWED_DOWN = {"CACHE_NEAR_LEASE_MS": "1000"}


class CountError(RuntimeError):
    """A process under callgrind failed, or a request it sent did not answer 200."""


@dataclass(frozen=True)
class Probe:
    title: str
    path: str
    authorized: bool = False
    cache_enabled: bool = True


def probes(item_id: int) -> list[Probe]:
    item = f"/api/v1/items/{item_id}"
    return [
        Probe("GET /health", "/health"),
        Probe("cached GET /api/v1/items/{id}", item),
        Probe("cached GET /api/v1/items?sort=price page", f"{LIST_PATH}&offset=0"),
        Probe("GET /api/v1/users/me", "/api/v1/users/me", authorized=True),
        # CACHE_ENABLED=false, as the benchmark's uncached row runs.
        Probe("uncached GET /api/v1/items/{id}", item, cache_enabled=False),
    ]


def callgrind_total(output: str) -> int:
    """The instruction count of a callgrind output file (its `totals:` or `summary:` line)."""
    for line in reversed(output.splitlines()):
        name, _, value = line.partition(":")
        if name in ("totals", "summary") and value.strip():
            return int(value.split()[0])
    raise CountError("callgrind wrote no total")


def read_statuses(output: str) -> dict[int, int]:
    lines = [line for line in output.splitlines() if line.startswith(MARKER)]
    if not lines:
        raise CountError("the exercised app printed no statuses")
    statuses = json.loads(lines[-1].removeprefix(MARKER))
    return {int(status): int(count) for status, count in statuses.items()}


def per_request(windows: Sequence[int], requests: int) -> list[float]:
    """Each path's window less the empty one (the first), over the requests in it."""
    empty, *paths = windows
    return [(total - empty) / requests for total in paths]


def count_windows(workload: Workload, environment: Mapping[str, str], valgrind: str) -> list[int]:
    """The instructions of each window of `workload`, the empty one first."""
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as scratch:
        out = Path(scratch, "callgrind.out")
        metrics = Path(scratch, "prometheus")
        metrics.mkdir()
        command = [
            valgrind,
            "--tool=callgrind",
            "--dump-before=getppid",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "bench.exercise",
            workload.to_json(),
        ]
        try:
            done = subprocess.run(  # noqa: S603 - a fixed program and our own arguments
                command,
                cwd=ROOT,
                # As gunicorn.conf.py runs the workers.
                env=dict(environment) | {"PROMETHEUS_MULTIPROC_DIR": str(metrics)},
                capture_output=True,
                text=True,
                timeout=TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise CountError(f"the app under callgrind ran past {TIMEOUT_SECONDS} s") from error
        if done.returncode != 0:
            tail = " | ".join(done.stderr.strip().splitlines()[-5:])
            raise CountError(f"the app under callgrind failed ({done.returncode}): {tail}")
        failed = {status: n for status, n in read_statuses(done.stdout).items() if status != 200}
        if failed:
            raise CountError(f"requests under callgrind did not answer 200: {failed}")
        # Dump n holds what ran up to the n-th mark: start-up first, then a window and the
        # gap before the next one in turn.
        dumps = [Path(f"{out}.{number}") for number in range(1, workload.marks + 2)]
        if not dumps[-2].exists() or dumps[-1].exists():
            raise CountError("callgrind did not dump once per mark (getppid() called elsewhere?)")
        return [callgrind_total(dump.read_text()) for dump in dumps[1:-1:2]]


def measure(
    found: Sequence[Probe],
    environments: Mapping[bool, Mapping[str, str]],
    requests: int,
    warmup: int,
    valgrind: str,
) -> dict[str, float]:
    """Instructions per request of each probe, one process per configuration."""
    groups: dict[bool, list[Probe]] = {}
    for probe in found:
        groups.setdefault(probe.cache_enabled, []).append(probe)

    def run(group: list[Probe]) -> list[float]:
        paths = tuple(probe.path for probe in group)
        authorized = tuple(probe.authorized for probe in group)
        workload = Workload(paths, authorized, warmup, requests)
        environment = environments[group[0].cache_enabled]
        return per_request(count_windows(workload, environment, valgrind), requests)

    # Counts do not depend on load, so the processes may share the cores.
    with ThreadPoolExecutor(len(groups)) as pool:
        counted = list(pool.map(run, groups.values()))
    costs = {
        probe.title: cost
        for group, group_costs in zip(groups.values(), counted, strict=True)
        for probe, cost in zip(group, group_costs, strict=True)
    }
    return {probe.title: costs[probe.title] for probe in found}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--requests", type=int, default=REQUESTS, help="counted per path")
    parser.add_argument("--warmup", type=int, default=WARMUP, help="rounds over every path")
    arguments = parser.parse_args(argv)
    try:
        valgrind = shutil.which("valgrind")
        if valgrind is None:
            raise PrerequisiteError("valgrind is not installed: apt-get install valgrind")
        backends = Backends.from_environment(os.environ)
        check_backends(backends)
        print(f"loading demo data into {backends.database_name} ...", file=sys.stderr)
        catalog = load_database(backends, QUICK_DEMO)
        secret_key = secrets.token_urlsafe(48)
        environments = {
            enabled: service_environment(backends, secret_key, cache_enabled=enabled) | SLOWED_DOWN
            for enabled in (True, False)
        }
        print("counting under callgrind (a minute or two) ...", file=sys.stderr)
        found = measure(
            probes(catalog.first_id),
            environments,
            arguments.requests,
            arguments.warmup,
            valgrind,
        )
    except (PrerequisiteError, CountError) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    print(
        f"\ninstructions per request (callgrind; a window of {arguments.requests} requests "
        f"less an empty one, after {arguments.warmup} warm-up rounds over every path)"
    )
    for title, instructions in found.items():
        print(f"  {title:<44} {instructions:>12,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
