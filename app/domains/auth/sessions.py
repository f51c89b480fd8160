"""The caller's own sessions: which are live, and ending one.

A session is revoked by its row: every authenticated request reads the session with the
principal in one statement (app.domains.auth.repository.find_principal), so a revocation
holds from the next request on, on every worker and replica.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import raises
from app.core.pagination import Page, PageParams, page_of
from app.domains.audit.schemas import AuditAction
from app.domains.audit.service import AuditTrail
from app.domains.auth.exceptions import PasswordSessionRequired, SessionNotFound
from app.domains.auth.repository import AuthSessionRepository
from app.domains.auth.schemas import Principal, SessionRead


class SessionService:
    """Sessions as their owner sees them; like credentials, they need a password session."""

    def __init__(self, session: AsyncSession, *, audit: AuditTrail) -> None:
        self.sessions = AuthSessionRepository(session)
        self.audit = audit

    @raises(PasswordSessionRequired, PageParams.window)
    async def list_page(self, principal: Principal, page: PageParams) -> Page[SessionRead]:
        current = principal.password_session()
        window = page.window("sessions", {"user_id": principal.id})
        listed = page_of(
            SessionRead, await self.sessions.list_live_for_user(principal.id, window), window
        )
        for session in listed.items:
            session.current = session.id == current
        return listed

    @raises(PasswordSessionRequired, SessionNotFound)
    async def revoke(self, principal: Principal, session_id: str) -> None:
        principal.password_session()
        if not await self.sessions.revoke_for_user(session_id, principal.id):
            raise SessionNotFound
        await self.audit.record(
            AuditAction.AUTH_SESSION_REVOKED,
            actor_id=principal.id,
            target=("user", principal.id),
            details={"session_id": session_id},
        )
