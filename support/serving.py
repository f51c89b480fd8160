"""The service as its own commands serve it: `make serve`'s uvicorn, uvicorn with h11, and the
image's gunicorn, each a process on a free port with a SQLite database of its own."""

import os
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

import httpx

from support.deployment import dockerfile_command
from support.processes import BIN, ROOT, free_port


def make_serve_command(port: int) -> list[str]:
    """The `serve` recipe of the Makefile, as `make serve` runs it."""
    lines = (ROOT / "Makefile").read_text().replace("\\\n", " ").splitlines()
    recipe = lines[lines.index("serve:") + 1].strip()
    for variable, value in (("BIN", str(BIN)), ("HOST", "127.0.0.1"), ("PORT", str(port))):
        recipe = recipe.replace(f"$({variable})", value)
    return shlex.split(recipe)


def gunicorn_command(port: int) -> list[str]:
    return [part.replace("0.0.0.0:8000", f"127.0.0.1:{port}") for part in dockerfile_command()]


def h11_command(port: int) -> list[str]:
    command = make_serve_command(port)
    command[command.index("--http") + 1] = "app.core.http.server:H11Protocol"
    return command


def environment(tmp_path: Path, **overrides: str) -> dict[str, str]:
    return {
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "ENVIRONMENT": "local",
        "SQLITE_PATH": str(tmp_path / "app.db"),
        "WEB_CONCURRENCY": "1",
        "LOG_LEVEL": "WARNING",
        "OUTBOX_ENABLED": "false",
    } | overrides


Command = Callable[[int], list[str]]


@dataclass
class Served:
    host: str
    port: int
    process: Popen[str]
    output: str = ""  # stdout and stderr, once the server has stopped


@contextmanager
def server(command: Command, env: dict[str, str]) -> Iterator[Served]:
    """The server, serving; stopped (and its output collected) when the block ends."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - the project's own commands
        command(port), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    served = Served("127.0.0.1", port, process)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    raise RuntimeError(
                        f"the server did not start: {process.communicate()}"
                    ) from None
                time.sleep(0.05)
        yield served
    finally:
        if process.poll() is None:
            process.terminate()
        out, err = process.communicate(timeout=30)
        served.output = out + err
