"""Idempotency keys of order requests: the fingerprint of a request, how long a key answers
repeats, and the purge of the expired ones.

A key is claimed and stored with its answer in the order's own transaction
(repository.writes), so it is completed if and only if its order exists, and a request that
fails leaves nothing behind: the client can retry with the key at once. While one request
holds a key, a repeat is refused as in flight (409, Retry-After) rather than kept waiting.

An expired key is used afresh when a request meets it; the rest are purged in batches by the
job log's dispatchers (`purge_chore`), never by a request.
"""

import hashlib
import json
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db.base import utcnow
from app.core.jobs import Chore
from app.domains.orders.repository import purge_expired_keys
from app.domains.orders.schemas import OrderCreate

# How long a completed key answers repeats with its stored response.
IDEMPOTENCY_KEY_TTL = timedelta(hours=24)
# Keys live a day: purged hourly, the table holds about a day and an hour of them.
PURGE_EVERY_SECONDS = 3600.0


def request_fingerprint(data: OrderCreate) -> str:
    """SHA-256 of the request as parsed: key order, spacing and defaults do not matter."""
    canonical = json.dumps(data.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def purge_chore(sessionmaker: async_sessionmaker[AsyncSession]) -> Chore:
    """The job log's chore that deletes the keys expired by now."""

    async def purge() -> int:
        return await purge_expired_keys(sessionmaker, before=utcnow())

    return Chore("purged expired idempotency keys", PURGE_EVERY_SECONDS, purge)
