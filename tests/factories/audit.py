"""Audit events read straight from their table, oldest first."""

from typing import Any

from sqlalchemy import select

from app.core.resources import Resources
from app.domains.audit.models import AuditEvent


async def audit_events(resources: Resources, **filters: Any) -> list[AuditEvent]:
    async with resources.sessionmaker() as session:
        statement = select(AuditEvent).filter_by(**filters).order_by(AuditEvent.id)
        return list(await session.scalars(statement))
