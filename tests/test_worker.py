import asyncio
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from app.core.config import Settings
from app.core.jobs import OutboxMessage, OutboxStatus
from app.core.jobs.email import EmailMessage, enqueue_email
from app.core.resources import Resources

ROOT = Path(__file__).resolve().parent.parent


async def test_worker_delivers_pending_messages_and_stops_cleanly_on_sigterm(
    migrated: Settings, resources: Resources, tmp_path: Path
) -> None:
    async with resources.sessionmaker.begin() as session:
        await enqueue_email(
            session, EmailMessage(to="ada@example.com", subject="Welcome", text="Hello.")
        )
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "ENVIRONMENT": "test",
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "INFO",
        "SQLITE_PATH": str(migrated.sqlite_path),
        # The shared environment turns delivery off in the API; the worker delivers anyway.
        "OUTBOX_ENABLED": "false",
        # Any free port: a fixed one could be taken by another run on this machine.
        "WORKER_METRICS_PORT": "0",
    }
    if migrated.database_url:
        env["DATABASE_URL"] = migrated.database_url
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.worker",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert worker.stdout is not None
    output: list[str] = []
    try:
        # A safety net: a worker that never delivers fails the test instead of hanging it.
        async with asyncio.timeout(30):
            while not any("email to ada@example.com: Welcome" in line for line in output):
                line = await worker.stdout.readline()
                assert line, "the worker exited early:\n" + "".join(output)
                output.append(line.decode())
            worker.send_signal(signal.SIGTERM)
            output.extend((await worker.stdout.read()).decode().splitlines(keepends=True))
            assert await worker.wait() == 0, "".join(output)
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()

    assert "outbox worker stopped" in output[-1]
    async with resources.sessionmaker() as session:
        [message] = await session.scalars(select(OutboxMessage))
    assert message.status is OutboxStatus.DELIVERED


def test_worker_refuses_an_invalid_setting_with_one_line(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SQLITE_PATH": str(tmp_path / "app.db"),
        "DB_POOL_SIZE": "plenty",
    }
    result = subprocess.run(
        [sys.executable, "-m", "app.worker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "refusing to start: invalid settings: DB_POOL_SIZE: "
        "Input should be a valid integer, unable to parse string as an integer"
    ]
