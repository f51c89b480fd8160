"""The shape every repository shares, the one conflict-skipping INSERT for every dialect, and
the one batched DELETE that purges old rows.

A domain's repository subclasses `Repository[Model]`: it gets the request's session once and
the model's `get`, `add`, `delete` and `page`, and adds methods named for what the domain asks
(`get_by_email`, `list_page`). All SQL lives in repositories; services call these names.
"""

from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar, cast

from sqlalchemy import CursorResult, Select, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
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


# Small enough that each delete holds its locks only briefly, even on a busy table.
PURGE_BATCH_SIZE = 500


async def delete_in_batches(
    sessionmaker: async_sessionmaker[AsyncSession],
    model: type[Base],
    ids: Select[Any],
    *,
    batch_size: int = PURGE_BATCH_SIZE,
) -> int:
    """Delete the rows `ids` selects (their ids, `batch_size` at most), a batch per
    transaction, until a batch comes back short; how many went."""
    id_column = model.__table__.c.id
    removed = 0
    while True:
        async with sessionmaker.begin() as session:
            result = cast(
                CursorResult[Any],
                await session.execute(
                    delete(model)
                    .where(id_column.in_(ids.limit(batch_size).scalar_subquery()))
                    .execution_options(synchronize_session=False)
                ),
            )
        removed += result.rowcount
        if result.rowcount < batch_size:
            return removed
