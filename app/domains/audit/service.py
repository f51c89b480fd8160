from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db.replicas import Replicas
from app.core.db.transactions import after_rollback, independent_transaction
from app.core.errors import raises
from app.core.pagination import Page, PageParams, page_of
from app.domains.audit.models import AuditEvent
from app.domains.audit.repository import AuditEventRepository
from app.domains.audit.schemas import (
    AuditAction,
    AuditEventRead,
    AuditFilter,
    AuditOrigin,
    Target,
)


class AuditTrail:
    """Records what happened, who did it and from where, in the request's transaction.

    Built once per request (the request id and client address are that request's), and
    handed to every service that changes something worth auditing. Callers pass ids and
    names only: a password, token or key never belongs in `details`.
    """

    def __init__(
        self,
        session: AsyncSession,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        request_id: str | None = None,
        ip: str | None = None,
    ) -> None:
        self.session = session
        self.sessionmaker = sessionmaker
        origin = AuditOrigin.of(request_id, ip)
        self.request_id = origin.request_id
        self.ip = origin.ip

    async def record(
        self,
        action: AuditAction,
        *,
        actor_id: int | None,
        target: Target | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Append an event that commits, or rolls back, with the change it describes."""
        AuditEventRepository(self.session).append(
            self._event(action, actor_id=actor_id, target=target, details=details)
        )

    async def record_despite_failure(
        self,
        action: AuditAction,
        *,
        actor_id: int | None,
        target: Target | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Append an event about a request that is about to fail (a refused login): the
        failure rolls the request back, so the event is written on its own afterwards."""
        event = self._event(action, actor_id=actor_id, target=target, details=details)

        async def write() -> None:
            async with independent_transaction(self.sessionmaker) as session:
                AuditEventRepository(session).append(event)

        after_rollback(self.session, write)

    def _event(
        self,
        action: AuditAction,
        *,
        actor_id: int | None,
        target: Target | None,
        details: Mapping[str, Any] | None,
    ) -> AuditEvent:
        target_type, target_id = target if target is not None else (None, None)
        return AuditEvent(
            action=action,
            actor_id=actor_id,
            target_type=target_type,
            target_id=target_id,
            request_id=self.request_id,
            ip=self.ip,
            details=dict(details or {}),
        )


class AuditService:
    """The administrators' view of the log; nothing here changes an event."""

    def __init__(self, replicas: Replicas) -> None:
        self.replicas = replicas

    @raises(PageParams.window)
    async def list_page(self, filters: AuditFilter, page: PageParams) -> Page[AuditEventRead]:
        """A page a read replica may serve, once it has every event committed before now."""
        window = page.window("audit-events", filters)
        rows = await self.replicas.run_current(
            lambda session: AuditEventRepository(session).list_page(filters, window)
        )
        return page_of(AuditEventRead, rows, window)
