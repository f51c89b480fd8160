"""Run a command against a private PostgreSQL primary and a streaming replica of it.

`python -m scripts.with_replica [--prefix TEST_] COMMAND...` starts a throwaway primary and
a hot standby copied from it with `pg_basebackup -R`, each on a free port, and runs the
command with DATABASE_URL naming a database on the primary and DATABASE_READ_URL the same
database on the standby, each name preceded by the prefix: `make bench` reads its replica
row's URL from DATABASE_READ_URL, the test suite (`--prefix TEST_ make test`) reads
TEST_DATABASE_READ_URL and sends every read that may go to a replica to it. The servers
skip the disk on writes unless `--durable` (for `make bench`, whose orders commit as a
deployment's do). Both are removed when the command ends; its exit status is this
script's.
"""

import argparse
import os
import subprocess
import sys

from support.servers import PostgresServer


def main(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.with_replica")
    parser.add_argument("--prefix", default="", help="before each variable's name (TEST_)")
    parser.add_argument("--durable", action="store_true", help="PostgreSQL's fsync and commits")
    parser.add_argument("--database", default="app_replicated", help="the database to create")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args(arguments)
    if not options.command:
        parser.error("a command to run is needed")
    primary = PostgresServer(durable=options.durable)
    replica: PostgresServer | None = None
    try:
        primary.start()
        primary.create_database(options.database)
        replica = PostgresServer(primary=primary, durable=options.durable)
        replica.start()
        prefix = options.prefix
        environment = os.environ | {
            f"{prefix}DATABASE_URL": primary.url(options.database),
            f"{prefix}DATABASE_READ_URL": replica.url(options.database),
        }
        print(
            f"== primary on port {primary.port}, its streaming replica on {replica.port}",
            flush=True,
        )
        return subprocess.run(options.command, env=environment, check=False).returncode  # noqa: S603
    finally:
        if replica is not None:
            replica.destroy()
        primary.destroy()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
