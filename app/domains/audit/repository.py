from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domains.audit.models import AuditEvent
from app.domains.audit.schemas import AuditFilter


class AuditEventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def append(self, event: AuditEvent) -> None:
        # Flushed with the change it describes, when the request's transaction commits.
        self.session.add(event)

    async def list_page(
        self, filters: AuditFilter, *, offset: int, limit: int
    ) -> tuple[list[AuditEvent], int]:
        """Newest first; the id breaks ties between events of the same instant."""
        criteria = [
            getattr(AuditEvent, field) == value
            for field, value in filters.model_dump(exclude_none=True).items()
        ]
        total = await self.session.scalar(
            select(func.count()).select_from(AuditEvent).where(*criteria)
        )
        rows = await self.session.scalars(
            select(AuditEvent)
            .where(*criteria)
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return list(rows), total or 0
