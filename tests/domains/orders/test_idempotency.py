"""Expired idempotency keys are deleted by the job log's chore, whoever owns them; live ones
stay and keep answering."""

import uuid
from datetime import timedelta

import httpx
from sqlalchemy import select

from app.core.db.base import utcnow
from app.core.resources import Resources
from app.domains.orders.idempotency import purge_chore
from app.domains.orders.models import IdempotencyKey, IdempotencyStatus
from app.domains.orders.repository import purge_expired_keys
from tests.factories import user


async def store_keys(resources: Resources, user_id: int, **expires_in: timedelta) -> None:
    async with resources.sessionmaker.begin() as session:
        for key, ttl in expires_in.items():
            session.add(
                IdempotencyKey(
                    id=uuid.uuid4().hex,
                    user_id=user_id,
                    key=key,
                    fingerprint="0" * 64,
                    status=IdempotencyStatus.COMPLETED,
                    response_status=201,
                    response_body={"id": 1},
                    expires_at=utcnow() + ttl,
                )
            )


async def stored_keys(resources: Resources) -> set[str]:
    async with resources.sessionmaker() as session:
        return set(await session.scalars(select(IdempotencyKey.key)))


async def test_the_chore_deletes_every_expired_key_and_keeps_the_live_ones(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    alice, bob = await user(client), await user(client)
    await store_keys(resources, alice.id, a1=timedelta(hours=-1), a2=timedelta(hours=1))
    await store_keys(resources, bob.id, b1=timedelta(seconds=-1), b2=timedelta(hours=23))

    assert await purge_chore(resources.sessionmaker).run() == 2

    assert await stored_keys(resources) == {"a2", "b2"}


async def test_the_purge_goes_in_batches(client: httpx.AsyncClient, resources: Resources) -> None:
    buyer = await user(client)
    await store_keys(resources, buyer.id, **{f"k{n}": timedelta(minutes=-n - 1) for n in range(7)})

    removed = await purge_expired_keys(resources.sessionmaker, before=utcnow(), batch_size=3)

    assert removed == 7
    assert await stored_keys(resources) == set()


def test_the_dispatchers_run_the_purge(resources: Resources) -> None:
    chores = [chore.name for chore in resources.outbox.chores]
    assert chores == ["purged expired idempotency keys"]
