"""Processes run in sessions of their own, on free ports: what every server here builds on.

A signal sent to one reaches it and its children (PostgreSQL's backends, gunicorn's workers)
and nothing else on the machine.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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


def children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # The command name is in parentheses and may hold spaces; the parent id follows.
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[1]) == pid:
                children.append(int(stat.parent.name))
    return sorted(children)


@contextlib.contextmanager
def paused(process: Process) -> Iterator[None]:
    process.pause()
    try:
        yield
    finally:
        process.resume()


def binary(name: str) -> str:
    """The path of a Debian package's program, sbin included; `Unavailable` names the package."""
    found = shutil.which(name) or next(
        (path for path in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if Path(path).exists()), None
    )
    if found is None:
        raise Unavailable(f"needs {name} (apt-get install {name.replace('-server', '')})")
    return found
