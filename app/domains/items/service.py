import hashlib
import json
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.cache import RAW, Cache
from app.core.db.keyset import CursorCodec, Window
from app.core.db.replicas import Replicas
from app.core.db.transactions import after_commit
from app.core.errors import raises
from app.core.pagination import PageParams, page_of
from app.core.schemas import JSONBody
from app.domains.auth.schemas import Principal, Scope
from app.domains.items.exceptions import ItemNotFound, NotItemOwner
from app.domains.items.models import Item
from app.domains.items.repository import ItemRepository, find_item
from app.domains.items.schemas import (
    ItemCreate,
    ItemQuery,
    ItemRead,
    ItemSearch,
    ItemUpdate,
)

# Every cached list page lives under this namespace, so one bump retires all of them. It
# also names the catalog's fence: every write to the catalog invalidates under it, so an
# item's read and a page alike are loaded only from a source that has replayed it.
LISTS_NAMESPACE = "items"


def item_key(item_id: int) -> str:
    return f"item:{item_id}"


def page_key(query: ItemQuery, window: Window) -> str:
    # Hashed: a search text of up to 100 characters should not become part of a Redis key.
    canonical = (
        f"{query.model_dump_json()}|{window.offset}|{window.limit}|{json.dumps(window.after)}"
        f"|{window.counted}"
    )
    return f"page:{hashlib.sha256(canonical.encode()).hexdigest()}"


async def forget_cached(cache: Cache, item_ids: Iterable[int]) -> None:
    """Forget the cached reads of these items, and every cached list, in one round trip:
    for after a commit that changed them (stock is part of every read of an item). After,
    not before: invalidating earlier would let a concurrent read put the old row back."""
    await cache.invalidate(*(item_key(item_id) for item_id in item_ids), namespace=LISTS_NAMESPACE)


def ensure_can_change(principal: Principal, item: Item) -> None:
    """The one ownership rule of the catalog: an item's owner, or an administrator acting
    with `items:admin`."""
    if item.owner_id != principal.id and not principal.administers(Scope.ITEMS_ADMIN):
        raise NotItemOwner


class ItemReader:
    """The catalog's public reads: cache-aside, serving the JSON body rendered once.

    A hit is one cache read and no decoding; a miss reads an item with one Core statement
    on a plain connection, and a list page on a short session of its own, so no read holds
    a unit of work it never uses. Misses may be served by a read replica that has replayed
    the catalog's last write (`Cache.get_or_set_since`).
    """

    def __init__(self, replicas: Replicas, cache: Cache, cursors: CursorCodec) -> None:
        self.replicas = replicas
        self.cache = cache
        self.cursors = cursors

    @raises(ItemNotFound)
    async def get(self, item_id: int) -> JSONBody:
        async def load(since: int) -> bytes:
            row = await find_item(self.replicas.reads(since), item_id)
            if row is None:
                raise ItemNotFound
            return JSONBody.of(ItemRead.model_validate(dict(row))).data

        data = await self.cache.get_or_set_since(
            item_key(item_id), LISTS_NAMESPACE, load, codec=RAW
        )
        return JSONBody(data)

    @raises(PageParams.of, PageParams.window)
    async def search(self, search: ItemSearch) -> JSONBody:
        query = search.query()
        window = PageParams.of(search, self.cursors).window(LISTS_NAMESPACE, query)

        async def load(since: int) -> bytes:
            rows = await self.replicas.run(
                since, lambda session: ItemRepository(session).search(query, window)
            )
            return JSONBody.of(page_of(ItemRead, rows, window)).data

        data = await self.cache.get_or_set_since(
            page_key(query, window), LISTS_NAMESPACE, load, codec=RAW, namespace=LISTS_NAMESPACE
        )
        return JSONBody(data)


class ItemService:
    """The catalog's writes: owner-only changes, each invalidating the cached reads once it
    commits. (Orders take and return stock in their own transactions: app.domains.orders.)"""

    def __init__(self, session: AsyncSession, cache: Cache) -> None:
        self.session = session
        self.items = ItemRepository(session)
        self.cache = cache

    async def create(self, principal: Principal, data: ItemCreate) -> ItemRead:
        item = await self.items.add(Item(**data.model_dump(), owner_id=principal.id))
        self._invalidate_after_commit([])
        return ItemRead.model_validate(item)

    @raises(NotItemOwner, ItemNotFound)
    async def update(self, principal: Principal, item_id: int, changes: ItemUpdate) -> ItemRead:
        item = await self._get_item(item_id)
        ensure_can_change(principal, item)
        changes.apply_to(item)
        await self.session.flush()
        self._invalidate_after_commit([item_id])
        return ItemRead.model_validate(item)

    @raises(NotItemOwner, ItemNotFound)
    async def delete(self, principal: Principal, item_id: int) -> None:
        item = await self._get_item(item_id)
        ensure_can_change(principal, item)
        await self.items.delete(item)
        self._invalidate_after_commit([item_id])

    def _invalidate_after_commit(self, item_ids: Iterable[int]) -> None:
        """Forget the cached reads of these items, and every cached list, once the request
        commits (`forget_cached`)."""
        changed, cache = list(item_ids), self.cache

        async def invalidate() -> None:
            await forget_cached(cache, changed)

        after_commit(self.session, invalidate)

    async def _get_item(self, item_id: int) -> Item:
        item = await self.items.get(item_id)
        if item is None:
            raise ItemNotFound
        return item
