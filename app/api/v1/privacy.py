"""Your account, your data: the export of everything held about you, and erasure."""

from fastapi import APIRouter, Depends, Response, status

from app.core.errors import error_responses
from app.core.http.limits import RateLimit
from app.core.http.routes import ApiRoute
from app.domains.auth.dependencies import ProfileUser, get_principal, profile_user_key
from app.domains.auth.schemas import AccountDeletion
from app.domains.privacy.dependencies import PrivacyServiceDep
from app.domains.privacy.schemas import AccountExport
from app.domains.privacy.service import PrivacyService

router = APIRouter(prefix="/users/me", tags=["users"], route_class=ApiRoute)


@router.get(
    "/export",
    summary="Download everything held about you as one JSON file",
    dependencies=[
        Depends(RateLimit(lambda s: s.rate_limit_export, scope="export", key=profile_user_key))
    ],
    responses=error_responses(get_principal, PrivacyService.export),
)
async def export_account(
    principal: ProfileUser, privacy: PrivacyServiceDep, response: Response
) -> AccountExport:
    response.headers["Content-Disposition"] = (
        f'attachment; filename="account-{principal.id}-export.json"'
    )
    return await privacy.export(principal)


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Erase your account, with your password",
    description="Your email and name are gone everywhere, your sessions and API keys stop "
    "working, your posts are deleted; your orders and items stay as business records. The "
    "last active administrator cannot leave.",
    responses=error_responses(get_principal, PrivacyService.erase),
)
async def erase_account(
    deletion: AccountDeletion, principal: ProfileUser, privacy: PrivacyServiceDep
) -> None:
    await privacy.erase(principal, deletion)
