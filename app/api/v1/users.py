"""Registration, the caller's own account, and user administration."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from app.api.deps import ResourcesDep
from app.core.errors import error_responses
from app.core.pagination import Page, PageParamsDep, page_of
from app.core.rate_limit import RateLimit, RateLimitExceeded
from app.core.types import MAX_ID
from app.domains.auth.dependencies import AdminUser, CurrentUser, ProfileUser
from app.domains.auth.exceptions import (
    AdminRequired,
    InsufficientScope,
    InvalidAccessToken,
    NotAuthenticated,
)
from app.domains.users.dependencies import DashboardReader, UserServiceDep
from app.domains.users.exceptions import EmailTaken, UserNotFound, WrongCurrentPassword
from app.domains.users.schemas import (
    Dashboard,
    PasswordChange,
    UserAdminUpdate,
    UserCreate,
    UserRead,
    UserUpdate,
)
from app.domains.users.service import build_dashboard

router = APIRouter(prefix="/users", tags=["users"])

UserId = Annotated[int, Path(ge=1, le=MAX_ID, description="the user's id")]
AUTH_ERRORS = (NotAuthenticated, InvalidAccessToken, InsufficientScope)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a new account",
    responses=error_responses(EmailTaken, RateLimitExceeded),
    dependencies=[Depends(RateLimit(lambda s: s.rate_limit_register, scope="register"))],
)
async def register_user(data: UserCreate, users: UserServiceDep) -> UserRead:
    return UserRead.model_validate(await users.register(data))


@router.get("/me", summary="Your account", responses=error_responses(*AUTH_ERRORS))
async def read_me(principal: CurrentUser) -> UserRead:
    return UserRead.model_validate(principal)


@router.patch(
    "/me",
    summary="Change your name or email",
    responses=error_responses(*AUTH_ERRORS, EmailTaken),
)
async def update_me(changes: UserUpdate, principal: ProfileUser, users: UserServiceDep) -> UserRead:
    return UserRead.model_validate(await users.update_me(principal, changes))


@router.get(
    "/me/dashboard",
    summary="Your order stats, newest orders and newest posts",
    responses=error_responses(*AUTH_ERRORS),
)
async def read_dashboard(principal: DashboardReader, resources: ResourcesDep) -> Dashboard:
    return await build_dashboard(resources.sessionmaker, principal)


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change your password; every other session is signed out",
    responses=error_responses(*AUTH_ERRORS, WrongCurrentPassword),
)
async def change_password(
    change: PasswordChange, principal: ProfileUser, users: UserServiceDep
) -> None:
    await users.change_password(principal, change)


@router.get(
    "",
    summary="List users (administrators)",
    responses=error_responses(*AUTH_ERRORS, AdminRequired),
)
async def list_users(_: AdminUser, page: PageParamsDep, users: UserServiceDep) -> Page[UserRead]:
    rows, total = await users.list_page(offset=page.offset, limit=page.limit)
    return page_of(UserRead, rows, total, offset=page.offset, limit=page.limit)


@router.get(
    "/{user_id}",
    summary="Read a user (administrators)",
    responses=error_responses(*AUTH_ERRORS, AdminRequired, UserNotFound),
)
async def read_user(user_id: UserId, _: AdminUser, users: UserServiceDep) -> UserRead:
    return UserRead.model_validate(await users.get(user_id))


@router.patch(
    "/{user_id}",
    summary="Activate, deactivate or change the role of a user (administrators)",
    responses=error_responses(*AUTH_ERRORS, AdminRequired, UserNotFound),
)
async def update_user(
    user_id: UserId, changes: UserAdminUpdate, _: AdminUser, users: UserServiceDep
) -> UserRead:
    return UserRead.model_validate(await users.admin_update(user_id, changes))
