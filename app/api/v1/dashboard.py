"""The caller's dashboard: order stats, newest orders and newest posts in one read."""

from fastapi import APIRouter

from app.core.errors import error_responses
from app.core.http.routes import ApiRoute
from app.domains.auth.dependencies import get_principal
from app.domains.dashboard.dependencies import DashboardReader, DashboardServiceDep
from app.domains.dashboard.schemas import Dashboard

router = APIRouter(prefix="/users/me/dashboard", tags=["users"], route_class=ApiRoute)


@router.get(
    "",
    summary="Your order stats, newest orders and newest posts",
    responses=error_responses(get_principal),
)
async def read_dashboard(principal: DashboardReader, dashboard: DashboardServiceDep) -> Dashboard:
    return await dashboard.build(principal)
