from sqlalchemy.ext.asyncio import AsyncSession

from app.core.cache import Cache
from app.core.db.replicas import Replicas
from app.core.db.transactions import after_commit
from app.core.errors import raises
from app.core.pagination import Page, PageParams, page_of
from app.domains.auth.schemas import Principal, Scope
from app.domains.posts.exceptions import NotPostAuthor, PostNotFound
from app.domains.posts.models import Post
from app.domains.posts.repository import PostRepository
from app.domains.posts.schemas import PostCreate, PostRead, PostUpdate

# The posts' fence (app.core.cache): raised after every commit that changes a post, so the
# public reads, which a read replica may serve, never show a post as it was before.
POSTS_FENCE = "posts"


def fence_after_commit(session: AsyncSession, cache: Cache) -> None:
    """Once the request commits, reads of posts see its changes (`POSTS_FENCE`)."""

    async def raise_fence() -> None:
        await cache.raise_fence(POSTS_FENCE)

    after_commit(session, raise_fence)


def ensure_author(principal: Principal, post: Post, *, admin_allowed: bool) -> None:
    """Authors change their posts; administrators acting with `posts:admin` may only remove
    them (moderation), never put words in someone else's name."""
    if post.author_id == principal.id or (
        admin_allowed and principal.administers(Scope.POSTS_ADMIN)
    ):
        return
    raise NotPostAuthor


class PostService:
    """Posts' reads, which a read replica may serve, and their writes on the request's
    transaction."""

    def __init__(self, session: AsyncSession, cache: Cache, replicas: Replicas) -> None:
        self.session = session
        self.posts = PostRepository(session)
        self.cache = cache
        self.replicas = replicas

    @raises(PostNotFound)
    async def get(self, post_id: int) -> PostRead:
        since = await self.cache.fence(POSTS_FENCE)
        post = await self.replicas.run(since, lambda session: PostRepository(session).get(post_id))
        if post is None:
            raise PostNotFound
        return PostRead.model_validate(post)

    @raises(PageParams.window)
    async def list_newest(self, page: PageParams) -> Page[PostRead]:
        window = page.window("posts")
        since = await self.cache.fence(POSTS_FENCE)
        rows = await self.replicas.run(
            since, lambda session: PostRepository(session).list_newest(window)
        )
        return page_of(PostRead, rows, window)

    async def create(self, principal: Principal, data: PostCreate) -> PostRead:
        post = await self.posts.add(Post(**data.model_dump(), author_id=principal.id))
        fence_after_commit(self.session, self.cache)
        return PostRead.model_validate(post)

    @raises(NotPostAuthor, PostNotFound)
    async def update(self, principal: Principal, post_id: int, changes: PostUpdate) -> PostRead:
        post = await self._get_post(post_id)
        ensure_author(principal, post, admin_allowed=False)
        changes.apply_to(post)
        await self.session.flush()
        fence_after_commit(self.session, self.cache)
        return PostRead.model_validate(post)

    @raises(NotPostAuthor, PostNotFound)
    async def delete(self, principal: Principal, post_id: int) -> None:
        post = await self._get_post(post_id)
        ensure_author(principal, post, admin_allowed=True)
        await self.posts.delete(post)
        fence_after_commit(self.session, self.cache)

    async def _get_post(self, post_id: int) -> Post:
        post = await self.posts.get(post_id)
        if post is None:
            raise PostNotFound
        return post
