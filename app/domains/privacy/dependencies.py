from typing import Annotated

from fastapi import Depends

from app.core.deps import CacheDep, SessionDep
from app.domains.auth.dependencies import AuthServiceDep
from app.domains.privacy.service import PrivacyService


async def get_privacy_service(
    session: SessionDep, cache: CacheDep, auth: AuthServiceDep
) -> PrivacyService:
    return PrivacyService(session, cache, auth=auth)


PrivacyServiceDep = Annotated[PrivacyService, Depends(get_privacy_service)]
