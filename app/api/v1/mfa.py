"""Two-factor login for the caller: enrol an authenticator app, confirm it, turn it off."""

from fastapi import APIRouter, Depends, status

from app.core.errors import error_responses
from app.core.http.limits import RateLimit
from app.core.http.routes import ApiRoute
from app.domains.auth.dependencies import (
    MfaServiceDep,
    ProfileUser,
    get_principal,
    profile_user_key,
)
from app.domains.auth.mfa import MfaService
from app.domains.auth.schemas import BackupCodes, MfaCodeBody, TotpEnrolment

router = APIRouter(prefix="/users/me/mfa", tags=["mfa"], route_class=ApiRoute)

# Guessing codes for a signed-in account is bounded per account.
_CODE_LIMIT = [
    Depends(RateLimit(lambda s: s.rate_limit_mfa, scope="mfa-code", key=profile_user_key))
]


@router.post(
    "/totp",
    status_code=status.HTTP_201_CREATED,
    summary="Start two-factor login: a TOTP secret for your authenticator app",
    description="Not active until confirmed with a code from the app. The secret is shown "
    "only here.",
    responses=error_responses(get_principal, MfaService.enrol),
)
async def enrol_totp(principal: ProfileUser, mfa: MfaServiceDep) -> TotpEnrolment:
    return await mfa.enrol(principal)


@router.post(
    "/totp/confirm",
    summary="Turn two-factor login on with a code from the app; returns ten backup codes",
    dependencies=_CODE_LIMIT,
    responses=error_responses(get_principal, MfaService.confirm),
)
async def confirm_totp(
    body: MfaCodeBody, principal: ProfileUser, mfa: MfaServiceDep
) -> BackupCodes:
    return await mfa.confirm(principal, body.code)


@router.delete(
    "/totp",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Turn two-factor login off with a current code or a backup code",
    dependencies=_CODE_LIMIT,
    responses=error_responses(get_principal, MfaService.disable),
)
async def disable_totp(body: MfaCodeBody, principal: ProfileUser, mfa: MfaServiceDep) -> None:
    await mfa.disable(principal, body.code)
