"""Reads on a real streaming replica (app.core.db.replicas): served there when it has
replayed what they must see, by the primary when it has not, and never stale.

A private primary and a hot standby copied from it with `pg_basebackup -R` are started once
for the module, on ports of their own; a test may pause the standby's replay, or stop it,
and the next test finds it running and caught up again. Skipped without PostgreSQL's server
binaries.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.core.config import Settings
from app.core.db.replicas import POLL_SECONDS
from support.processes import Unavailable, free_port
from support.servers import PostgresServer, migrate
from tests.conftest import TEST_DATABASE_READ_URL, TEST_REDIS_URL, make_settings, serve
from tests.factories.accounts import Account, log_in, user
from tests.factories.catalog import ITEMS, post_item
from tests.transport import replica_url
from tests.waiting import eventually

MAX_LAG = 1.0
CONNECT_TIMEOUT = 1.0
ADMIN = Account(id=0, email="root@example.com", password="replicated-admin-1")


@dataclass
class Replication:
    primary: PostgresServer
    replica: PostgresServer
    database: str

    def paused(self) -> bool:
        return self.replica.psql("SELECT pg_is_wal_replay_paused()") == "t"

    def pause(self) -> None:
        self.replica.psql("SELECT pg_wal_replay_pause()")

    def resume(self) -> None:
        self.replica.psql("SELECT pg_wal_replay_resume()")

    def caught_up(self) -> bool:
        written = self.primary.psql("SELECT pg_current_wal_insert_lsn()")
        return self.replica.psql(f"SELECT pg_last_wal_replay_lsn() >= '{written}'") == "t"

    def on_primary(self, sql: str) -> str:
        """`sql` on the primary behind the service's back: no fence is raised for it."""
        return self.primary.psql(sql, self.database)

    def rename_behind_the_service(self, item_id: int, name: str) -> None:
        # The test's own values, not input: no injection to fear.
        self.on_primary(f"UPDATE items SET name = '{name}' WHERE id = {item_id:d}")  # noqa: S608

    def name_on_replica(self, item_id: int) -> str:
        sql = f"SELECT name FROM items WHERE id = {item_id:d}"  # noqa: S608
        return self.replica.psql(sql, self.database)


@pytest.fixture(scope="module")
def servers() -> Iterator[Replication]:
    try:
        primary = PostgresServer(free_port())
    except Unavailable as reason:
        pytest.skip(str(reason))
    replica: PostgresServer | None = None
    try:
        primary.start()
        migrate(primary.create_database("replicated"))
        replica = PostgresServer(free_port(), primary=primary)
        replica.start()
        yield Replication(primary, replica, "replicated")
    finally:
        if replica is not None:
            replica.destroy()
        primary.destroy()


@pytest.fixture
async def replication(servers: Replication) -> Replication:
    """The module's servers, the standby running, replaying and caught up."""
    if not servers.replica.running:
        servers.replica.start()
    if servers.paused():
        servers.resume()
    servers.on_primary("TRUNCATE items, posts, users RESTART IDENTITY CASCADE")

    async def caught_up() -> bool:
        return servers.caught_up()

    await eventually(caught_up)
    return servers


def _settings(replication: Replication, tmp_path: Path) -> Settings:
    return make_settings(
        replication.primary.url(replication.database),
        tmp_path / "unused.db",
        database_read_url=replication.replica.url(replication.database),
        read_replica_max_lag_seconds=MAX_LAG,
        db_connect_timeout=CONNECT_TIMEOUT,
        health_check_timeout=CONNECT_TIMEOUT,
        first_admin_email=ADMIN.email,
        first_admin_password=ADMIN.password,
    )


@pytest.fixture
async def http(
    replication: Replication, tmp_path: Path, empty_redis: None
) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(_settings(replication, tmp_path)) as client:
        await _replica_in_use(client)
        yield client


async def _readiness(http: httpx.AsyncClient) -> dict[str, object]:
    response = await http.get("/health/ready")
    assert response.status_code == 200, response.text
    check: dict[str, object] = response.json()["checks"]["read_replica_0"]
    return check


async def _replica_in_use(http: httpx.AsyncClient, seconds: float = 10.0) -> None:
    async def ok() -> bool:
        return (await _readiness(http))["status"] == "ok"

    await eventually(ok, seconds=seconds)


async def _metrics(http: httpx.AsyncClient) -> str:
    return (await http.get(replica_url(http, "/metrics"))).text


async def _item_name(http: httpx.AsyncClient, item_id: int) -> str:
    response = await http.get(f"{ITEMS}/{item_id}")
    assert response.status_code == 200, response.text
    name: str = response.json()["name"]
    return name


async def _wrote(replication: Replication, http: httpx.AsyncClient) -> tuple[Account, int]:
    """A user and an item of theirs, replayed on the standby."""
    owner = await user(http)
    item = await post_item(http, owner, name="original")

    async def replayed() -> bool:
        return replication.caught_up()

    await eventually(replayed)
    # And the service has looked at the standby since.
    await asyncio.sleep(3 * POLL_SECONDS)
    return owner, item["id"]


async def test_a_read_is_served_by_the_replica_once_it_has_replayed(
    replication: Replication, http: httpx.AsyncClient
) -> None:
    _, item_id = await _wrote(replication, http)
    replication.pause()
    # Changed on the primary alone, and no write of the service's raised the fence: the
    # standby's copy is what a read it serves returns.
    replication.rename_behind_the_service(item_id, "primary only")
    assert await _item_name(http, item_id) == "original"


async def test_a_write_is_seen_by_the_next_read_while_the_replica_lags(
    replication: Replication, http: httpx.AsyncClient
) -> None:
    owner, item_id = await _wrote(replication, http)
    replication.pause()
    changed = await http.patch(
        f"{ITEMS}/{item_id}", json={"name": "renamed"}, headers=owner.headers
    )
    assert changed.status_code == 200, changed.text
    assert await _item_name(http, item_id) == "renamed"
    page = await http.get(ITEMS, params={"q": "renamed"})
    assert [item["id"] for item in page.json()["items"]] == [item_id]
    assert replication.name_on_replica(item_id) == "original"

    post = await http.post(
        "/api/v1/posts", json={"title": "Fresh", "body": "Just written"}, headers=owner.headers
    )
    assert post.status_code == 201, post.text
    read = await http.get(f"/api/v1/posts/{post.json()['id']}")
    assert read.status_code == 200, read.text
    newest = await http.get("/api/v1/posts")
    assert [p["id"] for p in newest.json()["items"]] == [post.json()["id"]]


async def test_the_cache_is_not_refilled_from_before_a_write(
    replication: Replication, http: httpx.AsyncClient
) -> None:
    owner, item_id = await _wrote(replication, http)
    assert await _item_name(http, item_id) == "original"
    replication.pause()
    changed = await http.patch(
        f"{ITEMS}/{item_id}", json={"name": "renamed"}, headers=owner.headers
    )
    assert changed.status_code == 200, changed.text
    # Whatever the reads after the write store, none comes from before it.
    for _ in range(3):
        assert await _item_name(http, item_id) == "renamed"
    replication.resume()

    async def replayed() -> bool:
        return replication.caught_up()

    await eventually(replayed)
    # Behind the service's back, so only a stored value can still say "renamed".
    replication.rename_behind_the_service(item_id, "behind")
    assert await _item_name(http, item_id) == "renamed"


async def test_a_lagging_replica_is_skipped_reported_and_used_again(
    replication: Replication, http: httpx.AsyncClient
) -> None:
    _, item_id = await _wrote(replication, http)
    replication.pause()
    replication.rename_behind_the_service(item_id, "newer")

    async def degraded() -> bool:
        return (await _readiness(http))["status"] == "degraded"

    await eventually(degraded, seconds=MAX_LAG + 5)
    check = await _readiness(http)
    assert "behind the primary" in str(check["error"])
    metrics = await _metrics(http)
    assert 'db_replica_up{replica="0"} 1.0' in metrics
    # Skipped: the read goes to the primary, which has the newer row.
    assert await _item_name(http, item_id) == "newer"

    replication.resume()
    await _replica_in_use(http)
    assert 'db_replica_lag_seconds{replica="0"} 0.0' in await _metrics(http)


async def test_a_stopped_replica_costs_reads_nothing_under_traffic(
    replication: Replication, http: httpx.AsyncClient
) -> None:
    _, item_id = await _wrote(replication, http)
    statuses: list[int] = []
    slowest = 0.0
    stop = asyncio.Event()

    async def traffic() -> None:
        nonlocal slowest
        while not stop.is_set():
            started = time.perf_counter()
            # Pages, each a miss with another offset: every one reads the database.
            response = await http.get(ITEMS, params={"offset": len(statuses) % 50})
            slowest = max(slowest, time.perf_counter() - started)
            statuses.append(response.status_code)
            await asyncio.sleep(0.01)

    task = asyncio.create_task(traffic())
    try:
        await asyncio.sleep(0.3)
        # In a thread: the traffic's requests run on this loop meanwhile.
        await asyncio.to_thread(replication.replica.stop)

        async def down() -> bool:
            return (await _readiness(http))["status"] == "degraded"

        await eventually(down, seconds=5)
        if TEST_DATABASE_READ_URL is None:
            # Otherwise the suite's own app, in the same process and metrics registry, keeps
            # reporting its replica 0 up.
            assert 'db_replica_up{replica="0"} 0.0' in await _metrics(http)
        assert await _item_name(http, item_id) == "original"
        await asyncio.sleep(0.3)
        await asyncio.to_thread(replication.replica.start)
        await _replica_in_use(http)
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert statuses
    assert set(statuses) == {200}
    assert slowest < CONNECT_TIMEOUT + 1


@pytest.mark.skipif(TEST_REDIS_URL is None, reason="the fences are shared through Redis")
async def test_a_write_through_one_app_is_seen_through_another(
    replication: Replication, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    owner, item_id = await _wrote(replication, http)
    async with serve(_settings(replication, tmp_path)) as other:
        await _replica_in_use(other)
        assert await _item_name(other, item_id) == "original"
        replication.pause()
        changed = await http.patch(
            f"{ITEMS}/{item_id}", json={"name": "renamed"}, headers=owner.headers
        )
        assert changed.status_code == 200, changed.text
        assert await _item_name(other, item_id) == "renamed"


async def test_the_admin_lists_see_every_write_committed_before_them(
    replication: Replication, http: httpx.AsyncClient
) -> None:
    admin = await log_in(ADMIN, http)
    await _wrote(replication, http)
    replication.pause()
    newcomer = await user(http)
    users = await http.get("/api/v1/users", params={"limit": 100}, headers=admin.headers)
    assert users.status_code == 200, users.text
    assert newcomer.id in [account["id"] for account in users.json()["items"]]
    events = await http.get(
        "/api/v1/audit-events",
        params={"action": "user.registered", "target_id": newcomer.id},
        headers=admin.headers,
    )
    assert events.status_code == 200, events.text
    assert events.json()["total"] == 1
