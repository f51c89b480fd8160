from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from app.core.schemas import PartialUpdate
from app.core.types import Money, NoNul
from app.domains.orders.schemas import OrderRead
from app.domains.posts.schemas import PostRead
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
]
FullName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul
]
Email = Annotated[EmailStr, AfterValidator(str.lower)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    full_name: FullName
    password: Password


class UserUpdate(PartialUpdate):
    """What users may change about themselves."""

    email: Email | None = None
    full_name: FullName | None = None


class UserAdminUpdate(PartialUpdate):
    """What an administrator may change about any user."""

    is_active: bool | None = None
    role: Role | None = None


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: Annotated[str, StringConstraints(max_length=MAX_PASSWORD_LENGTH), NoNul]
    new_password: Password


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    full_name: str
    role: Role
    is_active: bool
    created_at: datetime


class DashboardStats(BaseModel):
    order_count: int = Field(description="every order you placed, cancelled ones included")
    total_spent: Money = Field(description="the totals of your orders that were not cancelled")


class Dashboard(BaseModel):
    stats: DashboardStats
    recent_orders: list[OrderRead] = Field(description="your five newest orders")
    recent_posts: list[PostRead] = Field(description="your five newest posts")
