from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.core.types import NoNul
from app.domains.users.models import Role
from app.domains.users.schemas import MAX_PASSWORD_LENGTH, Password, normalize_email


class Scope(StrEnum):
    PROFILE = "profile"
    ITEMS_WRITE = "items:write"
    ORDERS_READ = "orders:read"
    ORDERS_WRITE = "orders:write"
    POSTS_WRITE = "posts:write"
    USERS_ADMIN = "users:admin"
    ORDERS_ADMIN = "orders:admin"
    WEBHOOKS_ADMIN = "webhooks:admin"


SCOPE_DESCRIPTIONS: dict[str, str] = {
    Scope.PROFILE: "Read and change your own account",
    Scope.ITEMS_WRITE: "Create, change and delete your catalog items",
    Scope.ORDERS_READ: "Read your orders",
    Scope.ORDERS_WRITE: "Place and cancel orders",
    Scope.POSTS_WRITE: "Write, change and delete your posts",
    Scope.USERS_ADMIN: "Administer users (administrators only)",
    Scope.ORDERS_ADMIN: "See every order and ship orders (administrators only)",
    Scope.WEBHOOKS_ADMIN: "Manage webhook endpoints for order events (administrators only)",
}

_ADMIN_ONLY = {Scope.USERS_ADMIN, Scope.ORDERS_ADMIN, Scope.WEBHOOKS_ADMIN}
ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.USER: frozenset(Scope) - _ADMIN_ONLY,
    Role.ADMIN: frozenset(Scope),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as every protected route receives it."""

    id: int
    email: str
    full_name: str
    role: Role
    is_active: bool
    created_at: datetime
    session_id: str
    scopes: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class TokenRequest(BaseModel):
    """The OAuth2 password grant form (RFC 6749 section 4.3); `username` is the email."""

    grant_type: Annotated[Literal["password"] | None, Field()] = None
    # Normalised exactly as registration stores emails, so what was registered logs in.
    username: Annotated[
        str, StringConstraints(max_length=320), NoNul, AfterValidator(normalize_email)
    ]
    password: Annotated[str, StringConstraints(max_length=MAX_PASSWORD_LENGTH), NoNul]
    scope: Annotated[str, StringConstraints(max_length=500), NoNul] = Field(
        default="", description="space-separated scopes"
    )


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int = Field(description="seconds until the access token expires")
    refresh_token: str
    scope: str = Field(description="the scopes granted, space-separated")


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Long enough for any token a client might mistake for a refresh token (an access token
    # is a JWT of several hundred characters): those get the same 401 as any unknown token.
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=4096), NoNul]


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: Annotated[str, StringConstraints(max_length=MAX_PASSWORD_LENGTH), NoNul]
    new_password: Password
