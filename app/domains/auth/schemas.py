from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
)

from app.core.types import JsonNumber, NoNul
from app.domains.auth.exceptions import PasswordSessionRequired
from app.domains.users.models import Role
from app.domains.users.schemas import (
    MAX_PASSWORD_LENGTH,
    AccountTokenValue,
    Email,
    Password,
    UserRead,
    normalize_email,
)


class Scope(StrEnum):
    PROFILE = "profile"
    ITEMS_WRITE = "items:write"
    ORDERS_READ = "orders:read"
    ORDERS_WRITE = "orders:write"
    POSTS_WRITE = "posts:write"
    USERS_ADMIN = "users:admin"
    ORDERS_ADMIN = "orders:admin"
    WEBHOOKS_ADMIN = "webhooks:admin"
    ITEMS_ADMIN = "items:admin"
    POSTS_ADMIN = "posts:admin"


SCOPE_DESCRIPTIONS: dict[str, str] = {
    Scope.PROFILE: "Read and change your own account",
    Scope.ITEMS_WRITE: "Create, change and delete your catalog items",
    Scope.ORDERS_READ: "Read your orders",
    Scope.ORDERS_WRITE: "Place and cancel orders",
    Scope.POSTS_WRITE: "Write, change and delete your posts",
    Scope.USERS_ADMIN: "Administer users (administrators only)",
    Scope.ORDERS_ADMIN: "See every order and ship orders (administrators only)",
    Scope.WEBHOOKS_ADMIN: "Manage webhook endpoints for order events (administrators only)",
    Scope.ITEMS_ADMIN: "Change and delete other users' catalog items (administrators only)",
    Scope.POSTS_ADMIN: "Delete other users' posts (administrators only)",
}

_ADMIN_ONLY = {
    Scope.USERS_ADMIN,
    Scope.ORDERS_ADMIN,
    Scope.WEBHOOKS_ADMIN,
    Scope.ITEMS_ADMIN,
    Scope.POSTS_ADMIN,
}
ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.USER: frozenset(Scope) - _ADMIN_ONLY,
    Role.ADMIN: frozenset(Scope),
}


class Principal(UserRead):
    """The authenticated caller, as every protected route receives it: the user's public
    view (so `/users/me` renders it as it is), and how this request is authorised.

    Signed in with a password (`session_id` set) or through an API key (`api_key_id` set);
    `scopes` are what this request may do: the token's, or the key's within the role.
    """

    model_config = ConfigDict(frozen=True)

    scopes: frozenset[str]
    session_id: str | None = None
    api_key_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def administers(self, scope: str) -> bool:
        """The one rule for acting on other users' things: the administrator role, read on
        this request, and the admin scope for that kind of thing on this token or key (an
        administrator's key scoped `items:write` acts on its owner's items only)."""
        return self.is_admin and scope in self.scopes

    def password_session(self) -> str:
        """The caller's session id; managing credentials needs one, an API key will not do."""
        if self.session_id is None:
            raise PasswordSessionRequired
        return self.session_id


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


class PasswordResetRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"email": "ada@example.com"}]}
    )

    email: Email


class PasswordResetConfirm(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"token": "the token from the emailed link", "new_password": "new-secret-42"}
            ]
        },
    )

    token: AccountTokenValue
    new_password: Password


def _split_scopes(value: object) -> object:
    return sorted(value.split()) if isinstance(value, str) else value


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "nightly export", "scopes": ["orders:read"], "expires_in_days": 90}
            ]
        },
    )

    name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul
    ]
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=len(Scope))]
    expires_in_days: Annotated[int, Field(ge=1, le=365), JsonNumber] | None = Field(
        default=None, description="days until the key stops working; null: it never expires"
    )


_KEY_EXAMPLE: dict[str, JsonValue] = {
    "id": 7,
    "name": "nightly export",
    "prefix": "fsk_Xk2wQ9aL",
    "scopes": ["orders:read"],
    "created_at": "2026-12-01T09:30:00Z",
    "expires_at": "2027-03-01T09:30:00Z",
    "last_used_at": None,
}


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_KEY_EXAMPLE]})

    id: int
    name: str
    prefix: str = Field(description="the key's first 12 characters, to tell keys apart")
    scopes: Annotated[list[str], BeforeValidator(_split_scopes)]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="updated at most once a minute")


class ApiKeyCreated(ApiKeyRead):
    model_config = ConfigDict(
        json_schema_extra={"examples": [_KEY_EXAMPLE | {"key": "fsk_Xk2wQ9aL...(55 characters)"}]}
    )

    key: str = Field(
        description="send as `Authorization: Bearer <key>`; shown only in this response"
    )
