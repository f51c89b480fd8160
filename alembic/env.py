"""Alembic environment: async engine, URL from the service settings."""

import asyncio
from collections.abc import Callable
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.schema import SchemaItem

from app.core.config import Settings
from app.core.db.engine import create_engine
from app.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _settings() -> Settings:
    # Tests hand in their own settings; the command line reads the environment.
    settings = config.attributes.get("settings")
    return settings if isinstance(settings, Settings) else Settings()


def _bound_lock_waits(dialect: str) -> None:
    """A statement waiting for a table's lock holds up every query queued behind it, so a
    migration that cannot have its lock soon fails (and is run again) instead of stalling
    the service. Inside the migrations' transaction, so it ends with it."""
    if dialect == "postgresql":
        milliseconds = int(_settings().migration_lock_timeout_seconds * 1000)
        context.execute(f"SET LOCAL lock_timeout = '{milliseconds}ms'")


def run_migrations_offline() -> None:
    settings = _settings()
    context.configure(
        url=settings.sqlalchemy_url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=True,
    )
    with context.begin_transaction():
        _bound_lock_waits(make_url(settings.sqlalchemy_url).get_backend_name())
        context.run_migrations()


def _for_dialect(dialect: str) -> Callable[[SchemaItem, str | None, str, bool, Any], bool]:
    """Leaves out of the comparison the indexes a model declares for other databases only
    (`info={"dialects": (...)}`, such as PostgreSQL's trigram indexes): their migrations
    create them only there, so elsewhere their absence is not a difference."""

    def include_object(
        obj: SchemaItem, _name: str | None, type_: str, reflected: bool, _compare_to: Any
    ) -> bool:
        if type_ != "index" or reflected:
            return True
        dialects = obj.info.get("dialects")
        return dialects is None or dialect in dialects

    return include_object


def _run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=_for_dialect(connection.dialect.name),
        # SQLite cannot ALTER most constraints; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        _bound_lock_waits(connection.dialect.name)
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = create_engine(_settings())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_with)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
