from typing import Annotated

from fastapi import Depends, Security

from app.core.deps import SessionmakerDep
from app.domains.auth.dependencies import get_principal
from app.domains.auth.schemas import Principal, Scope
from app.domains.dashboard.service import DashboardService

# The dashboard shows orders, so it asks for the scope that reading orders needs.
DashboardReader = Annotated[Principal, Security(get_principal, scopes=[Scope.ORDERS_READ])]


async def get_dashboard_service(sessionmaker: SessionmakerDep) -> DashboardService:
    return DashboardService(sessionmaker)


DashboardServiceDep = Annotated[DashboardService, Depends(get_dashboard_service)]
