from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import raises
from app.core.pagination import Page, PageParams, page_of
from app.domains.auth.schemas import Principal, Scope
from app.domains.posts.exceptions import NotPostAuthor, PostNotFound
from app.domains.posts.models import Post
from app.domains.posts.repository import PostRepository
from app.domains.posts.schemas import PostCreate, PostRead, PostUpdate


def ensure_author(principal: Principal, post: Post, *, admin_allowed: bool) -> None:
    """Authors change their posts; administrators acting with `posts:admin` may only remove
    them (moderation), never put words in someone else's name."""
    if post.author_id == principal.id or (
        admin_allowed and principal.administers(Scope.POSTS_ADMIN)
    ):
        return
    raise NotPostAuthor


class PostService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.posts = PostRepository(session)

    @raises(PostNotFound)
    async def get(self, post_id: int) -> PostRead:
        return PostRead.model_validate(await self._get_post(post_id))

    @raises(PageParams.window)
    async def list_newest(self, page: PageParams) -> Page[PostRead]:
        window = page.window("posts")
        return page_of(PostRead, await self.posts.list_newest(window), window)

    async def create(self, principal: Principal, data: PostCreate) -> PostRead:
        post = await self.posts.add(Post(**data.model_dump(), author_id=principal.id))
        return PostRead.model_validate(post)

    @raises(NotPostAuthor, PostNotFound)
    async def update(self, principal: Principal, post_id: int, changes: PostUpdate) -> PostRead:
        post = await self._get_post(post_id)
        ensure_author(principal, post, admin_allowed=False)
        changes.apply_to(post)
        await self.session.flush()
        return PostRead.model_validate(post)

    @raises(NotPostAuthor, PostNotFound)
    async def delete(self, principal: Principal, post_id: int) -> None:
        post = await self._get_post(post_id)
        ensure_author(principal, post, admin_allowed=True)
        await self.posts.delete(post)

    async def _get_post(self, post_id: int) -> Post:
        post = await self.posts.get(post_id)
        if post is None:
            raise PostNotFound
        return post
