from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Security

from app.core.deps import SessionDep, SettingsDep
from app.domains.audit.dependencies import AuditTrailDep
from app.domains.auth.dependencies import get_admin
from app.domains.auth.schemas import Principal, Scope
from app.domains.webhooks.service import WebhookService

WebhookAdmin = Annotated[Principal, Security(get_admin, scopes=[Scope.WEBHOOKS_ADMIN])]


async def get_webhook_service(
    session: SessionDep, settings: SettingsDep, audit: AuditTrailDep
) -> WebhookService:
    return WebhookService(
        session,
        audit=audit,
        allow_private_targets=settings.webhook_allow_private_targets,
        secret_overlap=timedelta(seconds=settings.webhook_secret_overlap_seconds),
    )


WebhookServiceDep = Annotated[WebhookService, Depends(get_webhook_service)]
