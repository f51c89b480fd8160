"""Real servers failing under the running service: PostgreSQL and Redis stopped and frozen,
the connection pool exhausted. Each outage is measured per request, and the data is checked
afterwards: nothing answered 201 was lost, nothing refused half-happened."""

import asyncio
import signal
import time
from typing import Any

import asyncpg
import httpx

from support.ledger import Ledger, customer, stocked_item
from support.servers import (
    DB_CONNECT_TIMEOUT,
    REDIS_TIMEOUT,
    PostgresServer,
    RedisServer,
    wait_until_ready,
)
from tests.conftest import RUNS_WITH_POSTGRES
from tests.faults.conftest import Service
from tests.waiting import eventually

pytestmark = RUNS_WITH_POSTGRES

# Functional bounds, not benchmarks: the setting plus room for a loaded machine.
DB_BOUND = DB_CONNECT_TIMEOUT + 1.0
REDIS_BOUND = REDIS_TIMEOUT + 0.5


async def timed(
    http: httpx.AsyncClient, method: str, path: str, **kwargs: Any
) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await http.request(method, path, **kwargs)
    return response, time.perf_counter() - started


async def data_requests(
    http: httpx.AsyncClient, ledger: Ledger, headers: dict[str, str], item_id: int
) -> list[tuple[httpx.Response, float]]:
    """One of each kind of data route: a list, an authenticated read, writes."""
    started = time.perf_counter()
    results = [
        await timed(http, "GET", "/api/v1/posts"),
        await timed(http, "GET", "/api/v1/users/me", headers=headers),
        await timed(http, "GET", "/api/v1/orders", headers=headers),
    ]
    for write in (ledger.order(http, headers, item_id), ledger.register(http)):
        started = time.perf_counter()
        response = await write
        results.append((response, time.perf_counter() - started))
    return results


def assert_refused_in_time(results: list[tuple[httpx.Response, float]]) -> None:
    for response, elapsed in results:
        request = f"{response.request.method} {response.request.url.path}"
        assert response.status_code == 503, f"{request}: {response.status_code} {response.text}"
        assert response.headers["content-type"] == "application/problem+json", request
        assert int(response.headers["retry-after"]) > 0, request
        assert elapsed < DB_BOUND, f"{request} took {elapsed:.2f}s"


async def assert_recovers(
    http: httpx.AsyncClient, ledger: Ledger, headers: dict[str, str], item_id: int
) -> None:
    await wait_until_ready(http, seconds=15)
    for response, _elapsed in await data_requests(http, ledger, headers, item_id):
        assert response.status_code in (200, 201), response.text


async def test_postgres_stopped_then_restarted(
    service: Service, postgres: PostgresServer, database_url: str
) -> None:
    ledger = Ledger()
    async with service() as (app, http):
        headers = await customer(http, ledger)
        item_id = await stocked_item(http, ledger, headers)
        workers = app.worker_pids()

        postgres.stop()
        assert_refused_in_time(await data_requests(http, ledger, headers, item_id))
        assert (await http.get("/health")).status_code == 200
        ready, elapsed = await timed(http, "GET", "/health/ready")
        assert ready.status_code == 503
        assert elapsed < DB_BOUND

        postgres.start()
        await assert_recovers(http, ledger, headers, item_id)
        assert app.worker_pids() == workers, "recovered without restarting a worker"
    assert await ledger.problems(database_url) == []


async def test_postgres_frozen_then_thawed(
    service: Service, postgres: PostgresServer, database_url: str
) -> None:
    ledger = Ledger()
    async with service() as (_app, http):
        headers = await customer(http, ledger)
        item_id = await stocked_item(http, ledger, headers)

        postgres.pause()
        try:
            assert_refused_in_time(await data_requests(http, ledger, headers, item_id))
            # Many at once, more than the pool holds: none may queue for a timeout per slot.
            burst = await asyncio.gather(*(timed(http, "GET", "/api/v1/posts") for _ in range(30)))
            assert_refused_in_time(list(burst))
            assert (await http.get("/health")).status_code == 200
            assert (await http.get("/health/ready")).status_code == 503
        finally:
            postgres.resume()
        await assert_recovers(http, ledger, headers, item_id)
    assert await ledger.problems(database_url) == []


async def test_an_exhausted_pool_refuses_fast_and_recovers(
    service: Service, postgres: PostgresServer, database_url: str
) -> None:
    ledger = Ledger()
    pools = {
        "DB_POOL_SIZE": "2",
        "DB_MAX_OVERFLOW": "0",
        "DB_CALL_POOL_SIZE": "2",
        "DB_POOL_TIMEOUT": "0.5",
    }
    async with service(**pools, DB_COMMAND_TIMEOUT="4") as (_app, http):
        headers = await customer(http, ledger)
        item_id = await stocked_item(http, ledger, headers)
        item = f"/api/v1/items/{item_id}"
        # Another client holds the item's row: changes of the item wait on the lock, each
        # holding one of the engine pool's two connections, and orders for it one of the two
        # their calls have.
        holder = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("SELECT stock FROM items WHERE id = $1 FOR UPDATE", item_id)
        try:
            stuck = [asyncio.create_task(ledger.order(http, headers, item_id)) for _ in range(2)]
            edits = [
                asyncio.create_task(
                    http.patch(item, json={"description": f"edit {n}"}, headers=headers)
                )
                for n in range(2)
            ]
            await asyncio.sleep(0.5)
            refused = await asyncio.gather(
                *(timed(http, "GET", "/api/v1/posts") for _ in range(5)),
                *(
                    timed(http, "POST", "/api/v1/orders", json=order, headers=headers)
                    for order in [ledger.order_body(item_id)] * 5
                ),
            )
            for response, elapsed in refused:
                assert response.status_code == 503, response.text
                assert "retry-after" in response.headers
                assert elapsed < 0.5 + 1.0, f"a request waited {elapsed:.2f}s for the pool"
        finally:
            await transaction.rollback()
            await holder.close()
        for order in await asyncio.gather(*stuck):
            assert order.status_code == 201, order.text
        for edit in await asyncio.gather(*edits):
            assert edit.status_code == 200, edit.text
        await assert_recovers(http, ledger, headers, item_id)
    assert await ledger.problems(database_url) == []


async def test_a_statement_past_the_command_timeout_is_a_503_that_changed_nothing(
    service: Service, postgres: PostgresServer, database_url: str
) -> None:
    ledger = Ledger()
    async with service(DB_COMMAND_TIMEOUT="1") as (_app, http):
        headers = await customer(http, ledger)
        item_id = await stocked_item(http, ledger, headers)
        holder = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("SELECT stock FROM items WHERE id = $1 FOR UPDATE", item_id)
        try:
            started = time.perf_counter()
            order = await ledger.order(http, headers, item_id)
            elapsed = time.perf_counter() - started
        finally:
            await transaction.rollback()
            await holder.close()
        assert order.status_code == 503, order.text
        assert "retry-after" in order.headers
        assert elapsed < 1 + 1.0
        await assert_recovers(http, ledger, headers, item_id)
    assert await ledger.problems(database_url) == []


async def test_postgres_killed_while_orders_wait_inside_it(
    service: Service, postgres: PostgresServer, database_url: str
) -> None:
    ledger = Ledger()
    async with service(DB_COMMAND_TIMEOUT="30") as (_app, http):
        headers = await customer(http, ledger)
        item_id = await stocked_item(http, ledger, headers)
        # Another client holds the item's row: each order is inside its one call, its key
        # claimed, waiting for the row, when the server dies.
        holder = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        # This server acknowledges commits before writing them (synchronous_commit=off): what
        # came before the crash is made durable first, so only the orders are in question.
        await holder.execute("CHECKPOINT")
        await holder.execute("BEGIN")
        await holder.execute("SELECT stock FROM items WHERE id = $1 FOR UPDATE", item_id)
        orders = [asyncio.create_task(ledger.order(http, headers, item_id)) for _ in range(4)]

        async def all_waiting() -> bool:
            # Activity is read once per transaction unless the snapshot is dropped.
            await holder.execute("SELECT pg_stat_clear_snapshot()")
            waiting = await holder.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND query LIKE '%place_order_v1%'"
            )
            return bool(waiting == len(orders))

        await eventually(all_waiting, seconds=20)
        postgres.signal_group(signal.SIGKILL)
        postgres.stop()
        for order in await asyncio.gather(*orders):
            assert order.status_code == 503, order.text
        holder.terminate()

        postgres.start()
        await assert_recovers(http, ledger, headers, item_id)
    assert await ledger.problems(database_url) == []


async def redis_load(
    http: httpx.AsyncClient, headers: dict[str, str], item_id: int, seconds: float
) -> list[tuple[httpx.Response, float]]:
    """Cached reads, rate-limited calls and writes that invalidate the cache, for `seconds`."""
    results = []
    deadline = time.monotonic() + seconds
    edits = 0
    while time.monotonic() < deadline:
        edits += 1
        results += [
            await timed(http, "GET", f"/api/v1/items/{item_id}"),
            await timed(http, "GET", "/api/v1/items"),
            await timed(http, "GET", "/api/v1/users/me", headers=headers),
            await timed(
                http,
                "PATCH",
                f"/api/v1/items/{item_id}",
                json={"description": f"edit {edits}"},
                headers=headers,
            ),
        ]
    return results


def assert_unhurt(results: list[tuple[httpx.Response, float]]) -> None:
    for response, elapsed in results:
        request = f"{response.request.method} {response.request.url.path}"
        assert response.status_code == 200, f"{request}: {response.status_code} {response.text}"
        assert elapsed < REDIS_BOUND, f"{request} took {elapsed:.2f}s"


async def assert_degraded(http: httpx.AsyncClient) -> None:
    ready = await http.get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["redis"]["status"] == "degraded"


async def test_redis_stopped_then_restarted(
    service: Service, redis_server: RedisServer, database_url: str
) -> None:
    ledger = Ledger()
    async with service(REDIS_URL=redis_server.url) as (_app, http):
        headers = await customer(http, ledger)
        item_id = await stocked_item(http, ledger, headers)
        assert_unhurt(await redis_load(http, headers, item_id, seconds=0.5))

        redis_server.stop()
        # Longer than the breaker's cool-down, so calls that probe Redis again are measured.
        assert_unhurt(await redis_load(http, headers, item_id, seconds=2.5))
        await assert_degraded(http)

        redis_server.start()
        await wait_until_ready(http)
        assert_unhurt(await redis_load(http, headers, item_id, seconds=1.5))
        ready = await http.get("/health/ready")
        assert ready.json()["checks"]["redis"]["status"] == "ok"
    assert await ledger.problems(database_url) == []


async def test_redis_frozen_then_thawed(
    service: Service, redis_server: RedisServer, database_url: str
) -> None:
    ledger = Ledger()
    async with service(REDIS_URL=redis_server.url) as (_app, http):
        headers = await customer(http, ledger)
        item_id = await stocked_item(http, ledger, headers)
        assert_unhurt(await redis_load(http, headers, item_id, seconds=0.5))

        redis_server.pause()
        try:
            assert_unhurt(await redis_load(http, headers, item_id, seconds=2.5))
            concurrent = await asyncio.gather(
                *(redis_load(http, headers, item_id, seconds=1.5) for _ in range(4))
            )
            for results in concurrent:
                assert_unhurt(results)
            await assert_degraded(http)
        finally:
            redis_server.resume()
        assert_unhurt(await redis_load(http, headers, item_id, seconds=1.5))
    assert await ledger.problems(database_url) == []
