"""Idempotency keys of order requests: the stored records, the claim, the fingerprint and
how long each lasts.

A claim must be visible to a concurrent duplicate before the first request finishes, so it
commits in a transaction of its own; the stored response, by contrast, commits with the
order in the request's transaction, so a key is completed if and only if its order exists.
A request that fails releases its key after its rollback, so the client can retry with it.
"""

import hashlib
import json
import uuid
from datetime import timedelta
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db.transactions import after_rollback, independent_transaction
from app.core.errors import raises
from app.domains.orders.exceptions import IdempotencyKeyInFlight, IdempotencyKeyReused
from app.domains.orders.models import IdempotencyStatus
from app.domains.orders.repository import IdempotencyKeyRepository, KeyRecord
from app.domains.orders.schemas import OrderCreate, OrderRead, PlacedOrder

# How long a completed key answers repeats with its stored response.
IDEMPOTENCY_KEY_TTL = timedelta(hours=24)
# How long an in-flight key blocks repeats. A request that dies before it can release its
# key (a crash, a failed commit) leaves it busy this long at most, not for the whole TTL.
IDEMPOTENCY_LEASE = timedelta(seconds=60)
# A claim can meet a key that disappears before it is read (its request failed and released
# it); trying again a couple of times settles it.
CLAIM_ATTEMPTS = 3


def request_fingerprint(data: OrderCreate) -> str:
    """SHA-256 of the request as parsed: key order, spacing and defaults do not matter."""
    canonical = json.dumps(data.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyKeys:
    """The keys of one request: claimed apart, completed with the order, released after a
    rollback."""

    def __init__(
        self,
        session: AsyncSession,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        lease: timedelta = IDEMPOTENCY_LEASE,
    ) -> None:
        self.session = session
        self.sessionmaker = sessionmaker
        self.lease = lease

    @raises(IdempotencyKeyReused, IdempotencyKeyInFlight)
    async def claim(self, user_id: int, key: str, data: OrderCreate) -> str | PlacedOrder:
        """Own the key (its claim id), or the stored answer of the request that owned it.

        The claim is released after the request's rollback if the request fails.
        """
        fingerprint = request_fingerprint(data)
        for _ in range(CLAIM_ATTEMPTS):
            claim_id, record = await self._insert_claim(
                user_id=user_id, key=key, fingerprint=fingerprint, lease=self.lease
            )
            if claim_id is not None:
                after_rollback(self.session, partial(self._release, claim_id))
                return claim_id
            if record is None:
                continue
            if record.fingerprint != fingerprint:
                raise IdempotencyKeyReused
            if (
                record.status != IdempotencyStatus.COMPLETED
                or record.response_status is None
                or record.response_body is None
            ):
                raise IdempotencyKeyInFlight
            return PlacedOrder(
                OrderRead.model_validate(record.response_body),
                status_code=record.response_status,
                replayed=True,
            )
        raise IdempotencyKeyInFlight

    async def _insert_claim(
        self, *, user_id: int, key: str, fingerprint: str, lease: timedelta
    ) -> tuple[str | None, KeyRecord | None]:
        """Insert the key as in flight: (new claim id, None), or (None, the existing record).

        Expired records of this user, the key's included, are removed first, so an expired
        key is reused as if new and a user's keys do not pile up. (None, None) means the
        existing record vanished between the insert and the read: the caller may try again.
        """
        claim_id = uuid.uuid4().hex
        async with independent_transaction(self.sessionmaker) as session:
            keys = IdempotencyKeyRepository(session)
            if await keys.insert_claim(
                claim_id, user_id=user_id, key=key, fingerprint=fingerprint, lease=lease
            ):
                return claim_id, None
            return None, await keys.find(user_id, key)

    @raises(IdempotencyKeyInFlight)
    async def complete(self, claim_id: str, placed: PlacedOrder) -> None:
        """Store the answer with the claim, in the request's transaction.

        A claim that is gone outlived its lease, and another request took the key: this
        one must not also succeed.
        """
        completed = await IdempotencyKeyRepository(self.session).complete(
            claim_id,
            response_status=placed.status_code,
            response_body=placed.order.model_dump(mode="json"),
            ttl=IDEMPOTENCY_KEY_TTL,
        )
        if not completed:
            raise IdempotencyKeyInFlight

    async def _release(self, claim_id: str) -> None:
        """Forget an in-flight claim whose request failed, so the key can be retried."""
        async with independent_transaction(self.sessionmaker) as session:
            await IdempotencyKeyRepository(session).release(claim_id)
