"""Private PostgreSQL, Redis and gunicorn processes that fault tests may stop, freeze and kill.

The shared servers other tests use are never touched: each process here runs from a temporary
directory on a free port, in a session of its own, so a signal reaches it and its children
(PostgreSQL's backends, gunicorn's workers) and nothing else.
"""

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class Unavailable(RuntimeError):
    """A binary or account a server needs is missing; the reason says which."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, *, timeout: float = 15.0, process: "Process | None" = None) -> None:
    """Wait until something listens on `port`; stop early if `process`, the listener, exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if process is not None and not process.running:
            raise RuntimeError(f"the process meant to listen on port {port} exited")
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout:g}s")


class Process:
    """A server process in its own session, so signals reach its whole process group."""

    def __init__(self) -> None:
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def spawn(
        self,
        command: list[str],
        *,
        log: Path,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
    ) -> None:
        with log.open("ab") as output:
            self.popen = subprocess.Popen(  # noqa: S603 - fixed commands of the test suite
                command,
                cwd=ROOT,
                env=env,
                user=user,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def signal_group(self, signum: signal.Signals) -> None:
        assert self.popen is not None
        os.killpg(self.popen.pid, signum)

    def pause(self) -> None:
        """Freeze the server: its port still accepts connections, nothing ever answers."""
        self.signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal_group(signal.SIGCONT)

    def stop(self, signum: signal.Signals = signal.SIGTERM, *, timeout: float = 30.0) -> int:
        """Stop the process and wait for it; its exit code."""
        assert self.popen is not None
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.signal_group(signal.SIGCONT)
                self.popen.send_signal(signum)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            return self.popen.wait(timeout)


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
    """A throwaway PostgreSQL cluster; `stop()` and `start()` keep its data and port."""

    def __init__(self, port: int | None = None) -> None:
        super().__init__()
        self.bin = _postgres_bin()
        self.user = _postgres_user()
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        if self.user is not None:
            shutil.chown(self.root, self.user)
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
            # Durability is not under test; these make start-up and writes quick.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
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
        for child in _children(self.popen.pid):
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
        return _children(self.popen.pid)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def destroy(self) -> None:
        if self.running:
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # The command name is in parentheses and may hold spaces; the parent id follows.
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[1]) == pid:
                children.append(int(stat.parent.name))
    return sorted(children)


def migrate(database_url: str) -> None:
    """Bring a database to the newest schema with Alembic, as a release does."""
    subprocess.run(  # noqa: S603 - fixed command
        [str(BIN / "alembic"), "upgrade", "head"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "DATABASE_URL": database_url},
        check=True,
        capture_output=True,
    )


@contextlib.contextmanager
def paused(process: Process) -> Iterator[None]:
    process.pause()
    try:
        yield
    finally:
        process.resume()
