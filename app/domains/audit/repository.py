from sqlalchemy import select

from app.core.db.keyset import Slice, SortKey, Window
from app.core.db.repository import Repository
from app.domains.audit.models import AuditEvent
from app.domains.audit.schemas import AuditFilter

NEWEST_FIRST = SortKey(AuditEvent.created_at, AuditEvent.id, descending=True)


class AuditEventRepository(Repository[AuditEvent]):
    model = AuditEvent

    def append(self, event: AuditEvent) -> None:
        # Flushed with the change it describes, when the request's transaction commits.
        self.session.add(event)

    async def list_page(self, filters: AuditFilter, window: Window) -> Slice[AuditEvent]:
        """Newest first; the id breaks ties between events of the same instant."""
        criteria = [
            getattr(AuditEvent, field) == value
            for field, value in filters.model_dump(exclude_none=True).items()
        ]
        statement = select(AuditEvent).where(*criteria)
        return await self.page(NEWEST_FIRST, window, statement)
