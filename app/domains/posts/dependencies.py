from typing import Annotated

from fastapi import Depends

from app.core.deps import CacheDep, ReplicasDep, SessionDep
from app.domains.posts.service import PostService


async def get_post_service(
    session: SessionDep, cache: CacheDep, replicas: ReplicasDep
) -> PostService:
    return PostService(session, cache, replicas)


PostServiceDep = Annotated[PostService, Depends(get_post_service)]
