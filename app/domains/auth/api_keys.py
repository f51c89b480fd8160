"""Personal access tokens: minting and managing them.

A key is `fsk_` and 54 random url-safe characters (320 bits); only its SHA-256 is stored, so
a key is shown once, when it is created, and authenticated by its hash alone. The prefix
lets people and secret scanners recognise a key, and its first 12 characters name it in
lists.
"""

import logging
import secrets
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db.base import utcnow
from app.core.db.transactions import independent_transaction
from app.core.errors import raises
from app.core.pagination import Page, PageParams, page_of
from app.core.security import fingerprint
from app.domains.audit.schemas import AuditAction
from app.domains.audit.service import AuditTrail
from app.domains.auth.exceptions import (
    ApiKeyLimitReached,
    ApiKeyNotFound,
    PasswordSessionRequired,
    ScopeNotAllowed,
)
from app.domains.auth.models import ApiKey
from app.domains.auth.repository import ApiKeyRepository
from app.domains.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, Principal

logger = logging.getLogger(__name__)

API_KEY_PREFIX = "fsk_"
PREFIX_LENGTH = 12


def mint_api_key() -> str:
    return f"{API_KEY_PREFIX}{secrets.token_urlsafe(40)}"


class ApiKeyService:
    """The caller's own keys. Creating, listing and deleting them needs a password session:
    a leaked key must not be able to mint itself successors or hide its siblings."""

    def __init__(self, session: AsyncSession, *, audit: AuditTrail, most_per_user: int) -> None:
        self.keys = ApiKeyRepository(session)
        self.audit = audit
        self.most_per_user = most_per_user

    @raises(PasswordSessionRequired, ScopeNotAllowed, ApiKeyLimitReached)
    async def create(self, principal: Principal, data: ApiKeyCreate) -> ApiKeyCreated:
        principal.password_session()
        requested = frozenset(scope.value for scope in data.scopes)
        beyond = sorted(requested - principal.scopes)
        if beyond:
            raise ScopeNotAllowed(beyond)
        key = mint_api_key()
        expires_at = (
            utcnow() + timedelta(days=data.expires_in_days)
            if data.expires_in_days is not None
            else None
        )
        api_key = await self.keys.add_within(
            ApiKey(
                user_id=principal.id,
                name=data.name,
                prefix=key[:PREFIX_LENGTH],
                key_hash=fingerprint(key),
                scopes=" ".join(sorted(requested)),
                expires_at=expires_at,
            ),
            self.most_per_user,
        )
        if api_key is None:
            raise ApiKeyLimitReached(self.most_per_user)
        await self.audit.record(
            AuditAction.API_KEY_CREATED,
            actor_id=principal.id,
            target=("api_key", api_key.id),
            details={"name": api_key.name, "scopes": sorted(requested)},
        )
        return ApiKeyCreated(**ApiKeyRead.model_validate(api_key).model_dump(), key=key)

    @raises(PasswordSessionRequired, PageParams.window)
    async def list_page(self, principal: Principal, page: PageParams) -> Page[ApiKeyRead]:
        principal.password_session()
        # The owner is part of the binding: one user's cursor means nothing to another.
        window = page.window("api-keys", {"user_id": principal.id})
        return page_of(ApiKeyRead, await self.keys.list_for_user(principal.id, window), window)

    @raises(PasswordSessionRequired, ApiKeyNotFound)
    async def revoke(self, principal: Principal, key_id: int) -> None:
        principal.password_session()
        if not await self.keys.delete_for_user(key_id, principal.id):
            raise ApiKeyNotFound
        await self.audit.record(
            AuditAction.API_KEY_REVOKED, actor_id=principal.id, target=("api_key", key_id)
        )


async def record_key_use(sessionmaker: async_sessionmaker[AsyncSession], key_id: int) -> None:
    """Note that a key was used, after the response that used it, in a transaction of its
    own: the request neither waits for this write nor shares its fate, and a failure here
    costs only a stale `last_used_at`."""
    try:
        async with independent_transaction(sessionmaker) as session:
            await ApiKeyRepository(session).record_use(key_id)
    except SQLAlchemyError as error:
        logger.warning("could not record the use of API key %s: %s", key_id, error)
