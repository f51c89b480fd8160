from typing import Annotated

from fastapi import Depends, Request

from app.core.deps import CacheDep, SessionDep, reaches_database, resources_of
from app.domains.items.service import ItemReader, ItemService


@reaches_database
async def get_item_reader(request: Request, cache: CacheDep) -> ItemReader:
    resources = resources_of(request)
    return ItemReader(resources.reads, resources.sessionmaker, cache)


# The public reads: no request session, so a cached read never creates one.
ItemReaderDep = Annotated[ItemReader, Depends(get_item_reader)]


async def get_item_service(session: SessionDep, cache: CacheDep) -> ItemService:
    return ItemService(session, cache)


ItemServiceDep = Annotated[ItemService, Depends(get_item_service)]
