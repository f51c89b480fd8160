"""The Kubernetes pods' init container (deploy/wait_for_migrations.py), run as the pods run
it, against a SQLite database at each point of a release: not migrated, behind, migrated,
and ahead of the image after a rollback."""

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory

from support.processes import ROOT
from tests.conftest import make_settings
from tests.migrations import alembic_config, upgrade_to_head

COMMAND = [sys.executable, "-m", "deploy.wait_for_migrations"]


def environment(database: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(database.parent),
        "ENVIRONMENT": "local",
        "SQLITE_PATH": str(database),
    }


def wait(database: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the project's own command
        [*COMMAND, "--timeout", str(timeout)],
        cwd=ROOT,
        env=environment(database),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def migrate(database: Path, revision: str = "head") -> None:
    command.upgrade(alembic_config(make_settings(None, database)), revision)


def revisions() -> list[str]:
    """Every revision, oldest first."""
    script = ScriptDirectory.from_config(alembic_config(make_settings(None, Path("unused"))))
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


def test_a_database_without_the_schema_holds_the_pod_back(tmp_path: Path) -> None:
    result = wait(tmp_path / "app.db", timeout=1)
    assert result.returncode == 1
    assert "waiting for the migration: the database is at no revision" in result.stdout


def test_a_schema_behind_the_image_holds_the_pod_back(tmp_path: Path) -> None:
    database = tmp_path / "app.db"
    older, head = revisions()[-2:]
    migrate(database, older)
    result = wait(database, timeout=1)
    assert result.returncode == 1
    assert f"the database is at {older}; this image needs {head}" in result.stdout


def test_the_pod_starts_once_the_migration_has_run(tmp_path: Path) -> None:
    database = tmp_path / "app.db"
    waiting = subprocess.Popen(  # noqa: S603 - the project's own command
        COMMAND,
        cwd=ROOT,
        env=environment(database),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(1)
        assert waiting.poll() is None, waiting.communicate()[0]
        upgrade_to_head(make_settings(None, database))
        assert waiting.wait(timeout=30) == 0
    finally:
        if waiting.poll() is None:
            waiting.kill()
    output = waiting.communicate()[0]
    assert output.splitlines()[-1] == "the schema is this image's or newer: starting"


def test_a_schema_ahead_of_the_image_does_not_hold_a_rollback_back(tmp_path: Path) -> None:
    database = tmp_path / "app.db"
    upgrade_to_head(make_settings(None, database))
    # As if a later release had migrated, and its pods were then rolled back to this image.
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'a1b2c3d4e5f6'")
    assert wait(database, timeout=1).returncode == 0
