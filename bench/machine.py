"""The machine and versions a run was taken on, for the record next to its figures."""

import os
import platform
import subprocess
from importlib import metadata

from support.processes import ROOT

PACKAGES = (
    "fastapi",
    "starlette",
    "pydantic",
    "uvicorn",
    "uvicorn-worker",
    "gunicorn",
    "uvloop",
    "httptools",
    "sqlalchemy",
    "asyncpg",
    "redis",
    "limits",
    "prometheus-client",
    "pyjwt",
    "pwdlib",
    "argon2-cffi",
)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _first_line(command: list[str]) -> str | None:
    """The first line a command prints (wrk -v exits 1 after its version), None if it cannot run."""
    try:
        done = subprocess.run(  # noqa: S603 - fixed commands
            command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0] if lines else ""


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def describe(postgres: str, redis: str) -> dict[str, object]:
    commit = _first_line(["git", "rev-parse", "--short", "HEAD"]) or "unknown"
    changes = _first_line(["git", "status", "--porcelain", "--untracked-files=no"])
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": postgres,
        "redis": redis,
        "wrk": _first_line(["wrk", "-v"]) or "unknown",
        # Figures from uncommitted code say so.
        "commit": commit + ("+changes" if changes else ""),
        "packages": package_versions(),
    }
