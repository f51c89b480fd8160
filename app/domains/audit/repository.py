from sqlalchemy import ColumnElement, and_, or_, select

from app.core.db.keyset import Slice, SortKey, Window
from app.core.db.repository import Repository
from app.domains.audit.models import AuditEvent
from app.domains.audit.schemas import PERSONAL_DETAILS, AuditFilter

NEWEST_FIRST = SortKey(AuditEvent.created_at, AuditEvent.id, descending=True)


def _about(user_id: int) -> ColumnElement[bool]:
    return or_(
        AuditEvent.actor_id == user_id,
        and_(AuditEvent.target_type == "user", AuditEvent.target_id == user_id),
    )


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

    async def list_about_user(self, user_id: int) -> list[AuditEvent]:
        """Every event the user caused or that is about the user, newest first."""
        statement = select(AuditEvent).where(_about(user_id))
        return list(await self.session.scalars(statement.order_by(*NEWEST_FIRST.ordering())))

    async def forget_personal_details(self, user_id: int) -> None:
        """Drop the email and name from the user's events; their actions and ids stay."""
        for event in await self.list_about_user(user_id):
            if PERSONAL_DETAILS & event.details.keys():
                event.details = {
                    key: value
                    for key, value in event.details.items()
                    if key not in PERSONAL_DETAILS
                }
        await self.session.flush()
