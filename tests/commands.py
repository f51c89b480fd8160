"""The operator commands (`python -m app.cli`), run as an operator runs them: a process with
the service's settings."""

import asyncio
import sys

from app.core.config import Settings
from support.processes import ROOT


async def cli(settings: Settings, *arguments: str, **variables: str) -> tuple[int, str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
        "SQLITE_PATH": str(settings.sqlite_path),
        "OUTBOX_RETENTION_DAYS": "7",
    } | variables
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *arguments,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
