from typing import Annotated

from fastapi import Depends, Header, Security

from app.core.deps import SessionDep, SessionmakerDep, TracerDep
from app.core.http.limits import RateLimit
from app.domains.audit.dependencies import AuditTrailDep
from app.domains.auth.dependencies import get_admin, get_principal, get_writer
from app.domains.auth.schemas import Principal, Scope
from app.domains.items.dependencies import ItemServiceDep
from app.domains.orders.service import OrderService

OrderReader = Annotated[Principal, Security(get_principal, scopes=[Scope.ORDERS_READ])]
OrderWriter = Annotated[Principal, Security(get_writer, scopes=[Scope.ORDERS_WRITE])]
OrderAdmin = Annotated[Principal, Security(get_admin, scopes=[Scope.ORDERS_ADMIN])]


async def get_order_service(
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    items: ItemServiceDep,
    tracer: TracerDep,
    audit: AuditTrailDep,
) -> OrderService:
    return OrderService(session, sessionmaker=sessionmaker, items=items, tracer=tracer, audit=audit)


OrderServiceDep = Annotated[OrderService, Depends(get_order_service)]


async def ordering_user(principal: OrderWriter) -> str:
    return str(principal.id)


# Per user rather than per address: many customers can share one NAT, and one customer can
# switch networks.
order_rate_limit = RateLimit(
    lambda settings: settings.rate_limit_orders, scope="orders", key=ordering_user
)

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9._:~+/=-]+$",
        description="Makes a retried order request safe: repeats return the first answer "
        "for 24 hours (1-255 of A-Z a-z 0-9 . _ : ~ + / = -)",
    ),
]
