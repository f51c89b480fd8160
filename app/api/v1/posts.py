"""Posts: anyone reads them, newest first; authors write, and administrators may remove."""

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, Security, status

from app.core.deps import PageParamsDep
from app.core.errors import error_responses
from app.core.http.routes import ApiRoute
from app.core.pagination import Page
from app.core.types import MAX_ID
from app.domains.auth.dependencies import get_writer
from app.domains.auth.schemas import Principal, Scope
from app.domains.posts.dependencies import PostServiceDep
from app.domains.posts.schemas import PostCreate, PostRead, PostUpdate
from app.domains.posts.service import PostService

router = APIRouter(prefix="/posts", tags=["posts"], route_class=ApiRoute)

PostId = Annotated[int, Path(ge=1, le=MAX_ID, description="the post's id")]
PostWriter = Annotated[Principal, Security(get_writer, scopes=[Scope.POSTS_WRITE])]


@router.get(
    "", summary="List posts, newest first", responses=error_responses(PostService.list_newest)
)
async def list_posts(page: PageParamsDep, posts: PostServiceDep) -> Page[PostRead]:
    return await posts.list_newest(page)


@router.get("/{post_id}", summary="Read a post", responses=error_responses(PostService.get))
async def read_post(post_id: PostId, posts: PostServiceDep) -> PostRead:
    return await posts.get(post_id)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Write a post",
    responses=error_responses(get_writer),
)
async def create_post(
    data: PostCreate,
    principal: PostWriter,
    posts: PostServiceDep,
    request: Request,
    response: Response,
) -> PostRead:
    post = await posts.create(principal, data)
    response.headers["Location"] = request.app.url_path_for("read_post", post_id=post.id)
    return post


@router.patch(
    "/{post_id}",
    summary="Change your post",
    responses=error_responses(get_writer, PostService.update),
)
async def update_post(
    post_id: PostId, changes: PostUpdate, principal: PostWriter, posts: PostServiceDep
) -> PostRead:
    return await posts.update(principal, post_id, changes)


@router.delete(
    "/{post_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a post (its author, or an administrator with posts:admin)",
    responses=error_responses(get_writer, PostService.delete),
)
async def delete_post(post_id: PostId, principal: PostWriter, posts: PostServiceDep) -> None:
    await posts.delete(principal, post_id)
