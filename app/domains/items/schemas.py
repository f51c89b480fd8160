from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.core.pagination import PageQuery
from app.core.schemas import PartialUpdate
from app.core.types import MAX_INT32, CleanStr, JsonNumber, Money, MoneyInput, NoNul

# Keeps order totals (up to 1000 units on several lines) far inside Numeric(12, 2).
MAX_PRICE = Decimal("1000000.00")
MAX_DESCRIPTION_LENGTH = 5000
MIN_QUERY_LENGTH = 3
MAX_QUERY_LENGTH = 100

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul]
Description = Annotated[CleanStr, StringConstraints(max_length=MAX_DESCRIPTION_LENGTH)]
Price = Annotated[Decimal, MoneyInput(maximum=MAX_PRICE, above_zero=True)]
Stock = Annotated[int, Field(ge=0, le=MAX_INT32), JsonNumber]


class ItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Description = ""
    price: Price
    stock: Stock


class ItemUpdate(PartialUpdate):
    """A partial change: only the fields sent are applied."""

    name: Name | None = None
    description: Description | None = None
    price: Price | None = None
    stock: Stock | None = None


class ItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    price: Money
    stock: int
    owner_id: int
    created_at: datetime
    updated_at: datetime


class ItemSort(StrEnum):
    CREATED_AT = "created_at"
    PRICE = "price"
    NAME = "name"


class SortOrder(StrEnum):
    ASC = "asc"
    DESC = "desc"


SearchText = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=MIN_QUERY_LENGTH, max_length=MAX_QUERY_LENGTH
    ),
    NoNul,
]
PriceBound = Annotated[Decimal, MoneyInput(maximum=MAX_PRICE, above_zero=False)]


class ItemQuery(BaseModel):
    """The catalog's search, filter and sort parameters (a query-string model)."""

    q: SearchText | None = Field(
        default=None, description="case-insensitive text in the name or description"
    )
    min_price: PriceBound | None = None
    max_price: PriceBound | None = None
    sort: ItemSort = ItemSort.CREATED_AT
    order: SortOrder = SortOrder.DESC

    @model_validator(mode="after")
    def _price_range(self) -> Self:
        if (
            self.min_price is not None
            and self.max_price is not None
            and self.min_price > self.max_price
        ):
            raise ValueError("min_price must not exceed max_price")
        return self


class ItemSearch(ItemQuery, PageQuery):
    """A page of the catalog's search: its query and where the page starts (one query-string
    model, so the list route resolves no dependency for its parameters)."""

    def query(self) -> ItemQuery:
        """The search alone, what a cursor is bound to (already validated as part of this)."""
        return ItemQuery.model_construct(
            **{name: getattr(self, name) for name in ItemQuery.model_fields}
        )
