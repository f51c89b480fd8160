from typing import Annotated

from fastapi import Depends

from app.core.deps import PasswordHasherDep, SessionDep
from app.domains.users.service import UserService


async def get_user_service(session: SessionDep, passwords: PasswordHasherDep) -> UserService:
    return UserService(session, passwords=passwords)


UserServiceDep = Annotated[UserService, Depends(get_user_service)]
