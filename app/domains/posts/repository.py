from sqlalchemy import select

from app.core.db.keyset import Slice, SortKey, Window
from app.core.db.repository import Repository
from app.domains.posts.models import Post

NEWEST_FIRST = SortKey(Post.created_at, Post.id, descending=True)


class PostRepository(Repository[Post]):
    model = Post

    async def list_newest(self, window: Window) -> Slice[Post]:
        return await self.page(NEWEST_FIRST, window)

    async def newest_by_author(self, author_id: int, *, limit: int) -> list[Post]:
        rows = await self.session.scalars(
            select(Post)
            .where(Post.author_id == author_id)
            .order_by(*NEWEST_FIRST.ordering())
            .limit(limit)
        )
        return list(rows)
