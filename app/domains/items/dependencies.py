from typing import Annotated

from fastapi import Depends

from app.core.deps import CacheDep, EngineDep, SessionDep, SessionmakerDep
from app.domains.items.service import ItemReader, ItemService


async def get_item_reader(
    engine: EngineDep, sessionmaker: SessionmakerDep, cache: CacheDep
) -> ItemReader:
    return ItemReader(engine, sessionmaker, cache)


# The public reads: no request session, so a cached read never creates one.
ItemReaderDep = Annotated[ItemReader, Depends(get_item_reader)]


async def get_item_service(session: SessionDep, cache: CacheDep) -> ItemService:
    return ItemService(session, cache)


ItemServiceDep = Annotated[ItemService, Depends(get_item_service)]
