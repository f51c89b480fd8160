import hashlib
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.cache import Cache, ModelCodec
from app.core.db import after_commit
from app.core.pagination import Page, page_of
from app.domains.auth.schemas import Principal
from app.domains.items.exceptions import ItemNotFound, NotItemOwner
from app.domains.items.models import Item
from app.domains.items.repository import ItemRepository
from app.domains.items.schemas import ItemCreate, ItemQuery, ItemRead, ItemUpdate

# Every cached list page lives under this namespace, so one bump retires all of them.
LISTS_NAMESPACE = "items"
_ITEM_CODEC = ModelCodec(ItemRead)
_PAGE_CODEC = ModelCodec(Page[ItemRead])


def item_key(item_id: int) -> str:
    return f"item:{item_id}"


def page_key(query: ItemQuery, *, offset: int, limit: int) -> str:
    # Hashed: a search text of up to 100 characters should not become part of a Redis key.
    canonical = f"{query.model_dump_json()}|{offset}|{limit}"
    return f"page:{hashlib.sha256(canonical.encode()).hexdigest()}"


def invalidate_after_commit(session: AsyncSession, cache: Cache, item_ids: Iterable[int]) -> None:
    """Forget the cached reads of these items, and every cached list, once `session` commits.

    After, not before: invalidating earlier would let a concurrent read put the old row back.
    Anything that changes items (the catalog, and orders moving stock) goes through here.
    """
    keys = [item_key(item_id) for item_id in item_ids]

    async def invalidate() -> None:
        if keys:
            await cache.delete(*keys)
        await cache.bump(LISTS_NAMESPACE)

    after_commit(session, invalidate)


def ensure_can_change(principal: Principal, item: Item) -> None:
    """The one ownership rule of the catalog: an item's owner or an administrator."""
    if item.owner_id != principal.id and not principal.is_admin:
        raise NotItemOwner


class ItemService:
    """The catalog: cache-aside public reads, owner-only writes that invalidate on commit.

    A read that missed may still write the value it loaded from before a concurrent
    commit; the TTL (CACHE_TTL_SECONDS) bounds how long such a value can live.
    """

    def __init__(self, session: AsyncSession, cache: Cache) -> None:
        self.session = session
        self.items = ItemRepository(session)
        self.cache = cache

    async def get(self, item_id: int) -> ItemRead:
        async def load() -> ItemRead:
            return ItemRead.model_validate(await self._get_item(item_id))

        return await self.cache.get_or_set(item_key(item_id), load, codec=_ITEM_CODEC)

    async def search(self, query: ItemQuery, *, offset: int, limit: int) -> Page[ItemRead]:
        async def load() -> Page[ItemRead]:
            rows, total = await self.items.search(query, offset=offset, limit=limit)
            return page_of(ItemRead, rows, total, offset=offset, limit=limit)

        return await self.cache.get_or_set(
            page_key(query, offset=offset, limit=limit),
            load,
            codec=_PAGE_CODEC,
            namespace=LISTS_NAMESPACE,
        )

    async def create(self, principal: Principal, data: ItemCreate) -> ItemRead:
        item = await self.items.add(Item(**data.model_dump(), owner_id=principal.id))
        invalidate_after_commit(self.session, self.cache, [])
        return ItemRead.model_validate(item)

    async def update(self, principal: Principal, item_id: int, changes: ItemUpdate) -> ItemRead:
        item = await self._get_item(item_id)
        ensure_can_change(principal, item)
        for field, value in changes.model_dump(exclude_unset=True).items():
            setattr(item, field, value)
        await self.session.flush()
        invalidate_after_commit(self.session, self.cache, [item_id])
        return ItemRead.model_validate(item)

    async def delete(self, principal: Principal, item_id: int) -> None:
        item = await self._get_item(item_id)
        ensure_can_change(principal, item)
        await self.items.delete(item)
        invalidate_after_commit(self.session, self.cache, [item_id])

    async def _get_item(self, item_id: int) -> Item:
        item = await self.items.get(item_id)
        if item is None:
            raise ItemNotFound
        return item
