from collections.abc import Callable
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
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

from app.core.types import JsonNumber, NoNul
from app.domains.auth.exceptions import PasswordSessionRequired
from app.domains.users.models import Role
from app.domains.users.schemas import (
    MAX_PASSWORD_LENGTH,
    AccountTokenValue,
    CurrentPassword,
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


OpaqueToken = Annotated[str, StringConstraints(min_length=1, max_length=4096), NoNul]
# Normalised exactly as registration stores emails, so what was registered logs in.
LoginEmail = Annotated[
    str, StringConstraints(max_length=320), NoNul, AfterValidator(normalize_email)
]


def _required_for(grant: str) -> Callable[[str | None, ValidationInfo], str | None]:
    """A check that the field is given when the form's grant is `grant`."""

    def check(value: str | None, info: ValidationInfo) -> str | None:
        if value is None and (info.data.get("grant_type") or "password") == grant:
            raise PydanticCustomError("missing", f"Field required for grant_type={grant}")
        return value

    return check


class TokenRequest(BaseModel):
    """The token endpoint's form: the OAuth2 password grant (RFC 6749 section 4.3;
    `username` is the email) or a refresh (section 6). No grant_type means the password."""

    grant_type: Annotated[Literal["password", "refresh_token"] | None, Field()] = None
    username: Annotated[
        LoginEmail | None,
        Field(validate_default=True, description="your email; for grant_type=password"),
        AfterValidator(_required_for("password")),
    ] = None
    password: Annotated[
        CurrentPassword | None,
        Field(validate_default=True, description="for grant_type=password"),
        AfterValidator(_required_for("password")),
    ] = None
    refresh_token: Annotated[
        OpaqueToken | None,
        Field(validate_default=True, description="for grant_type=refresh_token"),
        AfterValidator(_required_for("refresh_token")),
    ] = None
    scope: Annotated[str, StringConstraints(max_length=500), NoNul] = Field(
        default="",
        description="space-separated scopes; on a refresh, a subset of those first granted",
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
    refresh_token: OpaqueToken


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


class PasswordResetCheck(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"token": "the token from the link"}]}
    )

    token: AccountTokenValue


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


# A code as people type it: six digits from an app, or a backup code with or without its
# dash; spaces are dropped, and anything longer than a backup code is simply wrong.
MfaCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=32),
    NoNul,
    Field(examples=["123456"]),
]


class MfaLogin(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"mfa_token": "from the 401 mfa-required", "code": "123456"}]
        },
    )

    mfa_token: OpaqueToken
    code: MfaCode = Field(description="a code from your authenticator app, or a backup code")


class MfaCodeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"code": "123456"}]})

    code: MfaCode


class TotpEnrolment(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                    "otpauth_uri": "otpauth://totp/Service:ada@example.com?secret=JBSWY3DP"
                    "EHPK3PXPJBSWY3DPEHPK3PXP&issuer=Service&algorithm=SHA1&digits=6&period=30",
                }
            ]
        }
    )

    secret: str = Field(description="base32; add it to an authenticator app (shown only here)")
    otpauth_uri: str = Field(description="the same secret as an authenticator app's URI")


class BackupCodes(BaseModel):
    backup_codes: list[str] = Field(
        description="ten single-use codes for when the authenticator is not at hand; "
        "shown only here"
    )


class SessionRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "5f0c1e2d3a4b5c6d7e8f90a1b2c3d4e5",
                    "created_at": "2026-12-01T09:30:00Z",
                    "last_used_at": "2026-12-01T10:15:00Z",
                    "ip": "203.0.113.7",
                    "user_agent": "curl/8.5.0",
                    "current": True,
                }
            ]
        },
    )

    id: str
    created_at: datetime
    last_used_at: datetime | None = Field(description="the last login or refresh")
    ip: str | None = Field(description="the address the session logged in from")
    user_agent: str | None
    current: bool = Field(default=False, description="the session of this request")


class AccountDeletion(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"password": "correct-horse-7"}]}
    )

    password: CurrentPassword
