"""The compose topology on this machine, without containers: `python -m scripts.stack up`.

One migration, two API replicas (gunicorn, two workers each, the Dockerfile's command) and a
job log worker (compose's `worker` command) behind nginx (deploy/nginx/api.conf with local
addresses), against PgBouncer in transaction mode in front of PostgreSQL and a Redis Cluster
of three masters. Needs Debian's nginx, pgbouncer and redis-server packages. With
`--read-replica`, a streaming replica of the private PostgreSQL serves the reads a replica
may (DATABASE_READ_URL).

    python -m scripts.stack up [--dir DIR] [--read-replica] [--set NAME=VALUE ...]
                                                  start, print the URL
    python -m scripts.stack env [--dir DIR]       shell exports of its addresses
    python -m scripts.stack down [--dir DIR]      stop everything, remove DIR

Every process runs in a session of its own from DIR, on free ports, so nothing else on the
machine is touched; `down` stops them by the process ids `up` recorded in DIR/stack.json.
"""

import argparse
import json
import sys
from pathlib import Path

from support.processes import Unavailable
from support.stack import DEFAULT_DIR, Stack, stop_recorded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["up", "down", "env"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="where the stack lives")
    parser.add_argument(
        "--database-url",
        help="an existing PostgreSQL database (postgresql+asyncpg://user@host:port/db); "
        "unset: a private PostgreSQL in DIR",
    )
    parser.add_argument(
        "--read-replica",
        action="store_true",
        help="a streaming replica of the private PostgreSQL for reads (DATABASE_READ_URL)",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="a setting of the app"
    )
    arguments = parser.parse_args()
    root: Path = arguments.dir
    if arguments.action == "up":
        if (root / "stack.json").exists():
            raise SystemExit(f"a stack already runs from {root}: `down` it first")
        settings = dict(item.split("=", 1) for item in arguments.set)
        stack = Stack(
            root,
            settings=settings,
            database_url=arguments.database_url,
            read_replica=arguments.read_replica,
        )
        try:
            stack.up()
        except Unavailable as reason:
            raise SystemExit(str(reason)) from None
        print(f"the stack answers at {stack.url}; `python -m scripts.stack down` stops it")
    elif arguments.action == "env":
        state = json.loads((root / "stack.json").read_text())
        for name, value in state["urls"].items():
            print(f"export {name}={value}")
    else:
        if not (root / "stack.json").exists():
            sys.exit(f"no stack runs from {root}")
        stop_recorded(root)


if __name__ == "__main__":
    main()
