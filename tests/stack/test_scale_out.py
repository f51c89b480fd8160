"""What must hold across replicas: limits, revocations, invalidations, stock, idempotency,
client addresses and graceful stops. Requests go through nginx, or to each replica directly
where the test needs to know which one answers."""

import asyncio
import itertools
import signal
import time
import uuid

import httpx
from redis.asyncio import Redis

from support.stack import Stack
from tests.conftest import RUNS_WITH_POSTGRES
from tests.stack.conftest import LOGIN_LIMIT, PASSWORD

pytestmark = RUNS_WITH_POSTGRES

ADDRESS = {"street": "1 Main St", "city": "Springfield", "country": "US"}
_users = itertools.count(1)


async def register(client: httpx.AsyncClient) -> str:
    email = f"scale{next(_users)}-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "full_name": "Scale Tester", "password": PASSWORD}
    response = await client.post("/api/v1/users", json=body)
    assert response.status_code == 201, response.text
    return email


async def log_in(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/token", data={"username": email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def create_item(client: httpx.AsyncClient, headers: dict[str, str], stock: int) -> int:
    body = {"name": "Widget", "description": "", "price": "5.00", "stock": stock}
    response = await client.post("/api/v1/items", json=body, headers=headers)
    assert response.status_code == 201, response.text
    item_id: int = response.json()["id"]
    return item_id


def order_body(item_id: int, quantity: int = 1) -> dict[str, object]:
    return {
        "lines": [{"item_id": item_id, "quantity": quantity}],
        "shipping": "standard",
        "address": ADDRESS,
    }


async def test_the_login_limit_holds_once_across_replicas_and_workers(
    nginx: httpx.AsyncClient, replicas: list[httpx.AsyncClient]
) -> None:
    email = await register(nginx)
    # Alternating replicas, each with two workers: a limit counted per process would let
    # four times as many through.
    attempts = [
        await replicas[attempt % 2].post(
            "/api/v1/auth/token", data={"username": email, "password": "wrong-password-1"}
        )
        for attempt in range(LOGIN_LIMIT * 2)
    ]
    statuses = [response.status_code for response in attempts]
    assert statuses == [401] * LOGIN_LIMIT + [429] * LOGIN_LIMIT


async def test_a_forged_x_forwarded_for_cannot_reset_a_per_ip_limit(
    nginx: httpx.AsyncClient,
) -> None:
    email = await register(nginx)
    statuses = []
    for attempt in range(LOGIN_LIMIT + 3):
        response = await nginx.post(
            "/api/v1/auth/token",
            data={"username": email, "password": "wrong-password-1"},
            # A new address each time: were it believed, each would get a fresh allowance.
            headers={"X-Forwarded-For": f"198.51.100.{attempt + 1}"},
        )
        statuses.append(response.status_code)
    assert statuses == [401] * LOGIN_LIMIT + [429] * 3


async def test_logout_through_one_replica_revokes_the_token_on_the_other(
    nginx: httpx.AsyncClient, replicas: list[httpx.AsyncClient]
) -> None:
    first, second = replicas
    headers = await log_in(first, await register(nginx))
    assert (await second.get("/api/v1/users/me", headers=headers)).status_code == 200
    assert (await first.post("/api/v1/auth/logout", headers=headers)).status_code == 204
    assert (await second.get("/api/v1/users/me", headers=headers)).status_code == 401


async def test_an_update_through_one_replica_is_read_through_the_other(
    nginx: httpx.AsyncClient, replicas: list[httpx.AsyncClient]
) -> None:
    first, second = replicas
    headers = await log_in(nginx, await register(nginx))
    item_id = await create_item(nginx, headers, stock=3)
    # Both replicas cache the item (and the shared cache holds it) before the change.
    before = [await replica.get(f"/api/v1/items/{item_id}") for replica in replicas]
    assert {response.json()["name"] for response in before} == {"Widget"}
    etag = before[1].headers["etag"]
    update = await first.patch(f"/api/v1/items/{item_id}", json={"name": "Gadget"}, headers=headers)
    assert update.status_code == 200
    after = await second.get(f"/api/v1/items/{item_id}")
    assert after.json()["name"] == "Gadget"
    assert after.headers["etag"] != etag
    assert (
        await second.get(f"/api/v1/items/{item_id}", headers={"If-None-Match": etag})
    ).status_code == 200


async def test_fifty_concurrent_orders_on_ten_units_across_replicas_sell_ten(
    nginx: httpx.AsyncClient, replicas: list[httpx.AsyncClient]
) -> None:
    buyers = [await log_in(nginx, await register(nginx)) for _ in range(5)]
    item_id = await create_item(nginx, buyers[0], stock=10)
    responses = await asyncio.gather(
        *(
            replicas[index % 2].post(
                "/api/v1/orders", json=order_body(item_id), headers=buyers[index % 5]
            )
            for index in range(50)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * 10 + [409] * 40
    assert (await nginx.get(f"/api/v1/items/{item_id}")).json()["stock"] == 0


async def test_an_idempotency_key_replayed_on_the_other_replica_returns_the_same_order(
    nginx: httpx.AsyncClient, replicas: list[httpx.AsyncClient]
) -> None:
    first, second = replicas
    headers = await log_in(nginx, await register(nginx))
    item_id = await create_item(nginx, headers, stock=5)
    keyed = headers | {"Idempotency-Key": uuid.uuid4().hex}
    placed = await first.post("/api/v1/orders", json=order_body(item_id, 2), headers=keyed)
    replayed = await second.post("/api/v1/orders", json=order_body(item_id, 2), headers=keyed)
    assert placed.status_code == replayed.status_code == 201
    assert replayed.json() == placed.json()
    orders = await second.get("/api/v1/orders", headers=headers)
    assert orders.json()["total"] == 1
    assert (await nginx.get(f"/api/v1/items/{item_id}")).json()["stock"] == 3


async def test_metrics_are_scraped_from_each_process_never_through_nginx(
    stack: Stack, nginx: httpx.AsyncClient, replicas: list[httpx.AsyncClient]
) -> None:
    assert (await nginx.get("/metrics")).status_code == 404
    for replica in replicas:
        assert "http_requests_total{" in (await replica.get("/metrics")).text
    # Registration queues a welcome email; the worker delivers it and counts it.
    await register(nginx)
    worker = f"http://127.0.0.1:{stack.ports['worker-metrics']}/metrics"
    async with httpx.AsyncClient() as scraper:
        for _ in range(100):
            if 'outbox_messages_delivered_total{topic="email"}' in (await scraper.get(worker)).text:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the worker's metrics never counted a delivered email")


async def test_caches_and_limits_live_across_the_clusters_nodes_without_an_error(
    stack: Stack, nginx: httpx.AsyncClient
) -> None:
    headers = await log_in(nginx, await register(nginx))
    for _ in range(6):
        item_id = await create_item(nginx, headers, stock=1)
        await nginx.get(f"/api/v1/items/{item_id}")
    await nginx.get("/api/v1/items")
    per_node = []
    for node in range(1, 4):
        # Each master on its own, not through the cluster client: which node holds what.
        async with Redis(port=stack.ports[f"redis-{node}"], decode_responses=True) as master:
            per_node.append([key async for key in master.scan_iter()])
    assert sum(1 for keys in per_node if keys) >= 2, per_node
    everything = [key for keys in per_node for key in keys]
    assert any(key.startswith("app:cache:item:") for key in everything)
    assert any(key.startswith("app:ratelimit:") for key in everything)
    for name in ("api-1", "api-2", "worker"):
        log = next((stack.root / name).glob("*.log")).read_text()
        # A cluster error (CROSSSLOT, MOVED left unhandled) would open the breaker and log it.
        assert "Redis failed" not in log, name


async def test_sigterm_to_a_replica_lets_its_requests_finish_while_nginx_serves_on(
    stack: Stack, nginx: httpx.AsyncClient
) -> None:
    # Last in the package: the stack keeps one replica from here on.
    statuses: list[int] = []
    stopping = time.monotonic() + 0.5
    finish = stopping + 3.0

    async def read_continuously() -> None:
        while time.monotonic() < finish:
            statuses.append((await nginx.get("/api/v1/items")).status_code)

    readers = [asyncio.create_task(read_continuously()) for _ in range(16)]
    await asyncio.sleep(stopping - time.monotonic())
    replica = stack.processes["api-1"]
    assert replica.popen is not None
    replica.popen.send_signal(signal.SIGTERM)
    await asyncio.gather(*readers)
    assert await asyncio.to_thread(replica.popen.wait, 30) == 0
    assert set(statuses) == {200}, sorted(set(statuses))
    assert len(statuses) > 100
