from typing import Annotated

from fastapi import Depends

from app.core.deps import CacheDep, SessionDep
from app.domains.items.service import ItemService


async def get_item_service(session: SessionDep, cache: CacheDep) -> ItemService:
    return ItemService(session, cache)


ItemServiceDep = Annotated[ItemService, Depends(get_item_service)]
