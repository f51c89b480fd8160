"""`make install`'s recipe, run by make against stand-ins for uv and the environment's
Python that record how they are called: uv first, and pip whenever uv is missing or fails."""

import shutil
import subprocess
from pathlib import Path

import pytest

from support.processes import ROOT

# uv's stand-in records its arguments and exits with the status a test gives it.
UV = """#!/bin/sh
echo "uv $*" >> "{log}"
exit {status}
"""
# The environment's Python is made without pip: `-m pip` fails until ensurepip has run.
PYTHON = """#!/bin/sh
echo "python $*" >> "{log}"
case "$*" in
    "-m ensurepip"*) touch "$0.pip" ;;
    "-m pip"*) [ -e "$0.pip" ] ;;
esac
"""
PIP_INSTALL = "python -m pip install --quiet --require-hashes -r requirements/main.txt"


def stand_in(path: Path, script: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script)
    path.chmod(0o755)


def make_install(tmp_path: Path, *, uv_status: int | None) -> tuple[int, list[str]]:
    """`make install` in a copy of the project; uv exits with `uv_status`, or is missing
    when None. Make's exit status, and the calls made to uv and Python in order."""
    project = tmp_path / "project"
    (project / "requirements").mkdir(parents=True)
    shutil.copy(ROOT / "Makefile", project)
    (project / "requirements/main.txt").write_text("# a lock\n")
    log = tmp_path / "calls.log"
    log.touch()
    stand_in(project / "venv/bin/python", PYTHON.format(log=log))
    if uv_status is not None:
        stand_in(project / "venv/bootstrap/bin/uv", UV.format(log=log, status=uv_status))
    result = subprocess.run(
        ["make", "--no-print-directory", "VENV=venv", "install"],  # noqa: S607 - make from PATH
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, log.read_text().splitlines()


@pytest.fixture(autouse=True)
def needs_make() -> None:
    if shutil.which("make") is None:
        pytest.skip("needs make")


def test_uv_installs_the_lock_trusting_the_systems_certificates(tmp_path: Path) -> None:
    status, calls = make_install(tmp_path, uv_status=0)
    assert status == 0
    (call,) = calls
    assert call.startswith("uv pip install --system-certs ")
    assert call.endswith("--require-hashes -r requirements/main.txt")
    assert (tmp_path / "project/venv/.installed-main").exists()


def test_pip_installs_the_lock_when_uv_fails(tmp_path: Path) -> None:
    status, calls = make_install(tmp_path, uv_status=1)
    assert status == 0
    assert calls[0].startswith("uv pip install ")
    assert calls[1:] == [
        "python -m pip --version",
        "python -m ensurepip --default-pip",
        PIP_INSTALL,
    ]
    assert (tmp_path / "project/venv/.installed-main").exists()


def test_pip_installs_the_lock_when_uv_is_missing(tmp_path: Path) -> None:
    status, calls = make_install(tmp_path, uv_status=None)
    assert status == 0
    assert calls == ["python -m pip --version", "python -m ensurepip --default-pip", PIP_INSTALL]
