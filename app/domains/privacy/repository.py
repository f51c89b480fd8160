"""The caller's rows across the domains below, read (and their posts deleted) in one place.

Privacy owns no table: like the dashboard it is a view over others', and the statements
for "everything of one user" live here rather than in each of those domains.
"""

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.domains.auth.models import ApiKey
from app.domains.auth.repository import NEWEST_KEYS_FIRST
from app.domains.items.models import Item
from app.domains.orders.models import Order
from app.domains.posts.models import Post


class AccountDataRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def orders_of(self, user_id: int) -> list[Order]:
        rows = await self.session.scalars(
            select(Order)
            .where(Order.user_id == user_id)
            .options(selectinload(Order.lines))
            .order_by(Order.id)
        )
        return list(rows)

    async def posts_of(self, user_id: int) -> list[Post]:
        rows = await self.session.scalars(
            select(Post).where(Post.author_id == user_id).order_by(Post.id)
        )
        return list(rows)

    async def items_of(self, user_id: int) -> list[Item]:
        rows = await self.session.scalars(
            select(Item).where(Item.owner_id == user_id).order_by(Item.id)
        )
        return list(rows)

    async def api_keys_of(self, user_id: int) -> list[ApiKey]:
        rows = await self.session.scalars(
            select(ApiKey).where(ApiKey.user_id == user_id).order_by(*NEWEST_KEYS_FIRST.ordering())
        )
        return list(rows)

    async def delete_posts_of(self, user_id: int) -> list[int]:
        """Delete the user's posts; the ids of those deleted."""
        result = await self.session.execute(
            delete(Post).where(Post.author_id == user_id).returning(Post.id)
        )
        return sorted(result.scalars())
