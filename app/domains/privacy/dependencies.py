from typing import Annotated

from fastapi import Depends

from app.core.deps import SessionDep
from app.domains.auth.dependencies import AuthServiceDep
from app.domains.privacy.service import PrivacyService


async def get_privacy_service(session: SessionDep, auth: AuthServiceDep) -> PrivacyService:
    return PrivacyService(session, auth=auth)


PrivacyServiceDep = Annotated[PrivacyService, Depends(get_privacy_service)]
