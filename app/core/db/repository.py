"""The shape every repository shares, and the one conflict-skipping INSERT for every dialect.

A domain's repository subclasses `Repository[Model]`: it gets the request's session once and
the model's `get`, `add`, `delete` and `page`, and adds methods named for what the domain asks
(`get_by_email`, `list_page`). All SQL lives in repositories; services call these names.
"""

from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.base import ExecutableOption
from sqlalchemy.sql.dml import Insert

from app.core.db.base import Base
from app.core.db.keyset import Slice, SortKey, Window, keyset_page

M = TypeVar("M", bound=Base)


class Repository(Generic[M]):
    """The rows of one model, read and written in the request's session."""

    model: ClassVar[type[Any]]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, key: Any) -> M | None:
        row: M | None = await self.session.get(self.model, key)
        return row

    async def add(self, row: M) -> M:
        self.session.add(row)
        await self.session.flush()
        return row

    async def delete(self, row: M) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def page(
        self,
        key: SortKey,
        window: Window,
        statement: Select[Any] | None = None,
        *,
        options: Sequence[ExecutableOption] = (),
    ) -> Slice[M]:
        """One page of `statement` (every row of the model by default) in `key`'s order."""
        statement = select(self.model) if statement is None else statement
        return await keyset_page(self.session, statement, key, window, options=options)


def insert_ignoring(
    bind: AsyncSession | AsyncConnection,
    model: type[Base],
    conflict: Sequence[str | InstrumentedAttribute[Any]],
) -> Insert:
    """`INSERT ... ON CONFLICT (conflict) DO NOTHING` in the bind's dialect.

    For inserts that a unique index may refuse because the row exists (a dedup key, a
    claim): with `RETURNING`, no row back means the conflict, and no error aborts the
    transaction the way a caught IntegrityError would on PostgreSQL.
    """
    dialect = bind.get_bind().dialect.name if isinstance(bind, AsyncSession) else bind.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(model).on_conflict_do_nothing(index_elements=list(conflict))
