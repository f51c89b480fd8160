"""Live events over server-sent events, read from a real server behind nginx: httpx's
in-process transport would hold a stream until it ended."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from app.core.config import Settings
from app.core.db.base import utcnow
from app.core.jobs import OutboxMessage
from app.core.resources import Resources
from app.main import create_app
from tests.conftest import RUNS_WITH_POSTGRES, TEST_REDIS_URL, variant
from tests.factories.accounts import Account, admin, user
from tests.factories.catalog import create_item
from tests.factories.orders import order_body, place
from tests.transport import NGINX_ADDRESS, Front
from tests.waiting import eventually

EVENTS = "/api/v1/events"
# Generous: nothing here waits this long unless something is broken.
PATIENCE = 10.0


class Stream:
    """The events of one open stream, as an EventSource parses them."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()
        self.comments: list[str] = []

    async def next(self) -> dict[str, str]:
        """The next event; comment lines are kept aside."""
        event: dict[str, str] = {}
        async with asyncio.timeout(PATIENCE):
            async for line in self._lines:
                if not line:
                    if event:
                        return event
                    continue
                if line.startswith(":"):
                    self.comments.append(line)
                    continue
                name, _, value = line.partition(": ")
                event[name] = value
        raise AssertionError(f"the stream ended; last partial event {event}")

    async def next_order_event(self) -> dict[str, Any]:
        event = await self.next()
        while "event" not in event:  # the opening `retry:`
            event = await self.next()
        return event | {"body": json.loads(event["data"])} if "data" in event else event

    async def next_comment(self) -> str:
        async with asyncio.timeout(PATIENCE):
            async for line in self._lines:
                if line.startswith(":"):
                    return line
        raise AssertionError("the stream ended")

    async def until_end(self) -> None:
        async with asyncio.timeout(PATIENCE):
            async for _ in self._lines:
                pass


@asynccontextmanager
async def served(settings: Settings, **overrides: object) -> AsyncIterator[Front]:
    application: FastAPI = create_app(
        variant(settings, trusted_proxies=[f"{NGINX_ADDRESS}/32"], **overrides)
    )
    async with application.router.lifespan_context(application):
        front = Front(application)
        try:
            await front.start()
            yield front
        finally:
            await front.stop()


@asynccontextmanager
async def stream(
    client: httpx.AsyncClient, account: Account, **headers: str
) -> AsyncIterator[Stream]:
    async with client.stream("GET", EVENTS, headers=account.headers | headers) as response:
        assert response.status_code == 200, await response.aread()
        yield Stream(response)


@pytest.fixture
async def front(app: FastAPI, migrated: Settings) -> AsyncIterator[Front]:
    # `app` empties the tables first; this app shares its database.
    async with served(migrated, events_heartbeat_seconds=0.2, events_max_streams_per_user=2) as f:
        yield f


@pytest.fixture
async def http(front: Front) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=front.url, timeout=PATIENCE, trust_env=False) as c:
        yield c


async def place_one(client: httpx.AsyncClient, resources: Resources, account: Account) -> int:
    item = await create_item(resources, account.id)
    response = await place(client, account, order_body((item, 1)))
    assert response.status_code == 201, response.text
    order_id: int = response.json()["id"]
    return order_id


async def test_a_reconnection_replays_what_it_missed_then_goes_on_live(
    http: httpx.AsyncClient, resources: Resources
) -> None:
    alice, bob = await user(http), await user(http)
    async with stream(http, alice) as live:
        assert live.response.headers["content-type"].startswith("text/event-stream")
        assert live.response.headers["cache-control"] == "no-cache"
        first = await place_one(http, resources, alice)
        seen = await live.next_order_event()
    assert seen["event"] == "order.placed"
    assert seen["body"]["data"]["id"] == first
    assert seen["body"]["type"] == "order.placed"

    # Missed while away: two of Alice's orders and one of Bob's, which is never hers.
    missed = [await place_one(http, resources, alice)]
    await place_one(http, resources, bob)
    missed.append(await place_one(http, resources, alice))

    async with stream(http, alice, **{"Last-Event-ID": seen["id"]}) as again:
        replayed = [await again.next_order_event() for _ in missed]
        assert [event["body"]["data"]["id"] for event in replayed] == missed
        ids = [int(seen["id"])] + [int(event["id"]) for event in replayed]
        assert ids == sorted(set(ids))
        await place_one(http, resources, bob)
        latest = await place_one(http, resources, alice)
        after = await again.next_order_event()
    assert after["body"]["data"]["id"] == latest
    assert int(after["id"]) > ids[-1]
    assert all(event["body"]["data"]["user_id"] == alice.id for event in [*replayed, after])


async def test_the_stream_tells_any_proxy_not_to_buffer_it(front: Front) -> None:
    # Straight to the app: nginx acts on X-Accel-Buffering and passes it no further.
    async with httpx.AsyncClient(
        base_url=front.upstream_url, timeout=PATIENCE, trust_env=False
    ) as http:
        alice = await user(http)
        async with stream(http, alice, **{"Accept-Encoding": "gzip"}) as live:
            headers = live.response.headers
            assert headers["x-accel-buffering"] == "no"
            assert headers["cache-control"] == "no-cache"
            assert "content-encoding" not in headers
            assert (await live.next()) == {"retry": "1000"}


async def test_the_query_parameter_replays_as_the_header_does(
    http: httpx.AsyncClient, resources: Resources
) -> None:
    alice = await user(http)
    async with stream(http, alice) as live:
        await place_one(http, resources, alice)
        seen = await live.next_order_event()
    later = await place_one(http, resources, alice)
    async with http.stream(
        "GET", EVENTS, params={"last_event_id": seen["id"]}, headers=alice.headers
    ) as response:
        event = await Stream(response).next_order_event()
    assert event["body"]["data"]["id"] == later


async def test_an_administrator_sees_every_order(
    http: httpx.AsyncClient, resources: Resources
) -> None:
    boss, alice = await admin(http, resources), await user(http)
    async with stream(http, boss) as live:
        order = await place_one(http, resources, alice)
        event = await live.next_order_event()
    assert event["body"]["data"]["id"] == order


@pytest.mark.parametrize("reason", ["unknown", "expired"])
async def test_an_id_past_the_retention_starts_with_a_reset(
    http: httpx.AsyncClient, resources: Resources, reason: str
) -> None:
    alice = await user(http)
    async with stream(http, alice) as live:
        await place_one(http, resources, alice)
        seen = await live.next_order_event()
    last_id = seen["id"]
    if reason == "unknown":
        last_id = str(int(last_id) + 1000)
    else:
        async with resources.sessionmaker.begin() as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == int(last_id))
                .values(created_at=utcnow() - timedelta(hours=25))
            )
    async with stream(http, alice, **{"Last-Event-ID": last_id}) as again:
        reset = await again.next_order_event()
        assert reset["event"] == "reset"
        assert "id" not in reset
        order = await place_one(http, resources, alice)
        event = await again.next_order_event()
    assert event["body"]["data"]["id"] == order


async def test_a_malformed_last_event_id_is_refused(http: httpx.AsyncClient) -> None:
    alice = await user(http)
    response = await http.get(EVENTS, headers=alice.headers | {"Last-Event-ID": "evt_1"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_streams_need_a_caller(http: httpx.AsyncClient) -> None:
    response = await http.get(EVENTS)
    assert response.status_code == 401


async def test_idle_streams_send_heartbeats(http: httpx.AsyncClient) -> None:
    alice = await user(http)
    async with stream(http, alice) as live:
        assert await live.next_comment() == ": heartbeat"
        assert await live.next_comment() == ": heartbeat"


async def test_a_user_holds_a_bounded_number_of_streams_that_admission_never_counts(
    resources: Resources, app: FastAPI, migrated: Settings
) -> None:
    async with (
        served(migrated, events_max_streams_per_user=2, max_concurrent_requests=1) as front,
        httpx.AsyncClient(base_url=front.url, timeout=PATIENCE, trust_env=False) as http,
    ):
        alice, bob = await user(http), await user(http)
        async with stream(http, alice), stream(http, alice):
            refused = await http.get(EVENTS, headers=alice.headers)
            assert refused.status_code == 429
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["type"] == "urn:problem-type:too-many-streams"
            assert "retry-after" in refused.headers
            # Someone else's limit is their own, and other requests still run at once.
            async with stream(http, bob):
                assert (await http.get("/api/v1/users/me", headers=bob.headers)).is_success
        async with stream(http, alice):
            pass


@pytest.mark.skipif(TEST_REDIS_URL is None, reason="the count is shared through Redis")
async def test_a_users_streams_are_counted_across_replicas(
    app: FastAPI, migrated: Settings
) -> None:
    async with (
        served(migrated, events_max_streams_per_user=2) as first,
        served(migrated, events_max_streams_per_user=2) as second,
        httpx.AsyncClient(base_url=first.url, timeout=PATIENCE, trust_env=False) as one,
        httpx.AsyncClient(base_url=second.url, timeout=PATIENCE, trust_env=False) as other,
    ):
        alice = await user(one)
        async with stream(one, alice), stream(other, alice):
            for http in (one, other):
                refused = await http.get(EVENTS, headers=alice.headers)
                assert refused.status_code == 429
                assert refused.json()["type"] == "urn:problem-type:too-many-streams"

        # Both ended: their slots come back as each server sees its client leave, whichever
        # replica asks next.
        async def two_open_on_the_other() -> bool:
            async with (
                other.stream("GET", EVENTS, headers=alice.headers) as first_again,
                other.stream("GET", EVENTS, headers=alice.headers) as second_again,
            ):
                return first_again.status_code == second_again.status_code == 200

        await eventually(two_open_on_the_other, seconds=PATIENCE)


async def test_a_graceful_stop_ends_open_streams(app: FastAPI, migrated: Settings) -> None:
    async with (
        served(migrated) as front,
        httpx.AsyncClient(base_url=front.upstream_url, timeout=PATIENCE, trust_env=False) as http,
    ):
        alice = await user(http)
        async with stream(http, alice) as live:
            await live.next()
            stopping = asyncio.create_task(front.stop())
            await live.until_end()
            async with asyncio.timeout(PATIENCE):
                await stopping


@RUNS_WITH_POSTGRES
async def test_an_event_committed_on_another_replica_arrives_without_waiting_for_a_poll(
    app: FastAPI, migrated: Settings, resources: Resources
) -> None:
    # No heartbeat, so no fallback read, within the test: only the NOTIFY can bring it.
    async with (
        served(migrated, events_heartbeat_seconds=300) as first,
        served(migrated) as second,
        httpx.AsyncClient(base_url=first.url, timeout=PATIENCE, trust_env=False) as one,
        httpx.AsyncClient(base_url=second.url, timeout=PATIENCE, trust_env=False) as other,
    ):
        alice = await user(one)
        async with stream(one, alice) as live:
            order = await place_one(other, resources, alice)
            event = await live.next_order_event()
    assert event["body"]["data"]["id"] == order


async def test_a_reconnection_to_another_replica_replays_what_it_missed(
    app: FastAPI, migrated: Settings, resources: Resources
) -> None:
    # A load balancer may send the reconnection anywhere: the ids are the durable log's, so
    # any replica replays from them.
    async with (
        served(migrated) as first,
        served(migrated) as second,
        httpx.AsyncClient(base_url=first.url, timeout=PATIENCE, trust_env=False) as one,
        httpx.AsyncClient(base_url=second.url, timeout=PATIENCE, trust_env=False) as other,
    ):
        alice = await user(one)
        async with stream(one, alice) as live:
            await place_one(one, resources, alice)
            seen = await live.next_order_event()
        missed = [await place_one(one, resources, alice), await place_one(other, resources, alice)]
        async with stream(other, alice, **{"Last-Event-ID": seen["id"]}) as again:
            replayed = [await again.next_order_event() for _ in missed]
    assert [event["body"]["data"]["id"] for event in replayed] == missed
    ids = [int(seen["id"])] + [int(event["id"]) for event in replayed]
    assert ids == sorted(set(ids))
