"""Migrations that never lock a busy table: `python -m scripts.migration_lint`.

Each Alembic revision's SQL, as `alembic upgrade <down>:<rev> --sql` writes it for
PostgreSQL, is checked by squawk, one revision at a time, for the statements that take a
lock every read and write queues behind, or rewrite a table under it: a NOT NULL column
without a default, an index built without CONCURRENTLY, a changed column type, a dropped
column, a constraint validated in the same statement that adds it.

A revision that must do one of these anyway says so in the module itself, rule by rule and
with the reason, so the exception sits beside the statement it covers and goes with it:

    # An index on a table this revision creates: nothing reads or writes it yet.
    squawk_exceptions = {"require-concurrent-index-creation": "the table is new"}

A reason that no longer holds is a finding again: an exception names one rule of one
revision and nothing else.
"""

import argparse
import io
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import Script, ScriptDirectory

from app.core.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SQUAWK = Path(sys.executable).parent / "squawk"
# The PostgreSQL release the service supports at the oldest: squawk's advice depends on it
# (from 11, ADD COLUMN with a constant default no longer rewrites the table).
PG_VERSION = "16"
# Rules about a schema's style rather than its locks, off everywhere, each for its reason:
GLOBALLY_OFF = {
    # The models choose their types; a varchar's limit is part of the contract (the API
    # refuses longer values), and widening one is a catalog-only change since PostgreSQL 9.2.
    "prefer-text-field": "varchar limits are the API's, and widening one rewrites nothing",
    # SQLAlchemy renders integer primary keys as SERIAL; both take no lock beyond the table's
    # own creation.
    "prefer-identity": "SERIAL is SQLAlchemy's rendering of an integer key",
    "prefer-bigint-over-int": "key widths are the models' choice, not a lock",
    "prefer-bigint-over-smallint": "key widths are the models' choice, not a lock",
    # A statement timeout would cut a long CONCURRENTLY build or backfill short; what keeps a
    # migration from queueing traffic behind it is the lock timeout, which env.py sets.
    "require-statement-timeout": "env.py sets lock_timeout; a statement may rightly be slow",
}


@dataclass(frozen=True, slots=True)
class Finding:
    revision: str
    path: Path
    report: str


def sql_of(config: Config, script: Script) -> str:
    """The SQL `alembic upgrade <down>:<rev> --sql` writes for one revision."""
    buffer = io.StringIO()
    config.output_buffer = buffer
    down = script.down_revision
    start = "base" if down is None else down if isinstance(down, str) else down[0]
    command.upgrade(config, f"{start}:{script.revision}", sql=True)
    return buffer.getvalue()


def exceptions_of(script: Script) -> Mapping[str, str]:
    """The rules a revision is excused from, each with its reason (module docstring)."""
    excused: Mapping[str, str] = getattr(script.module, "squawk_exceptions", {})
    for rule, reason in excused.items():
        if not reason.strip():
            raise SystemExit(f"{script.path}: the exception for {rule} gives no reason")
    return excused


def squawk(sql: str, name: str, excluded: set[str]) -> str | None:
    """squawk's report on `sql`, or None when it finds nothing."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"{name}.sql"
        path.write_text(sql)
        result = subprocess.run(  # noqa: S603 (the venv's own squawk, on a file we wrote)
            [
                str(SQUAWK),
                "--pg-version",
                PG_VERSION,
                "--reporter",
                "gcc",
                f"--exclude={','.join(sorted(excluded))}",
                str(path),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode == 0:
        return None
    return (result.stdout + result.stderr).replace(str(path), f"{name}.sql").strip()


def alembic_config() -> Config:
    config = Config(ROOT / "alembic.ini")
    # Offline mode only renders SQL: the URL names the dialect, nothing is connected to.
    config.attributes["settings"] = Settings(
        _env_file=None, database_url="postgresql+asyncpg://lint@localhost/lint"
    )
    config.attributes["configure_logger"] = False
    return config


def revisions(config: Config) -> Iterator[Script]:
    scripts = ScriptDirectory.from_config(config)
    yield from reversed(list(scripts.walk_revisions()))


def lint(config: Config, extra: Mapping[str, str] | None = None) -> list[Finding]:
    """Every revision's findings; `extra` is SQL to check as well, by name (the tests')."""
    findings: list[Finding] = []
    for script in revisions(config):
        excluded = set(GLOBALLY_OFF) | set(exceptions_of(script))
        report = squawk(sql_of(config, script), script.revision, excluded)
        if report is not None:
            findings.append(Finding(script.revision, Path(script.path), report))
    for name, sql in (extra or {}).items():
        report = squawk(sql, name, set(GLOBALLY_OFF))
        if report is not None:
            findings.append(Finding(name, Path(name), report))
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="SQL files to check as well")
    arguments = parser.parse_args(argv)
    extra = {path.stem: path.read_text() for path in arguments.files}
    findings = lint(alembic_config(), extra)
    for finding in findings:
        path = finding.path.relative_to(ROOT) if finding.path.is_absolute() else finding.path
        print(f"== {path}")
        print(finding.report)
    if findings:
        print(
            f"{len(findings)} migration(s) would lock or rewrite a table: change them "
            "(docs/migrations.md), or excuse one rule in the revision's "
            "squawk_exceptions with the reason",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
