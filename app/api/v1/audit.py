"""The audit log, for administrators: who changed what, when and from where."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.core.deps import PageParamsDep
from app.core.errors import error_responses
from app.core.http.routes import ApiRoute
from app.core.pagination import Page
from app.domains.audit.dependencies import AuditServiceDep
from app.domains.audit.schemas import AuditEventRead, AuditFilter
from app.domains.audit.service import AuditService
from app.domains.auth.dependencies import AdminUser, get_admin

router = APIRouter(prefix="/audit-events", tags=["audit"], route_class=ApiRoute)


@router.get(
    "",
    summary="List audit events, newest first (administrators)",
    responses=error_responses(get_admin, AuditService.list_page),
)
async def list_audit_events(
    _: AdminUser,
    filters: Annotated[AuditFilter, Query()],
    page: PageParamsDep,
    audit: AuditServiceDep,
) -> Page[AuditEventRead]:
    return await audit.list_page(filters, page)
