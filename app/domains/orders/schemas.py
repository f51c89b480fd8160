from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

from app.core.types import MAX_ID, JsonNumber, Money, NoNul
from app.domains.orders.models import OrderStatus, ShippingMethod
from app.domains.orders.rules import MAX_LINES, MAX_QUANTITY, MIN_QUANTITY

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
# The bounds are the rules' (app.domains.orders.rules), checked here as the body is read.
Quantity = Annotated[int, Field(ge=MIN_QUANTITY, le=MAX_QUANTITY), JsonNumber]


class OrderLineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A JSON number, as in every body; `Id` also types query parameters, which are text.
    item_id: Annotated[Id, JsonNumber]
    quantity: Quantity


# Stripped before the lengths are checked (app.core.types), so "   " is too short.
Street = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul
]
City = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul]


class AddressCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    street: Street
    city: City
    country: Annotated[
        str,
        StringConstraints(pattern=r"^[A-Z]{2}$"),
        Field(description="ISO 3166-1 alpha-2 code"),
    ] = "US"


class OrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lines: Annotated[
        list[OrderLineCreate],
        Field(min_length=1, max_length=MAX_LINES),
    ]
    shipping: ShippingMethod
    address: AddressCreate


class OrderLineRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    item_id: int | None = Field(description="null once the item has left the catalog")
    quantity: int
    unit_price: Money
    line_total: Money


class AddressRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    street: str
    city: str
    country: str


class OrderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    status: OrderStatus
    lines: list[OrderLineRead]
    subtotal: Money
    shipping: ShippingMethod
    shipping_cost: Money
    total: Money
    address: AddressRead
    created_at: datetime


class OrderFilter(BaseModel):
    """List filters; `user_id` narrows an administrator's view and never widens a user's."""

    status: OrderStatus | None = None
    user_id: Id | None = None


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    """The answer to an order request: new, or replayed for a repeated idempotency key."""

    order: OrderRead
    status_code: int
    replayed: bool
