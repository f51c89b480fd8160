"""The job log worker (`python -m app.worker`) while its database is down: its liveness fails
once the outage outlasts the threshold, it logs the outage when it begins and when it ends
rather than at every poll, and it works again without a restart."""

import asyncio
import re
import signal
import sys
import time

import httpx

from support.processes import ROOT, free_port
from support.servers import PostgresServer
from tests.conftest import RUNS_WITH_POSTGRES
from tests.waiting import eventually

pytestmark = RUNS_WITH_POSTGRES

POLL_INTERVAL = 0.2
UNHEALTHY_AFTER = 2.0
# A text log line starts with its date; the lines of a traceback do not.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (\w+)")


async def health(http: httpx.AsyncClient) -> int:
    try:
        return (await http.get("/health")).status_code
    except httpx.TransportError:
        return 0


async def test_an_outage_fails_liveness_is_logged_once_and_heals_by_itself(
    postgres: PostgresServer, database_url: str
) -> None:
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "ENVIRONMENT": "test",
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "INFO",
        "DATABASE_URL": database_url,
        "DB_CONNECT_TIMEOUT": "1",
        "OUTBOX_POLL_INTERVAL": str(POLL_INTERVAL),
        "WORKER_METRICS_PORT": str(port),
        "WORKER_UNHEALTHY_AFTER_SECONDS": str(UNHEALTHY_AFTER),
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.worker",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

            async def answers(status: int) -> bool:
                return await health(http) == status

            await eventually(lambda: answers(200), seconds=30)
            postgres.stop()
            stopped = time.monotonic()
            await eventually(lambda: answers(503), seconds=UNHEALTHY_AFTER + 10)
            assert time.monotonic() - stopped >= UNHEALTHY_AFTER * 0.9
            # Dozens of failed polls more, still one line.
            await asyncio.sleep(10 * POLL_INTERVAL)
            postgres.start()
            await eventually(lambda: answers(200), seconds=30)

            async def backlog_counted() -> bool:
                # The gauge is refreshed by the worker's own count, after its first good poll.
                scrape = (await http.get("/metrics")).text
                return 'outbox_messages_pending{topic="email"}' in scrape

            await eventually(backlog_counted, seconds=15)
    finally:
        worker.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            out, _ = await worker.communicate()
    output = out.decode()
    assert worker.returncode == 0, output

    records = [(match[1], line) for line in output.splitlines() if (match := LOG_LINE.match(line))]
    noisy = [line for level, line in records if level in ("WARNING", "ERROR")]
    outage = [line for line in noisy if "outbox dispatch failed" in line]
    healed = [line for line in noisy if "outbox dispatch works again" in line]
    assert len(outage) == 1, output
    assert len(healed) == 1, output
    # The dispatcher's two lines and, on PostgreSQL, the listener's connection lost, its
    # reconnecting failing and working again: never a line per poll.
    assert len(noisy) <= 5, "\n".join(noisy)
    assert "outbox worker stopped" in records[-1][1]
