from typing import Annotated

from fastapi import Depends

from app.core.deps import SessionDep
from app.domains.posts.service import PostService


async def get_post_service(session: SessionDep) -> PostService:
    return PostService(session)


PostServiceDep = Annotated[PostService, Depends(get_post_service)]
