from typing import Annotated

from fastapi import Depends

from app.core.deps import PasswordHasherDep, ReplicasDep, SessionDep, SettingsDep
from app.domains.audit.dependencies import AuditTrailDep
from app.domains.users.service import AccountLinks, UserService


async def get_account_links(session: SessionDep, settings: SettingsDep) -> AccountLinks:
    return AccountLinks(session, settings)


AccountLinksDep = Annotated[AccountLinks, Depends(get_account_links)]


async def get_user_service(
    session: SessionDep,
    passwords: PasswordHasherDep,
    links: AccountLinksDep,
    audit: AuditTrailDep,
    replicas: ReplicasDep,
) -> UserService:
    return UserService(session, passwords=passwords, links=links, audit=audit, replicas=replicas)


UserServiceDep = Annotated[UserService, Depends(get_user_service)]
