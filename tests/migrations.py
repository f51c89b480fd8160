"""Runs Alembic programmatically against given settings."""

from pathlib import Path

from alembic import command
from alembic.config import Config

from app.core.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(settings: Settings) -> Config:
    config = Config(ROOT / "alembic.ini")
    config.attributes["settings"] = settings
    config.attributes["configure_logger"] = False
    return config


def upgrade_to_head(settings: Settings) -> None:
    command.upgrade(alembic_config(settings), "head")
