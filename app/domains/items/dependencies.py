from typing import Annotated

from fastapi import Depends

from app.core.deps import CacheDep, SessionDep, reaches_database, uses_platform
from app.core.resources import Resources
from app.domains.items.service import ItemReader, ItemService


@reaches_database
@uses_platform
async def get_item_reader(platform: Resources) -> ItemReader:
    return ItemReader(platform.replicas, platform.cache, platform.cursors)


# The public reads: no request session, so a cached read never creates one.
ItemReaderDep = Annotated[ItemReader, Depends(get_item_reader)]


async def get_item_service(session: SessionDep, cache: CacheDep) -> ItemService:
    return ItemService(session, cache)


ItemServiceDep = Annotated[ItemService, Depends(get_item_service)]
