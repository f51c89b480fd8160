from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domains.posts.models import Post


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

    async def list_newest(self, *, offset: int, limit: int) -> tuple[list[Post], int]:
        total = await self.session.scalar(select(func.count()).select_from(Post))
        rows = await self.session.scalars(
            select(Post)
            .order_by(Post.created_at.desc(), Post.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return list(rows), total or 0

    async def newest_by_author(self, author_id: int, *, limit: int) -> list[Post]:
        rows = await self.session.scalars(
            select(Post)
            .where(Post.author_id == author_id)
            .order_by(Post.created_at.desc(), Post.id.desc())
            .limit(limit)
        )
        return list(rows)
