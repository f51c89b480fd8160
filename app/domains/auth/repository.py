from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.db import utcnow
from app.domains.auth.models import AuthSession, RefreshToken
from app.domains.auth.schemas import Principal
from app.domains.users.models import Role, User


class AuthSessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open(self, *, session_id: str, user_id: int, scopes: frozenset[str]) -> AuthSession:
        auth_session = AuthSession(id=session_id, user_id=user_id, scopes=" ".join(sorted(scopes)))
        self.session.add(auth_session)
        await self.session.flush()
        return auth_session

    async def get(self, session_id: str) -> AuthSession | None:
        return await self.session.get(AuthSession, session_id)

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

    async def session_of_token(self, token_hash: str) -> str | None:
        return await self.session.scalar(
            select(RefreshToken.session_id).where(RefreshToken.token_hash == token_hash)
        )

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


_PRINCIPAL_QUERY = (
    select(
        User.id,
        User.email,
        User.full_name,
        User.role,
        User.is_active,
        User.created_at,
        AuthSession.id.label("session_id"),
    )
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(AuthSession.revoked_at.is_(None))
)


async def find_principal(
    connection: AsyncConnection, *, session_id: str, user_id: int, scopes: frozenset[str]
) -> Principal | None:
    """The caller behind a verified access token, if its session is live and user active.

    Runs on every authenticated request, so it is one indexed Core query on a plain
    connection rather than an ORM session and entity load.
    """
    result = await connection.execute(
        _PRINCIPAL_QUERY.where(AuthSession.id == session_id, User.id == user_id)
    )
    row = result.first()
    if row is None or not row.is_active:
        return None
    return Principal(
        id=row.id,
        email=row.email,
        full_name=row.full_name,
        role=Role(row.role),
        is_active=row.is_active,
        created_at=row.created_at,
        session_id=row.session_id,
        scopes=scopes,
    )
