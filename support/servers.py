"""Private PostgreSQL, Redis and gunicorn processes that tests may stop, freeze and kill.

The shared servers other tests use are never touched: each process here runs from a temporary
directory on a free port (support.processes).
"""

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from support.processes import BIN, ROOT, Process, Unavailable, children, free_port, wait_for_port

# The service's settings while its servers fail: short timeouts keep outages quick to observe
# (the bounds the fault tests assert derive from them), rate limits out of the way.
DB_CONNECT_TIMEOUT = 1.0
REDIS_TIMEOUT = 0.25
OUTAGE_SETTINGS = {
    "ENVIRONMENT": "test",
    "LOG_LEVEL": "WARNING",
    "LOG_FORMAT": "text",
    "PASSWORD_HASH_MEMORY_KIB": "1024",
    "PASSWORD_HASH_ITERATIONS": "1",
    "PASSWORD_HASH_BCRYPT_ROUNDS": "4",
    "RATE_LIMIT_DEFAULT": "100000/minute",
    "RATE_LIMIT_LOGIN": "100000/minute",
    "RATE_LIMIT_REGISTER": "100000/hour",
    "RATE_LIMIT_ORDERS": "100000/minute",
    "DB_CONNECT_TIMEOUT": str(DB_CONNECT_TIMEOUT),
    "DB_COMMAND_TIMEOUT": "3",
    "HEALTH_CHECK_TIMEOUT": "1",
    "REDIS_TIMEOUT": str(REDIS_TIMEOUT),
    "REDIS_FAILURE_COOLDOWN_SECONDS": "1",
    "OUTBOX_POLL_INTERVAL": "0.5",
}


def _postgres_bin() -> Path:
    """The directory of the server binaries (initdb, postgres, pg_isready, psql)."""
    found = shutil.which("initdb")
    candidates = [str(Path(found).resolve())] if found else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    for initdb in candidates:
        directory = Path(initdb).parent
        if all((directory / name).exists() for name in ("postgres", "pg_isready", "psql")):
            return directory
    raise Unavailable("needs PostgreSQL's initdb, postgres, pg_isready and psql binaries")


def _postgres_user() -> str | None:
    """The account the server runs as: PostgreSQL refuses to run as root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres").pw_name
    except KeyError:
        raise Unavailable("running as root needs a 'postgres' account to run PostgreSQL") from None


class PostgresServer(Process):
    """A throwaway PostgreSQL cluster; `stop()` and `start()` keep its data and port.

    Given a running `primary`, it is a streaming replica of it (a hot standby), copied with
    `pg_basebackup -R`, instead of a cluster of its own. Writes skip the disk unless it is
    `durable` (PostgreSQL's defaults, for measuring what a commit costs).
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        primary: "PostgresServer | None" = None,
        durable: bool = False,
    ):
        super().__init__()
        self.durable = durable
        self.bin = _postgres_bin()
        self.user = _postgres_user()
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        if self.user is not None:
            shutil.chown(self.root, self.user)
        if primary is not None:
            subprocess.run(  # noqa: S603 - fixed command
                [
                    str(self.bin / "pg_basebackup"),
                    *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
                    *("-D", str(self.data), "-R", "-X", "stream", "-c", "fast", "--no-sync"),
                ],
                check=True,
                capture_output=True,
                user=self.user,
            )
            return
        subprocess.run(  # noqa: S603 - fixed command
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            user=self.user,
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.root),
            "max_connections": "200",
        }
        if not self.durable:
            # Durability is not under test; these make start-up and writes quick.
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        options = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        command = [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        self.spawn(command + options, log=self.log, user=self.user)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready = subprocess.run(  # noqa: S603 - fixed command
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
                check=False,
            )
            if ready.returncode == 0:
                return
            if not self.running:
                raise RuntimeError(f"PostgreSQL exited: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)
        raise TimeoutError("PostgreSQL did not accept connections within 30 s")

    def signal_group(self, signum: signal.Signals) -> None:
        # Every backend makes itself a process group of its own, so the postmaster's group
        # holds only the postmaster: its children are signalled one by one.
        assert self.popen is not None
        os.kill(self.popen.pid, signum)
        for child in children(self.popen.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    def stop(self, signum: signal.Signals = signal.SIGINT, *, timeout: float = 30.0) -> int:
        """SIGINT is PostgreSQL's fast shutdown: sessions are cut, as in a restart."""
        return super().stop(signum, timeout=timeout)

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(  # noqa: S603 - fixed command
            [
                str(self.bin / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-XAtqc",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout.strip()

    def create_database(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        if self.running:
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer(Process):
    """A throwaway Redis without persistence; `start()` again reuses the port."""

    def __init__(self, port: int | None = None) -> None:
        super().__init__()
        binary = shutil.which("redis-server")
        if binary is None:
            raise Unavailable("needs redis-server (apt-get install redis-server)")
        self.binary = binary
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="faults-redis-"))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.root)]
        self.spawn(command, log=self.root / "redis.log")
        wait_for_port(self.port)

    def destroy(self) -> None:
        if self.running:
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class Gunicorn(Process):
    """The service as production runs it: gunicorn supervising uvicorn workers."""

    def __init__(self, environment: Mapping[str, str], *, workers: int = 1) -> None:
        super().__init__()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="faults-app-"))
        self.log = self.root / "gunicorn.log"
        self.environment = {
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "PROMETHEUS_MULTIPROC_DIR": str(self.root / "metrics"),
            **environment,
        }
        self.workers = workers

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [str(BIN / "gunicorn"), "app.main:app", "--config", "gunicorn.conf.py"]
        command += ["--worker-class", "app.core.http.server.UvicornWorker"]
        command += ["--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers)]
        command += ["--graceful-timeout", "20", "--timeout", "60"]
        self.spawn(command, log=self.log, env=self.environment)
        wait_for_port(self.port, timeout=30)

    def worker_pids(self) -> list[int]:
        assert self.popen is not None
        return children(self.popen.pid)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def destroy(self) -> None:
        if self.running:
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def migrate(database_url: str) -> None:
    """Bring a database to the newest schema with Alembic, as a release does."""
    subprocess.run(  # noqa: S603 - fixed command
        [str(BIN / "alembic"), "upgrade", "head"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "DATABASE_URL": database_url},
        check=True,
        capture_output=True,
    )


async def wait_until_ready(http: httpx.AsyncClient, seconds: float = 30.0) -> None:
    """Wait until the service behind `http` answers its readiness probe."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if (await http.get("/health/ready")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise TimeoutError(f"the service was not ready within {seconds:g}s")
