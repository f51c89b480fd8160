"""Keyset pagination: signed cursors and the index seek behind them.

A cursor names the last row of a page by its sort key, (sort column, id), so the next page
is `WHERE (column, id) > (:column, :id)` in the list's order: an index range scan that no
insert or delete between requests can shift, unlike an OFFSET. The cursor is signed with a
key derived from SECRET_KEY and bound to one list with its filters and sort, so a client
can neither forge a position nor carry one over to another query; its compact, bounded
wire form is `app.core.db.cursors`.
"""

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, TypeDecorator, func, literal, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.base import ExecutableOption

from app.core.db.cursors import CursorCodec, InvalidCursor, Key, cursor_codec

__all__ = [
    "CursorCodec",
    "InvalidCursor",
    "Key",
    "Slice",
    "SortKey",
    "Window",
    "cursor_codec",
    "keyset_page",
    "page_statement",
    "scope_of",
]

T = TypeVar("T")


def scope_of(name: str, filters: BaseModel | Mapping[str, Any] | None = None) -> str:
    """What a cursor is bound to: the list's name and its filters and sort, canonically."""
    if isinstance(filters, BaseModel):
        canonical = filters.model_dump_json()
    else:
        canonical = json.dumps(dict(filters or {}), sort_keys=True, default=str)
    return hashlib.sha256(f"{name}|{canonical}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Window:
    """Which rows one page holds: those after a cursor's key, or those at an offset."""

    offset: int
    limit: int
    after: Key | None = None
    scope: str = ""
    codec: CursorCodec | None = None
    # False when the client does without `total`: the page then runs no count query.
    counted: bool = True

    def cursor_after(self, key: Key | None, count: int) -> str | None:
        """The cursor of the page that follows one of `count` rows ending at `key`."""
        if key is None or self.codec is None:
            return None
        return self.codec.encode(self.scope, key, offset=self.offset + count)


@dataclass(frozen=True, slots=True)
class Slice(Generic[T]):
    """One page of rows, how many match in all, and the key to continue after (if any)."""

    rows: list[T]
    total: int | None
    next_key: Key | None


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _from_json(value: Any, python_type: type[Any]) -> Any:
    if python_type is datetime and isinstance(value, str):
        return datetime.fromisoformat(value)
    if python_type is Decimal and isinstance(value, str):
        return Decimal(value)
    if python_type in (int, str) and type(value) is python_type:
        return value
    raise ValueError(f"{value!r} is not a {python_type.__name__}")


def _python_type(column: InstrumentedAttribute[Any]) -> type[Any]:
    column_type = column.type
    # A decorator (UTC timestamps) reports `object`; the type it wraps knows better.
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    python_type: type[Any] = column_type.python_type
    return python_type


@dataclass(frozen=True, slots=True)
class SortKey:
    """A list's order: a sort column, then the id, which makes every key unique.

    Each sort needs an index on (column, id), after any equality filter's columns, for the
    seek to be a range scan.
    """

    column: InstrumentedAttribute[Any]
    id: InstrumentedAttribute[Any]
    descending: bool = False

    @property
    def _by_id(self) -> bool:
        return self.column is self.id

    def ordering(self) -> list[ColumnElement[Any]]:
        columns = [self.id] if self._by_id else [self.column, self.id]
        return [column.desc() if self.descending else column.asc() for column in columns]

    def seek(self, after: Key) -> ColumnElement[bool]:
        """Rows after `after` in this order, as one row-value comparison the index serves."""
        try:
            value = _from_json(after[0], _python_type(self.column))
            row_id = _from_json(after[1], _python_type(self.id))
        except (IndexError, ValueError, InvalidOperation):
            raise InvalidCursor from None
        bound_id = literal(row_id, self.id.type)
        if self._by_id:
            return self.id < bound_id if self.descending else self.id > bound_id
        left = tuple_(self.column, self.id)
        right = tuple_(literal(value, self.column.type), bound_id)
        return left < right if self.descending else left > right

    def key_of(self, row: Any) -> Key:
        return (_to_json(getattr(row, self.column.key)), getattr(row, self.id.key))


def page_statement(
    statement: Select[T],
    key: SortKey,
    window: Window,
    *,
    options: Sequence[ExecutableOption] = (),
) -> Select[T]:
    """`statement` (filtered, not yet ordered) narrowed to the window, plus one row: that
    row only tells whether another page follows."""
    page = statement.options(*options).order_by(*key.ordering()).limit(window.limit + 1)
    if window.after is not None:
        return page.where(key.seek(window.after))
    return page.offset(window.offset)


async def keyset_page(
    session: AsyncSession,
    statement: Select[T],
    key: SortKey,
    window: Window,
    *,
    options: Sequence[ExecutableOption] = (),
) -> Slice[T]:
    """The page of `statement` (filtered, not yet ordered) that `window` describes."""
    total = None
    if window.counted:
        count = statement.with_only_columns(func.count(), maintain_column_froms=True)
        total = await session.scalar(count) or 0
    rows = list(await session.scalars(page_statement(statement, key, window, options=options)))
    more = len(rows) > window.limit
    rows = rows[: window.limit]
    return Slice(rows=rows, total=total, next_key=key.key_of(rows[-1]) if more else None)
