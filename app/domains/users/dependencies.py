from typing import Annotated

from fastapi import Depends, Security

from app.api.deps import ResourcesDep, SessionDep
from app.domains.auth.dependencies import get_principal
from app.domains.auth.schemas import Principal, Scope
from app.domains.users.service import UserService


async def get_user_service(session: SessionDep, resources: ResourcesDep) -> UserService:
    return UserService(session, passwords=resources.passwords)


UserServiceDep = Annotated[UserService, Depends(get_user_service)]

# The dashboard shows orders, so it asks for the scope that reading orders needs.
DashboardReader = Annotated[Principal, Security(get_principal, scopes=[Scope.ORDERS_READ])]
