"""The page envelope every list endpoint returns, and the bounds of its parameters.

A list answers `offset`/`limit` pages and, through `next_cursor`, keyset pages
(`app.core.db.keyset`). A list needs three lines for both: the service turns the parameters
into a `Window` bound to its filters, the repository reads a `Slice` with `keyset_page`, and
`page_of` renders it.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from app.core.db.cursors import MAX_CURSOR_LENGTH
from app.core.db.keyset import CursorCodec, InvalidCursor, Slice, Window, scope_of
from app.core.errors import raises

__all__ = ["MAX_CURSOR_LENGTH", "MAX_LIMIT", "MAX_OFFSET", "Page", "PageParams", "page_of"]

MAX_LIMIT = 100
# Far beyond any real page, yet small enough for every database's integer type.
MAX_OFFSET = 1_000_000_000


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int | None = Field(
        description="how many match in all; null when asked for with include_total=false"
    )
    offset: int
    limit: int
    next_cursor: str | None = Field(
        default=None, description="send as `cursor` for the following page; null on the last"
    )


ModelT = TypeVar("ModelT", bound=BaseModel)


def page_of(read: type[ModelT], rows: Slice[Any], window: Window) -> Page[ModelT]:
    """The envelope for one page of ORM rows, each rendered through its read schema."""
    items = [read.model_validate(row) for row in rows.rows]
    return Page(
        items=items,
        total=rows.total,
        offset=window.offset,
        limit=window.limit,
        next_cursor=window.cursor_after(rows.next_key, len(items)),
    )


class PageQuery(BaseModel):
    """The query parameters of every list: where its page starts and how long it is."""

    offset: int | None = Field(
        default=None, ge=0, le=MAX_OFFSET, description="items to skip (default 0)"
    )
    limit: int = Field(default=20, ge=1, le=MAX_LIMIT, description="page size")
    cursor: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_CURSOR_LENGTH,
        description="the `next_cursor` of the previous page, with the same filters",
    )
    include_total: bool = Field(
        default=True, description="false: `total` is null and no count is made, which is faster"
    )


@dataclass(frozen=True, slots=True)
class PageParams:
    offset: int
    limit: int
    cursor: str | None
    codec: CursorCodec
    include_total: bool = True

    @classmethod
    @raises(InvalidCursor)
    def of(cls, query: PageQuery, codec: CursorCodec) -> "PageParams":
        if query.cursor is not None and query.offset is not None:
            raise InvalidCursor(
                "Send either `cursor` or `offset`: a cursor says where the page starts."
            )
        return cls(query.offset or 0, query.limit, query.cursor, codec, query.include_total)

    @raises(InvalidCursor)
    def window(self, name: str, filters: BaseModel | Mapping[str, Any] | None = None) -> Window:
        """The rows to read for the list `name` under `filters` (its filters and sort).

        A cursor issued for another list, other filters or another sort is refused.
        """
        scope = scope_of(name, filters)
        if self.cursor is None:
            return Window(
                self.offset, self.limit, scope=scope, codec=self.codec, counted=self.include_total
            )
        position = self.codec.decode(self.cursor, scope)
        return Window(
            position.offset,
            self.limit,
            after=position.key,
            scope=scope,
            codec=self.codec,
            counted=self.include_total,
        )
