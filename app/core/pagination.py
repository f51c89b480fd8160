"""The page envelope every list endpoint returns, and its bounded query parameters."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

MAX_LIMIT = 100
# Far beyond any real page, yet small enough for every database's integer type.
MAX_OFFSET = 1_000_000_000


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    offset: int
    limit: int


ModelT = TypeVar("ModelT", bound=BaseModel)


def page_of(
    read: type[ModelT], rows: Iterable[object], total: int, *, offset: int, limit: int
) -> Page[ModelT]:
    """The envelope for one page of ORM rows, each rendered through its read schema."""
    return Page(
        items=[read.model_validate(row) for row in rows], total=total, offset=offset, limit=limit
    )


@dataclass(frozen=True, slots=True)
class PageParams:
    offset: int
    limit: int


async def get_page_params(
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")] = 20,
) -> PageParams:
    return PageParams(offset=offset, limit=limit)


PageParamsDep = Annotated[PageParams, Depends(get_page_params)]
