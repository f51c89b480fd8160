from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, bindparam, delete, func, or_, select, update

from app.core.db.base import utcnow
from app.core.db.keyset import Slice, SortKey, Window
from app.core.db.reads import Reads, Row
from app.core.db.repository import Repository
from app.domains.auth.models import ApiKey, AuthSession, RefreshToken
from app.domains.auth.schemas import ROLE_SCOPES, Principal
from app.domains.users.models import User
from app.domains.users.repository import PUBLIC_COLUMNS
from app.domains.users.schemas import UserRead

# How stale `last_used_at` may get: at most one write per key and minute, not per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _live_sessions(user_id: int) -> Select[AuthSession]:
    """The user's sessions that can still be used: not revoked, with a refresh token
    neither spent nor expired."""
    refreshable = (
        select(RefreshToken.id)
        .where(
            RefreshToken.session_id == AuthSession.id,
            RefreshToken.spent_at.is_(None),
            RefreshToken.expires_at > utcnow(),
        )
        .exists()
    )
    return select(AuthSession).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None), refreshable
    )


NEWEST_SESSIONS_FIRST = SortKey(AuthSession.created_at, AuthSession.id, descending=True)


class AuthSessionRepository(Repository[AuthSession]):
    model = AuthSession

    async def open(
        self,
        *,
        session_id: str,
        user_id: int,
        scopes: frozenset[str],
        ip: str | None,
        user_agent: str | None,
    ) -> AuthSession:
        now = utcnow()
        auth_session = AuthSession(
            id=session_id,
            user_id=user_id,
            scopes=" ".join(sorted(scopes)),
            created_at=now,
            last_used_at=now,
            ip=ip,
            user_agent=user_agent,
        )
        self.session.add(auth_session)
        await self.session.flush()
        return auth_session

    async def mark_used(self, session_id: str) -> None:
        """Note a refresh: the write the refresh makes anyway, so requests need none."""
        await self.session.execute(
            update(AuthSession).where(AuthSession.id == session_id).values(last_used_at=utcnow())
        )

    async def list_live_for_user(self, user_id: int, window: Window) -> Slice[AuthSession]:
        """The user's live sessions, newest first."""
        return await self.page(NEWEST_SESSIONS_FIRST, window, _live_sessions(user_id))

    async def all_live_for_user(self, user_id: int) -> list[AuthSession]:
        statement = _live_sessions(user_id).order_by(*NEWEST_SESSIONS_FIRST.ordering())
        return list(await self.session.scalars(statement))

    async def revoke_for_user(self, session_id: str, user_id: int) -> bool:
        """Revoke one of the user's live sessions; False when the user has none with this id."""
        result = await self.session.execute(
            update(AuthSession)
            .where(
                AuthSession.id == session_id,
                AuthSession.user_id == user_id,
                AuthSession.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow())
            .returning(AuthSession.id)
        )
        return result.first() is not None

    async def add_refresh_token(
        self, *, session_id: str, token_hash: str, expires_at: datetime
    ) -> None:
        self.session.add(
            RefreshToken(session_id=session_id, token_hash=token_hash, expires_at=expires_at)
        )
        await self.session.flush()

    async def spend_refresh_token(self, token_hash: str) -> str | None:
        """Mark a live token spent and return its session id, in one atomic statement.

        Of two concurrent refreshes with the same token, exactly one sees the row still
        unspent; the other gets nothing back.
        """
        now = utcnow()
        result = await self.session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.token_hash == token_hash,
                RefreshToken.spent_at.is_(None),
                RefreshToken.expires_at > now,
            )
            .values(spent_at=now)
            .returning(RefreshToken.session_id)
        )
        return result.scalar_one_or_none()

    async def owner_of_token(self, token_hash: str) -> tuple[str, int] | None:
        """The session and user a refresh token was issued to, spent or not."""
        row = (
            await self.session.execute(
                select(AuthSession.id, AuthSession.user_id)
                .join(RefreshToken, RefreshToken.session_id == AuthSession.id)
                .where(RefreshToken.token_hash == token_hash)
            )
        ).first()
        return (row.id, row.user_id) if row is not None else None

    async def revoke(self, session_id: str) -> None:
        await self.session.execute(
            update(AuthSession)
            .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )

    async def revoke_all_for_user(self, user_id: int, *, keep: str | None = None) -> None:
        statement = update(AuthSession).where(
            AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
        )
        if keep is not None:
            statement = statement.where(AuthSession.id != keep)
        await self.session.execute(statement.values(revoked_at=utcnow()))


NEWEST_KEYS_FIRST = SortKey(ApiKey.created_at, ApiKey.id, descending=True)


class ApiKeyRepository(Repository[ApiKey]):
    model = ApiKey

    async def record_use(self, key_id: int) -> None:
        """Set `last_used_at` to now, unless it is already within `LAST_USED_RESOLUTION`.

        Conditional, so of many concurrent requests with one key only the first writes.
        """
        now = utcnow()
        await self.session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == key_id,
                or_(
                    ApiKey.last_used_at.is_(None),
                    ApiKey.last_used_at <= now - LAST_USED_RESOLUTION,
                ),
            )
            .values(last_used_at=now)
        )

    async def add_within(self, api_key: ApiKey, most: int) -> ApiKey | None:
        """Add the key unless its owner would then hold more than `most` live keys (None
        then, and nothing added). Exact under concurrency: PostgreSQL serializes one owner's
        additions on the owner's row, SQLite on the write the insert takes before the count."""
        await self.session.execute(
            select(User.id).where(User.id == api_key.user_id).with_for_update()
        )
        added = await self.add(api_key)
        live = await self.session.scalar(
            select(func.count())
            .select_from(ApiKey)
            .where(
                ApiKey.user_id == api_key.user_id,
                or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > utcnow()),
            )
        )
        if (live or 0) <= most:
            return added
        await self.delete(added)
        return None

    async def list_for_user(self, user_id: int, window: Window) -> Slice[ApiKey]:
        """Newest first."""
        statement = select(ApiKey).where(ApiKey.user_id == user_id)
        return await self.page(NEWEST_KEYS_FIRST, window, statement)

    async def delete_all_for_user(self, user_id: int) -> list[int]:
        """Delete every key of the user; the ids of those deleted."""
        result = await self.session.execute(
            delete(ApiKey).where(ApiKey.user_id == user_id).returning(ApiKey.id)
        )
        return sorted(result.scalars())

    async def delete_for_user(self, key_id: int, user_id: int) -> bool:
        """Delete the user's key; False when the user has no key with this id."""
        result = await self.session.execute(
            delete(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.user_id == user_id)
            .returning(ApiKey.id)
        )
        return result.first() is not None


# Built once with bound parameters: every authenticated request runs one of these, and
# building and hashing a new statement each time would cost more than running it.
_PRINCIPAL_QUERY = (
    select(*PUBLIC_COLUMNS, AuthSession.id.label("session_id"))
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(
        AuthSession.revoked_at.is_(None),
        AuthSession.id == bindparam("session_id"),
        User.id == bindparam("user_id"),
    )
)
_KEY_PRINCIPAL_QUERY = (
    select(
        *PUBLIC_COLUMNS,
        ApiKey.id.label("api_key_id"),
        ApiKey.scopes.label("key_scopes"),
        ApiKey.expires_at,
        ApiKey.last_used_at,
    )
    .join(ApiKey, ApiKey.user_id == User.id)
    .where(ApiKey.key_hash == bindparam("key_hash"))
)


def _principal(
    row: Row,
    *,
    scopes: frozenset[str],
    session_id: str | None = None,
    api_key_id: int | None = None,
) -> Principal:
    public = {field: row[field] for field in UserRead.model_fields}
    return Principal(
        **public,
        scopes=scopes,
        session_id=session_id,
        api_key_id=api_key_id,
    )


async def find_principal(
    reads: Reads, *, session_id: str, user_id: int, scopes: frozenset[str]
) -> Principal | None:
    """The caller behind a verified access token, if its session is live and user active.

    Runs on every authenticated request, so it is one indexed statement read at the driver's
    cost (app.core.db.reads), not an ORM session and entity load.
    """
    row = await reads.one(_PRINCIPAL_QUERY, session_id=session_id, user_id=user_id)
    if row is None or not row["is_active"]:
        return None
    return _principal(row, session_id=row["session_id"], scopes=scopes)


@dataclass(frozen=True, slots=True)
class KeyPrincipal:
    principal: Principal
    key_id: int
    # `last_used_at` is older than its resolution: the request should record this use.
    stale_last_use: bool


async def find_key_principal(reads: Reads, key_hash: str) -> KeyPrincipal | None:
    """The caller behind an API key, if the key exists, has not expired and its user is
    active; in one indexed query, like `find_principal`.

    The key acts with its scopes within what the user's role allows now, so a demoted
    administrator's key loses the administrator's scopes on the next request.
    """
    row = await reads.one(_KEY_PRINCIPAL_QUERY, key_hash=key_hash)
    now = utcnow()
    if row is None or not row["is_active"]:
        return None
    expires_at, key_id = row["expires_at"], row["api_key_id"]
    if expires_at is not None and expires_at <= now:
        return None
    scopes = frozenset(row["key_scopes"].split()) & ROLE_SCOPES[row["role"]]
    principal = _principal(row, api_key_id=key_id, scopes=scopes)
    return KeyPrincipal(principal, key_id, stale_last_use=_stale(row["last_used_at"], now))


def _stale(last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or last_used_at <= now - LAST_USED_RESOLUTION
