from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db.keyset import Slice, SortKey, Window, keyset_page
from app.domains.posts.models import Post

NEWEST_FIRST = SortKey(Post.created_at, Post.id, descending=True)


class PostRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, post_id: int) -> Post | None:
        return await self.session.get(Post, post_id)

    async def add(self, post: Post) -> Post:
        self.session.add(post)
        await self.session.flush()
        return post

    async def delete(self, post: Post) -> None:
        await self.session.delete(post)
        await self.session.flush()

    async def list_newest(self, window: Window) -> Slice[Post]:
        return await keyset_page(self.session, select(Post), NEWEST_FIRST, window)

    async def newest_by_author(self, author_id: int, *, limit: int) -> list[Post]:
        rows = await self.session.scalars(
            select(Post)
            .where(Post.author_id == author_id)
            .order_by(*NEWEST_FIRST.ordering())
            .limit(limit)
        )
        return list(rows)
