import unicodedata
from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StrictBool,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from app.core.schemas import PartialUpdate
from app.core.types import NoNul
from app.domains.users.models import Role

MIN_PASSWORD_LENGTH = 8
# Bounded so a client cannot make the server hash megabytes of input.
MAX_PASSWORD_LENGTH = 128


def _has_a_digit(password: str) -> str:
    if not any(character.isdigit() for character in password):
        raise ValueError("must contain at least one digit")
    return password


Password = Annotated[
    str,
    StringConstraints(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH),
    NoNul,
    AfterValidator(_has_a_digit),
    Field(json_schema_extra={"pattern": "^[^\\x00]*\\d[^\\x00]*$"}),
]
FullName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul
]


def normalize_email(email: str) -> str:
    """The one form an email is stored and looked up in: NFC, no surrounding spaces, lower
    case; the unique constraint on it makes emails unique case-insensitively."""
    return unicodedata.normalize("NFC", email.strip()).lower()


Email = Annotated[EmailStr, AfterValidator(normalize_email)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    full_name: FullName
    password: Password


# What a user types as their current password: bounded like a new one, never checked
# against the rules of one (it may predate them).
CurrentPassword = Annotated[str, StringConstraints(max_length=MAX_PASSWORD_LENGTH), NoNul]


class UserUpdate(PartialUpdate):
    """What users may change about themselves. The email signs in and receives reset links,
    so changing it takes what a password change takes: `current_password` in the same body,
    and a password session."""

    # Stated in the schema too, so a generated client checks it before sending.
    model_config = ConfigDict(
        json_schema_extra={"dependentRequired": {"email": ["current_password"]}}
    )

    email: Email | None = None
    full_name: FullName | None = None
    # Checked, never stored: `exclude` keeps it out of the changes applied to the account.
    current_password: CurrentPassword | None = Field(
        default=None,
        exclude=True,
        validate_default=True,
        description="your password; required with `email`",
    )

    @field_validator("current_password")
    @classmethod
    def _required_with_an_email(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("email") is not None:
            raise PydanticCustomError("missing", "Field required to change the email")
        return value


class UserAdminUpdate(PartialUpdate):
    """What an administrator may change about any user."""

    # Strict: `0`, `"no"` or `"off"` is a client's mistake, not a deactivation.
    is_active: StrictBool | None = None
    role: Role | None = None


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    full_name: str
    role: Role
    is_active: bool
    email_verified: bool
    mfa_enabled: bool = Field(description="two-factor login (TOTP) is on")
    created_at: datetime


# Bounded well above what the service issues, and above any other credential a client might
# send by mistake (an access token is a JWT of several hundred characters): those are simply
# invalid tokens, as at /auth/refresh.
MAX_TOKEN_LENGTH = 4096
AccountTokenValue = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_TOKEN_LENGTH), NoNul
]


class EmailVerification(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"token": "Qm9yZWFsaXMtZXhhbXBsZS10b2tlbi0xMjM0"}]},
    )

    token: AccountTokenValue
