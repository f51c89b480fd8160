"""What a run of `make bench` is asked to do: the command line, with the quick mode's defaults."""

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.prepare import DemoSize

HIGH_CONCURRENCY = 256
FULL_DEMO = DemoSize(users=20, items=3000, posts=200, orders=500)
QUICK_DEMO = DemoSize(users=3, items=100, posts=0, orders=0)


@dataclass(frozen=True)
class Options:
    quick: bool
    json_path: Path | None
    connections: int
    seconds: float
    repetitions: int
    warmup_seconds: float
    cold_starts: int
    high_concurrency: bool
    demo: DemoSize

    @classmethod
    def parse(cls, argv: Sequence[str] | None, description: str) -> "Options":
        parser = argparse.ArgumentParser(prog="python -m bench.run", description=description)
        parser.add_argument("--quick", action="store_true", help="a short smoke run for CI")
        parser.add_argument("--json", type=Path, dest="json_path", help="also write results here")
        parser.add_argument("--connections", type=int)
        parser.add_argument("--seconds", type=float)
        parser.add_argument("--repetitions", type=int)
        arguments = parser.parse_args(argv)
        quick: bool = arguments.quick
        return cls(
            quick=quick,
            json_path=arguments.json_path,
            connections=arguments.connections or (16 if quick else 64),
            seconds=arguments.seconds or (1 if quick else 10),
            repetitions=arguments.repetitions or (1 if quick else 3),
            warmup_seconds=0 if quick else 2,
            cold_starts=1 if quick else 5,
            high_concurrency=not quick,
            demo=QUICK_DEMO if quick else FULL_DEMO,
        )
