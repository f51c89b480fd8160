"""The deployment files read as data: what the image and compose run, and the settings."""

import json
import re
from typing import Any

import yaml

from app.core.config import Settings
from support.processes import ROOT


def dockerfile_instructions(name: str) -> list[str]:
    """The arguments of every `name` instruction of the Dockerfile, in order."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in text.splitlines() if line.startswith(f"{name} ")]


def dockerfile_command() -> list[str]:
    """The image's CMD: what every API container runs."""
    command: list[str] = json.loads(dockerfile_instructions("CMD")[-1])
    return command


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def compose_command(service: str) -> list[str]:
    command: list[str] = compose()["services"][service]["command"]
    return command


def with_compose_defaults(value: object) -> str:
    """Resolve `${NAME:-default}` the way Compose does when NAME is unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))


def setting_names() -> set[str]:
    """Every setting's environment variable."""
    return {name.upper() for name in Settings.model_fields}
