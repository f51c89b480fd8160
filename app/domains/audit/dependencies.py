from typing import Annotated

from fastapi import Depends

from app.core.deps import ClientIPDep, ReplicasDep, SessionDep, SessionmakerDep
from app.core.observability.context import request_id_var
from app.domains.audit.service import AuditService, AuditTrail


async def get_audit_trail(
    session: SessionDep, sessionmaker: SessionmakerDep, ip: ClientIPDep
) -> AuditTrail:
    # The id the response will carry in X-Request-ID, so an event leads to its request.
    return AuditTrail(session, sessionmaker, request_id=request_id_var.get(), ip=ip)


AuditTrailDep = Annotated[AuditTrail, Depends(get_audit_trail)]


async def get_audit_service(replicas: ReplicasDep) -> AuditService:
    return AuditService(replicas)


AuditServiceDep = Annotated[AuditService, Depends(get_audit_service)]
