from typing import Annotated

from fastapi import Depends

from app.api.deps import ResourcesDep, SessionDep
from app.domains.users.service import UserService


async def get_user_service(session: SessionDep, resources: ResourcesDep) -> UserService:
    return UserService(session, passwords=resources.passwords)


UserServiceDep = Annotated[UserService, Depends(get_user_service)]
