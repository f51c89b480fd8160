import hashlib
import json
from collections.abc import Iterable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.cache import RAW, Cache
from app.core.db.keyset import CursorCodec, Window
from app.core.db.reads import Reads
from app.core.db.transactions import after_commit
from app.core.errors import raises
from app.core.pagination import PageParams, page_of
from app.core.schemas import JSONBody
from app.domains.auth.schemas import Principal, Scope
from app.domains.items.exceptions import ItemNotFound, NotItemOwner, OutOfStock, UnknownItems
from app.domains.items.models import Item
from app.domains.items.repository import ItemRepository, find_item
from app.domains.items.schemas import (
    ItemCreate,
    ItemQuery,
    ItemRead,
    ItemSearch,
    ItemUpdate,
    ReservedItem,
    StockLine,
)

# Every cached list page lives under this namespace, so one bump retires all of them.
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


def ensure_can_change(principal: Principal, item: Item) -> None:
    """The one ownership rule of the catalog: an item's owner, or an administrator acting
    with `items:admin`."""
    if item.owner_id != principal.id and not principal.administers(Scope.ITEMS_ADMIN):
        raise NotItemOwner


class ItemReader:
    """The catalog's public reads: cache-aside, serving the JSON body rendered once.

    A hit is one cache read and no decoding; a miss reads an item with one Core statement
    on a plain connection, and a list page on a short session of its own, so no read holds
    a unit of work it never uses. A read that missed may still store the value it loaded
    before a concurrent commit; the TTL (CACHE_TTL_SECONDS) bounds how long it can live.
    """

    def __init__(
        self,
        reads: Reads,
        sessionmaker: async_sessionmaker[AsyncSession],
        cache: Cache,
        cursors: CursorCodec,
    ) -> None:
        self.reads = reads
        self.sessionmaker = sessionmaker
        self.cache = cache
        self.cursors = cursors

    @raises(ItemNotFound)
    async def get(self, item_id: int) -> JSONBody:
        async def load() -> bytes:
            row = await find_item(self.reads, item_id)
            if row is None:
                raise ItemNotFound
            return JSONBody.of(ItemRead.model_validate(dict(row))).data

        return JSONBody(await self.cache.get_or_set(item_key(item_id), load, codec=RAW))

    @raises(PageParams.of, PageParams.window)
    async def search(self, search: ItemSearch) -> JSONBody:
        query = search.query()
        window = PageParams.of(search, self.cursors).window(LISTS_NAMESPACE, query)

        async def load() -> bytes:
            async with self.sessionmaker() as session:
                rows = await ItemRepository(session).search(query, window)
            return JSONBody.of(page_of(ItemRead, rows, window)).data

        data = await self.cache.get_or_set(
            page_key(query, window), load, codec=RAW, namespace=LISTS_NAMESPACE
        )
        return JSONBody(data)


class ItemService:
    """The catalog's writes: owner-only changes, and the stock that orders reserve and
    release; every change invalidates the cached reads once it commits."""

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

    @raises(UnknownItems, OutOfStock)
    async def reserve(self, lines: Sequence[StockLine]) -> list[ReservedItem]:
        """Take every line's stock, at the current prices, or raise; the request's rollback
        undoes a partial take. The result follows the order of `lines`.

        Rows are locked in ascending item id order, the same in every transaction, so two
        reservations sharing items wait for each other instead of deadlocking.
        """
        unknown = await self._unknown_lines(lines)
        if unknown:
            raise UnknownItems(unknown)
        taken: dict[int, ReservedItem] = {}
        for index, line in sorted(enumerate(lines), key=lambda pair: pair[1].item_id):
            reserved = await self.items.take_stock(line.item_id, line.quantity)
            if reserved is None:
                # Short stock, or the item was deleted since the check above: an item that
                # vanished meanwhile is unknown to the catalog, not out of stock.
                vanished = await self._unknown_lines(lines)
                if vanished:
                    raise UnknownItems(vanished)
                raise OutOfStock(item_id=line.item_id, line=index, quantity=line.quantity)
            taken[index] = reserved
        # Stock is part of every cached item read.
        self._invalidate_after_commit(line.item_id for line in lines)
        return [taken[index] for index in range(len(lines))]

    async def _unknown_lines(self, lines: Sequence[StockLine]) -> dict[int, int]:
        """The lines whose item is not in the catalog, by index."""
        known = await self.items.existing_ids(line.item_id for line in lines)
        return {
            index: line.item_id for index, line in enumerate(lines) if line.item_id not in known
        }

    async def release(self, lines: Sequence[StockLine]) -> None:
        """Return reserved stock (a cancelled order), in the same lock order as `reserve`."""
        for line in sorted(lines, key=lambda line: line.item_id):
            await self.items.return_stock(line.item_id, line.quantity)
        self._invalidate_after_commit(line.item_id for line in lines)

    def _invalidate_after_commit(self, item_ids: Iterable[int]) -> None:
        """Forget the cached reads of these items, and every cached list, once the request
        commits. After, not before: invalidating earlier would let a concurrent read put
        the old row back."""
        keys = [item_key(item_id) for item_id in item_ids]
        cache = self.cache

        async def invalidate() -> None:
            if keys:
                await cache.delete(*keys)
            await cache.bump(LISTS_NAMESPACE)

        after_commit(self.session, invalidate)

    async def _get_item(self, item_id: int) -> Item:
        item = await self.items.get(item_id)
        if item is None:
            raise ItemNotFound
        return item
