"""Wait until the database's schema is the one this image's code expects, then exit 0.

The Kubernetes pods run it as an init container: a release's `kubectl apply -k` starts new
pods before its migration Job has run (the Job is created by a step of its own), and a pod
must not serve a schema older than its code. A schema newer than the image (a rollback
after a migration) does not hold a pod back: each migration leaves the schema usable by
the previous release.

    python -m deploy.wait_for_migrations [--timeout SECONDS]

Without --timeout it waits as long as it takes, saying once per change what it waits for.
"""

import argparse
import asyncio
import sys
import time
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from app.core.config import Settings
from app.core.db.engine import create_engine

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 2.0


def waiting_for(script: ScriptDirectory, current: set[str]) -> str | None:
    """What the schema still lacks for this image, or None when it can serve."""
    heads = set(script.get_heads())
    if heads <= current:
        return None
    known = {revision.revision for revision in script.walk_revisions()}
    if current - known:
        # Revisions this image has never heard of: a later release's.
        return None
    at = ", ".join(sorted(current)) or "no revision"
    return f"the database is at {at}; this image needs {', '.join(sorted(heads))}"


def _current_heads(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


async def current_revisions(settings: Settings) -> set[str]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_current_heads)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, help="give up (exit 1) after this many seconds")
    arguments = parser.parse_args(argv)
    settings = Settings()
    script = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini")))
    deadline = None if arguments.timeout is None else time.monotonic() + arguments.timeout
    said = None
    while True:
        try:
            missing = waiting_for(script, asyncio.run(current_revisions(settings)))
        except (OSError, SQLAlchemyError) as error:
            missing = f"the database does not answer ({type(error).__name__})"
        if missing is None:
            print("the schema is this image's or newer: starting", flush=True)
            return 0
        if missing != said:
            print(f"waiting for the migration: {missing}", flush=True)
            said = missing
        if deadline is not None and time.monotonic() >= deadline:
            return 1
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    sys.exit(main())
