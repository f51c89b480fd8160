"""The caller's sessions (one per password login): which are live, and ending one."""

from typing import Annotated

from fastapi import APIRouter, Path, status

from app.core.deps import PageParamsDep
from app.core.errors import error_responses
from app.core.http.routes import ApiRoute
from app.core.pagination import Page
from app.domains.auth.dependencies import ProfileUser, SessionServiceDep, get_principal
from app.domains.auth.schemas import SessionRead
from app.domains.auth.sessions import SessionService

router = APIRouter(prefix="/users/me/sessions", tags=["sessions"], route_class=ApiRoute)

SessionId = Annotated[
    str, Path(min_length=32, max_length=32, pattern="^[0-9a-f]{32}$", description="the session")
]


@router.get(
    "",
    summary="List your live sessions, newest first; `current` marks this one",
    responses=error_responses(get_principal, SessionService.list_page),
)
async def list_sessions(
    principal: ProfileUser, page: PageParamsDep, sessions: SessionServiceDep
) -> Page[SessionRead]:
    return await sessions.list_page(principal, page)


@router.delete(
    "/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End a session: its access and refresh tokens fail from the next request on",
    responses=error_responses(get_principal, SessionService.revoke),
)
async def revoke_session(
    session_id: SessionId, principal: ProfileUser, sessions: SessionServiceDep
) -> None:
    await sessions.revoke(principal, session_id)
