"""What a run needs before any server starts: the tools, the backends and the data."""

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg
from redis import Redis
from redis.exceptions import RedisError

from bench.baselines.database import asyncpg_dsn
from bench.baselines.insert import SCRATCH_TABLE_DDL
from support.processes import ROOT

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
REDIS_KEY_PREFIX = "bench"
# Enough that no order in a run is refused for stock: a 409 would be measured as an error.
ITEM_STOCK = 1_000_000
HOT_ITEM_STOCK = 100_000_000


class PrerequisiteError(RuntimeError):
    """Something the benchmark needs is missing; the message is one line for the operator."""


@dataclass(frozen=True)
class Backends:
    database_url: str
    redis_url: str
    # A streaming replica of DATABASE_URL's server: the replica's scenario reads from it.
    read_url: str | None = None

    @classmethod
    def from_environment(cls, environment: Mapping[str, str]) -> "Backends":
        return cls(
            environment.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            environment.get("REDIS_URL") or DEFAULT_REDIS_URL,
            environment.get("DATABASE_READ_URL") or None,
        )

    @property
    def database_name(self) -> str:
        return urlsplit(self.database_url).path.lstrip("/")


@dataclass(frozen=True)
class Catalog:
    first_id: int
    last_id: int
    hot_item_id: int
    users: int


@dataclass(frozen=True)
class DemoSize:
    users: int
    items: int
    posts: int
    orders: int


def check_tools() -> None:
    if shutil.which("wrk") is None:
        raise PrerequisiteError("wrk is not installed: apt-get install wrk")


def check_backends(backends: Backends) -> tuple[str, str]:
    """PostgreSQL and Redis server versions; PrerequisiteError when either is unreachable."""
    if not backends.database_name or "bench" not in backends.database_name:
        # The run drops and recreates this database: never one that might hold real data.
        raise PrerequisiteError(
            f"refusing to use database {backends.database_name!r}: "
            "the benchmark recreates it, so its name must contain 'bench'"
        )
    try:
        postgres = asyncio.run(_postgres_version(_maintenance_dsn(backends.database_url)))
    except (OSError, asyncpg.PostgresError, TimeoutError, ValueError) as error:
        raise PrerequisiteError(
            f"PostgreSQL is not reachable at {_safe(backends.database_url)}: {error}"
        ) from error
    try:
        client = Redis.from_url(backends.redis_url, socket_timeout=3, socket_connect_timeout=3)
        redis = str(client.info("server")["redis_version"])
        client.close()
    except (RedisError, OSError) as error:
        raise PrerequisiteError(
            f"Redis is not reachable at {_safe(backends.redis_url)}: {error}"
        ) from error
    return postgres, redis


def _safe(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{':' if parts.port else ''}{parts.port or ''}{parts.path}"


def _maintenance_dsn(url: str) -> str:
    return asyncpg_dsn(urlsplit(url)._replace(path="/postgres").geturl())


async def _postgres_version(dsn: str) -> str:
    connection = await asyncpg.connect(dsn, timeout=3)
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


def _run(arguments: list[str], environment: Mapping[str, str], what: str) -> None:
    done = subprocess.run(  # noqa: S603 - our own interpreter and modules
        [sys.executable, *arguments],
        cwd=ROOT,
        env=dict(environment),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise PrerequisiteError(f"{what} failed: {tail}")


def load_database(backends: Backends, size: DemoSize) -> Catalog:
    """Recreate, migrate and seed the bench database; give every item plenty of stock."""
    environment = os.environ | {
        "DATABASE_URL": backends.database_url,
        "REDIS_URL": backends.redis_url,
        "REDIS_KEY_PREFIX": REDIS_KEY_PREFIX,
        "ENVIRONMENT": "local",
        "LOG_LEVEL": "WARNING",
        "OTEL_ENABLED": "false",
    }
    _run(
        ["-m", "scripts.reset_database", backends.database_url],
        environment,
        "creating the database",
    )
    _run(["-m", "alembic", "upgrade", "head"], environment, "migrating the database")
    seed = ["-m", "app.cli", "seed-demo"]
    for name in ("users", "items", "posts", "orders"):
        seed += [f"--{name}", str(getattr(size, name))]
    _run(seed, environment, "loading demo data")
    catalog = asyncio.run(_restock(asyncpg_dsn(backends.database_url)))
    flush_redis(backends.redis_url)
    return catalog


async def _restock(dsn: str) -> Catalog:
    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        first, last = await connection.fetchrow("SELECT min(id), max(id) FROM items")
        users = await connection.fetchval("SELECT count(*) FROM users")
        if first is None or first == last:
            raise PrerequisiteError("the demo catalog needs at least two items")
        await connection.execute("UPDATE items SET stock = $1", ITEM_STOCK)
        await connection.execute("UPDATE items SET stock = $1 WHERE id = $2", HOT_ITEM_STOCK, first)
        await connection.execute(SCRATCH_TABLE_DDL)
        return Catalog(first_id=first, last_id=last, hot_item_id=first, users=users)
    finally:
        await connection.close()


def flush_redis(url: str) -> None:
    """Drop this run's keys (and only those): cached items still carry the old stock."""
    client = Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{REDIS_KEY_PREFIX}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()


@dataclass(frozen=True)
class StockCheck:
    item_id: int
    initial: int
    final: int
    ordered: int

    @property
    def exact(self) -> bool:
        return self.final == self.initial - self.ordered

    def to_json(self) -> dict[str, object]:
        return {
            "item_id": self.item_id,
            "initial_stock": self.initial,
            "final_stock": self.final,
            "ordered_quantity": self.ordered,
            "exact": self.exact,
        }


def last_order_id(backends: Backends) -> int:
    async def query() -> int:
        connection = await asyncpg.connect(asyncpg_dsn(backends.database_url), timeout=5)
        try:
            return int(await connection.fetchval("SELECT coalesce(max(id), 0) FROM orders"))
        finally:
            await connection.close()

    return asyncio.run(query())


def check_stock(backends: Backends, item_id: int, initial: int, after_order_id: int) -> StockCheck:
    """Stock left against the quantity of every order placed for the item during the run."""

    async def query() -> StockCheck:
        connection = await asyncpg.connect(asyncpg_dsn(backends.database_url), timeout=5)
        try:
            # One statement, so one snapshot: orders that wrk gave up on may still be
            # committing, and each one moves the stock and the lines together.
            row = await connection.fetchrow(
                "SELECT (SELECT stock FROM items WHERE id = $1) AS final, "
                "(SELECT coalesce(sum(l.quantity), 0) FROM order_lines l "
                "JOIN orders o ON o.id = l.order_id "
                "WHERE l.item_id = $1 AND o.id > $2 AND o.status = 'placed') AS ordered",
                item_id,
                after_order_id,
            )
            final, ordered = row["final"], row["ordered"]
            return StockCheck(item_id, initial, int(final), int(ordered))
        finally:
            await connection.close()

    return asyncio.run(query())
