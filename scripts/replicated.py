"""Run a command against a private PostgreSQL primary and a streaming replica of it:
`python -m scripts.replicated -- make test`.

Both servers run from a temporary directory on free ports (support.servers) and are removed
afterwards. The command gets `TEST_DATABASE_URL` (a database on the primary) and
`TEST_DATABASE_READ_URL` (the same database on the replica), so the whole suite runs with
every read a replica may serve sent to one: CI's third pass.
"""

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence

from support.servers import PostgresServer

DATABASE = "app_replicated"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.replicated", description=__doc__)
    parser.add_argument("command", nargs="+", help="the command to run, after --")
    arguments = parser.parse_args(argv)
    primary = PostgresServer()
    replica: PostgresServer | None = None
    try:
        primary.start()
        primary.create_database(DATABASE)
        replica = PostgresServer(primary=primary)
        replica.start()
        environment = os.environ | {
            "TEST_DATABASE_URL": primary.url(DATABASE),
            "TEST_DATABASE_READ_URL": replica.url(DATABASE),
        }
        print(
            f"primary on port {primary.port}, replica on port {replica.port}: "
            + " ".join(arguments.command),
            flush=True,
        )
        return subprocess.run(arguments.command, env=environment, check=False).returncode  # noqa: S603
    finally:
        if replica is not None:
            replica.destroy()
        primary.destroy()


if __name__ == "__main__":
    sys.exit(main())
