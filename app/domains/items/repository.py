from sqlalchemy import ColumnElement, bindparam, or_, select

from app.core.db.keyset import Slice, SortKey, Window
from app.core.db.reads import Reads, Row
from app.core.db.repository import Repository
from app.domains.items.models import Item
from app.domains.items.schemas import ItemQuery, ItemSort, SortOrder

_SORT_COLUMNS = {
    ItemSort.CREATED_AT: Item.created_at,
    ItemSort.PRICE: Item.price,
    ItemSort.NAME: Item.name,
}
_LIKE_ESCAPE = "\\"


def escape_like(text: str) -> str:
    """`text` as a LIKE pattern that matches it literally: `%` and `_` lose their meaning."""
    return (
        text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
        .replace("%", f"{_LIKE_ESCAPE}%")
        .replace("_", f"{_LIKE_ESCAPE}_")
    )


def _conditions(query: ItemQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.q is not None:
        # ILIKE on PostgreSQL, served by the trigram indexes; lower() LIKE lower() on SQLite.
        pattern = f"%{escape_like(query.q)}%"
        conditions.append(
            or_(
                Item.name.ilike(pattern, escape=_LIKE_ESCAPE),
                Item.description.ilike(pattern, escape=_LIKE_ESCAPE),
            )
        )
    if query.min_price is not None:
        conditions.append(Item.price >= query.min_price)
    if query.max_price is not None:
        conditions.append(Item.price <= query.max_price)
    return conditions


class ItemRepository(Repository[Item]):
    model = Item

    async def search(self, query: ItemQuery, window: Window) -> Slice[Item]:
        """A page of items matching `query`, and how many match in all.

        The id breaks ties in the chosen order, so equal prices or names never make an item
        appear on two pages or on none.
        """
        key = SortKey(_SORT_COLUMNS[query.sort], Item.id, descending=query.order is SortOrder.DESC)
        return await self.page(key, window, select(Item).where(*_conditions(query)))


# Built once with a bound parameter, so a read does not build and hash a new statement.
_ITEM_BY_ID = select(
    Item.id,
    Item.name,
    Item.description,
    Item.price,
    Item.stock,
    Item.owner_id,
    Item.created_at,
    Item.updated_at,
).where(Item.id == bindparam("item_id"))


async def find_item(reads: Reads, item_id: int) -> Row | None:
    """One item's columns by primary key: the catalog's hot read has no unit of work to
    track, so it does without an ORM session and entity (app.core.db.reads)."""
    return await reads.one(_ITEM_BY_ID, item_id=item_id)
