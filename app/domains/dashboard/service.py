import asyncio
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db.keyset import Slice, Window
from app.domains.auth.schemas import Principal
from app.domains.dashboard.schemas import Dashboard, DashboardStats
from app.domains.orders.models import Order
from app.domains.orders.repository import OrderRepository
from app.domains.orders.schemas import OrderRead
from app.domains.posts.models import Post
from app.domains.posts.repository import PostRepository
from app.domains.posts.schemas import PostRead

RECENT = 5


class DashboardService:
    """A read model over orders and posts: it owns no table, so it has no repository or
    models of its own, and reads through theirs."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def build(self, principal: Principal) -> Dashboard:
        """Stats, newest orders and newest posts, read concurrently.

        Each read gets a session of its own: one AsyncSession must never be used by two
        tasks at once, and separate connections are what lets the three queries overlap.
        """
        orders, total_spent, newest_posts = await asyncio.gather(
            self._recent_orders(principal.id), self._spent(principal.id), self._posts(principal.id)
        )
        return Dashboard(
            stats=DashboardStats(order_count=orders.total or 0, total_spent=total_spent),
            recent_orders=[OrderRead.model_validate(order) for order in orders.rows],
            recent_posts=[PostRead.model_validate(post) for post in newest_posts],
        )

    async def _recent_orders(self, user_id: int) -> Slice[Order]:
        async with self.sessionmaker() as session:
            return await OrderRepository(session).list_page(
                owner_id=user_id, user_id=None, status=None, window=Window(offset=0, limit=RECENT)
            )

    async def _spent(self, user_id: int) -> Decimal:
        async with self.sessionmaker() as session:
            return await OrderRepository(session).spent_by(user_id)

    async def _posts(self, user_id: int) -> list[Post]:
        async with self.sessionmaker() as session:
            return await PostRepository(session).newest_by_author(user_id, limit=RECENT)
