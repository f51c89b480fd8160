"""Registration, the caller's own account, email verification, and user administration."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from app.core.deps import PageParamsDep
from app.core.errors import error_responses
from app.core.http.limits import RateLimit
from app.core.http.routes import ApiRoute
from app.core.pagination import Page
from app.core.schemas import Accepted
from app.core.types import MAX_ID
from app.domains.auth.dependencies import (
    AdminUser,
    AuthServiceDep,
    CurrentUser,
    ProfileUser,
    get_admin,
    get_principal,
    profile_user_key,
)
from app.domains.auth.schemas import PasswordChange
from app.domains.auth.service import AuthService
from app.domains.users.dependencies import UserServiceDep
from app.domains.users.schemas import UserAdminUpdate, UserCreate, UserRead, UserUpdate
from app.domains.users.service import UserService

router = APIRouter(prefix="/users", tags=["users"], route_class=ApiRoute)

UserId = Annotated[int, Path(ge=1, le=MAX_ID, description="the user's id")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a new account",
    responses=error_responses(UserService.register),
    dependencies=[Depends(RateLimit(lambda s: s.rate_limit_register, scope="register"))],
)
async def register_user(data: UserCreate, users: UserServiceDep) -> UserRead:
    return await users.register(data)


@router.get("/me", summary="Your account", responses=error_responses(get_principal))
async def read_me(principal: CurrentUser) -> UserRead:
    # The principal is the account's public view, read on this request: no second query.
    return principal


@router.patch(
    "/me",
    summary="Change your name, or your email with your current password",
    description="Changing `email` needs `current_password` and a password session (an API "
    "key gets 403); the old address is told, and the new one must be verified again.",
    responses=error_responses(get_principal, AuthService.update_profile),
)
async def update_me(changes: UserUpdate, principal: ProfileUser, auth: AuthServiceDep) -> UserRead:
    return await auth.update_profile(principal, changes)


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change your password; every other session is signed out",
    responses=error_responses(get_principal, AuthService.change_password),
)
async def change_password(
    change: PasswordChange, principal: ProfileUser, auth: AuthServiceDep
) -> None:
    await auth.change_password(principal, change)


@router.post(
    "/me/verify-email",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Email a fresh verification link to your address",
    dependencies=[
        Depends(
            RateLimit(
                lambda s: s.rate_limit_verify_email, scope="verify-email", key=profile_user_key
            )
        )
    ],
    responses=error_responses(get_principal, UserService.resend_verification),
)
async def resend_verification(principal: ProfileUser, users: UserServiceDep) -> Accepted:
    await users.resend_verification(principal.id)
    return Accepted(detail=f"A verification link is on its way to {principal.email}.")


@router.get(
    "",
    summary="List users (administrators)",
    responses=error_responses(get_admin, UserService.list_page),
)
async def list_users(_: AdminUser, page: PageParamsDep, users: UserServiceDep) -> Page[UserRead]:
    return await users.list_page(page)


@router.get(
    "/{user_id}",
    summary="Read a user (administrators)",
    responses=error_responses(get_admin, UserService.get),
)
async def read_user(user_id: UserId, _: AdminUser, users: UserServiceDep) -> UserRead:
    return await users.get(user_id)


@router.patch(
    "/{user_id}",
    summary="Activate, deactivate or change the role of a user (administrators)",
    responses=error_responses(get_admin, AuthService.update_access),
)
async def update_user(
    user_id: UserId, changes: UserAdminUpdate, admin: AdminUser, auth: AuthServiceDep
) -> UserRead:
    return await auth.update_access(admin, user_id, changes)
