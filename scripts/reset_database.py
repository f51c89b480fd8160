"""Drop and recreate a PostgreSQL database: `python -m scripts.reset_database URL`.

Used by CI to give every run a brand-new test database.
"""

import asyncio
import sys
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine


async def reset_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing to reset a database named {name!r}")
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    engine = create_async_engine(maintenance, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m scripts.reset_database postgresql+asyncpg://...")
    asyncio.run(reset_database(sys.argv[1]))
