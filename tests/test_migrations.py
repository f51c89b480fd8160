"""The migrations build the schema the models describe, on SQLite and on PostgreSQL."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import Settings
from app.models import Base
from tests.conftest import TEST_DATABASE_URL, make_settings
from tests.migrations import alembic_config


@pytest.fixture
async def empty_postgres(postgres_url: str) -> AsyncIterator[str]:
    """A brand-new PostgreSQL database beside the test one, dropped afterwards."""
    parts = urlsplit(postgres_url)
    name = f"{parts.path.lstrip('/')}_migrations"
    admin = create_async_engine(postgres_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def table_names(settings: Settings) -> set[str]:
    engine = create_async_engine(settings.sqlalchemy_url)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    return set(names) - {"alembic_version"}


async def exercise_migrations(settings: Settings) -> None:
    config = alembic_config(settings)
    # Alembic drives its own event loop, so it runs in a worker thread here.
    await asyncio.to_thread(command.upgrade, config, "head")
    assert await table_names(settings) == set(Base.metadata.tables)
    await asyncio.to_thread(command.check, config)
    await asyncio.to_thread(command.downgrade, config, "base")
    assert await table_names(settings) == set()
    await asyncio.to_thread(command.upgrade, config, "head")
    assert await table_names(settings) == set(Base.metadata.tables)


async def test_migrations_round_trip_on_sqlite(tmp_path: Path) -> None:
    await exercise_migrations(make_settings(None, tmp_path / "migrations.db"))


async def test_migrations_round_trip_on_postgres(empty_postgres: str, tmp_path: Path) -> None:
    assert TEST_DATABASE_URL is not None
    await exercise_migrations(make_settings(empty_postgres, tmp_path / "unused.db"))
