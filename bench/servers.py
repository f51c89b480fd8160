"""Starting servers the way production does (gunicorn, the project's worker class), timing
their start, and reading a worker's memory from /proc."""

import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from support.processes import ROOT, children, free_port

WORKER_CLASS = "app.core.http.server.UvicornWorker"
SERVICE_CONFIG = "gunicorn.conf.py"
BASELINE_CONFIG = "bench/baselines/gunicorn_conf.py"


class ServerError(RuntimeError):
    """A server did not start or answer."""


def gunicorn_command(
    app: str, config: str, port: int, cpu: int | None, python: str = sys.executable
) -> list[str]:
    # The Dockerfile's CMD, bound to loopback; WEB_CONCURRENCY in the environment sets the
    # worker count, as it does in the image.
    command = [
        python,
        "-m",
        "gunicorn",
        app,
        "--config",
        config,
        "--worker-class",
        WORKER_CLASS,
        "--bind",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "20",
        "--timeout",
        "60",
        "--keep-alive",
        "5",
    ]
    if cpu is not None:
        command = ["taskset", "--cpu-list", str(cpu), *command]
    return command


def get_status(port: int, path: str, timeout: float = 2.0) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


@dataclass
class Server:
    name: str
    app: str
    environment: Mapping[str, str]
    cpu: int | None = None
    # Off: start on every core (several servers starting at once on one core only make a
    # run slower) and pin each task once serving. On: taskset from exec, for cold starts.
    pin_at_start: bool = False
    workers: int = 1
    config: str = BASELINE_CONFIG
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    _scratch: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        environment = dict(self.environment)
        environment["WEB_CONCURRENCY"] = str(self.workers)
        # Each server gets its own Prometheus directory, so a run never merges another's
        # files, and a log file rather than a pipe, which would block the server once full.
        self._scratch = tempfile.mkdtemp(prefix=f"bench-{self.name}-")
        environment["PROMETHEUS_MULTIPROC_DIR"] = str(Path(self._scratch, "prometheus"))
        with Path(self._scratch, "server.log").open("wb") as log:
            self.started_at = time.perf_counter()
            self.process = subprocess.Popen(  # noqa: S603 - our own command line
                gunicorn_command(
                    self.app, self.config, self.port, self.cpu if self.pin_at_start else None
                ),
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_until_serving(self, path: str = "/health", timeout: float = 30.0) -> float:
        """Seconds from start to the first 200 on `path`."""
        deadline = self.started_at + timeout
        while time.perf_counter() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServerError(f"{self.name} exited at start: {self._log_tail()}")
            try:
                if get_status(self.port, path) == 200:
                    return time.perf_counter() - self.started_at
            except OSError:
                pass
            time.sleep(0.01)
        raise ServerError(f"{self.name} did not answer 200 on {path} within {timeout:g} s")

    def _log_tail(self) -> str:
        if self._scratch is None:
            return ""
        log = Path(self._scratch, "server.log")
        lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
        return " | ".join(lines[-3:])

    def pin(self) -> None:
        """Move the master and every worker thread to `cpu`; later ones inherit it."""
        if self.cpu is None or self.process is None:
            return
        for pid in [self.process.pid, *self.worker_pids()]:
            for task in Path(f"/proc/{pid}/task").iterdir():
                os.sched_setaffinity(int(task.name), {self.cpu})

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        return children(self.process.pid)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=25)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


def rss_megabytes(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ServerError(f"no VmRSS for process {pid}")


def cpus_for_pinning() -> tuple[int, int] | None:
    """(load generator CPU, server CPU) when two cores are available and taskset exists."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2 or shutil.which("taskset") is None:
        return None
    return available[0], available[1]


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes have used so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks
