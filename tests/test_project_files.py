"""The files contributors' tools read, checked against what they name: the pre-commit hooks
and AGENTS.md run make targets that exist, Dependabot groups every ecosystem it updates, and
`[tool.fastapi]` points fastapi-cli at the application."""

import importlib
import re
import tomllib

import yaml
from fastapi import FastAPI

from support.processes import ROOT


def make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z-]*):", makefile, re.MULTILINE))


def test_pre_commit_hooks_run_make_targets_that_exist() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    entries = [hook["entry"] for repo in config["repos"] for hook in repo["hooks"]]
    assert entries
    for entry in entries:
        command, _, target = entry.partition(" ")
        assert command == "make", entry
        assert target in make_targets(), entry


def test_agents_md_names_make_targets_and_files_that_exist() -> None:
    text = (ROOT / "AGENTS.md").read_text()
    named = set(re.findall(r"\bmake ([a-z][a-z-]*)", text))
    assert {"test", "lint", "typecheck"} <= named
    assert named <= make_targets()
    for link in re.findall(r"\]\(([^)#]+)\)", text):
        assert (ROOT / link).exists(), link
    for path in re.findall(r"`((?:app|docs|requirements)/[\w/.*]+)`", text):
        assert list(ROOT.glob(path)), path


def test_dependabot_groups_every_ecosystem_it_updates() -> None:
    config = yaml.safe_load((ROOT / ".github/dependabot.yml").read_text())
    ecosystems = {update["package-ecosystem"]: update for update in config["updates"]}
    assert {"pip", "docker", "docker-compose"} <= ecosystems.keys()
    for update in ecosystems.values():
        assert update["groups"], update["package-ecosystem"]


def test_fastapi_cli_entrypoint_is_the_application() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    module, _, attribute = pyproject["tool"]["fastapi"]["entrypoint"].partition(":")
    application = getattr(importlib.import_module(module), attribute)
    assert isinstance(application, FastAPI)
    assert application is importlib.import_module("app.main").app
