"""Live stream slots (app.core.streams): a caller's bound holds across processes sharing one
Redis, a slot comes back when its stream ends or its process dies, and each process counts
its own without Redis."""

import asyncio
import secrets

from redis.asyncio import Redis

from app.core.redis import RedisBreaker
from app.core.streams import StreamSlots
from support.processes import free_port

LIMIT = 2
ALICE, BOB = 1, 2


def slots_on(redis: Redis | None, prefix: str, *, slot_seconds: float = 30.0) -> StreamSlots:
    """One process's slots."""
    return StreamSlots(
        LIMIT,
        redis,
        RedisBreaker("test", 5.0),
        key_prefix=prefix,
        slot_seconds=slot_seconds,
    )


async def test_without_redis_each_caller_holds_the_limit_and_gives_each_slot_back_once() -> None:
    slots = slots_on(None, "unused")
    first, second = await slots.take(ALICE), await slots.take(ALICE)
    assert first is not None
    assert second is not None
    assert await slots.take(ALICE) is None
    assert await slots.take(BOB) is not None
    first()
    first()
    assert await slots.take(ALICE) is not None
    assert await slots.take(ALICE) is None


async def test_processes_sharing_redis_share_each_callers_limit(redis_client: Redis) -> None:
    prefix = f"test:streams:{secrets.token_hex(4)}"
    one, other = slots_on(redis_client, prefix), slots_on(redis_client, prefix)
    try:
        held = await one.take(ALICE)
        assert held is not None
        assert await other.take(ALICE) is not None
        assert await one.take(ALICE) is None
        assert await other.take(ALICE) is None
        assert await other.take(BOB) is not None
        held()
        await one.aclose()  # waits for the removal the release started

        assert await other.take(ALICE) is not None
    finally:
        await one.aclose()
        await other.aclose()


async def test_a_dead_processs_slots_lapse_and_a_live_ones_are_renewed(redis_client: Redis) -> None:
    prefix = f"test:streams:{secrets.token_hex(4)}"
    slot_seconds = 0.3
    living = slots_on(redis_client, prefix, slot_seconds=slot_seconds)
    dying = slots_on(redis_client, prefix, slot_seconds=slot_seconds)
    other = slots_on(redis_client, prefix, slot_seconds=slot_seconds)
    try:
        assert await living.take(ALICE) is not None
        assert await dying.take(ALICE) is not None
        # The process dies: nothing renews or removes its slot.
        assert dying._renewal is not None
        dying._renewal.cancel()
        assert await other.take(ALICE) is None

        await asyncio.sleep(slot_seconds * 3)
        # The dead process's slot has lapsed; the living one's, renewed, still counts.
        assert await other.take(ALICE) is not None
        assert await other.take(ALICE) is None
    finally:
        await living.aclose()
        await other.aclose()


async def test_a_stopping_process_gives_its_slots_back(redis_client: Redis) -> None:
    prefix = f"test:streams:{secrets.token_hex(4)}"
    stopping, other = slots_on(redis_client, prefix), slots_on(redis_client, prefix)
    try:
        assert await stopping.take(ALICE) is not None
        assert await stopping.take(ALICE) is not None
        assert await other.take(ALICE) is None
        await stopping.aclose()
        assert await other.take(ALICE) is not None
    finally:
        await other.aclose()


async def test_while_redis_fails_each_process_counts_its_own() -> None:
    unreachable = Redis.from_url(
        f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.25, socket_connect_timeout=0.25
    )
    slots = slots_on(unreachable, "test:streams")
    try:
        assert await slots.take(ALICE) is not None
        assert await slots.take(ALICE) is not None
        assert await slots.take(ALICE) is None
    finally:
        await slots.aclose()
        await unreachable.aclose()
