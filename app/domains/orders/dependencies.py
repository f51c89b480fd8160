from typing import Annotated

from fastapi import Depends, Header, Request, Security

from app.core.deps import reaches_database, uses_platform
from app.core.http.clients import client_address
from app.core.http.limits import RateLimit
from app.core.observability.context import request_id_var
from app.core.resources import Resources
from app.domains.audit.schemas import AuditOrigin
from app.domains.auth.dependencies import get_admin, get_principal, get_writer
from app.domains.auth.schemas import Principal, Scope
from app.domains.orders.prices import price_hints
from app.domains.orders.repository import order_writes
from app.domains.orders.service import OrderService

OrderReader = Annotated[Principal, Security(get_principal, scopes=[Scope.ORDERS_READ])]
OrderWriter = Annotated[Principal, Security(get_writer, scopes=[Scope.ORDERS_WRITE])]
OrderAdmin = Annotated[Principal, Security(get_admin, scopes=[Scope.ORDERS_ADMIN])]


@reaches_database
@uses_platform
async def get_order_service(platform: Resources, request: Request) -> OrderService:
    """One dependency for the whole service, and no request session: an order is placed or
    changed in a transaction of its own (repository.writes), and read on a short session."""
    return OrderService(
        writes=order_writes(platform.engine, platform.calls, platform.tracer),
        sessionmaker=platform.sessionmaker,
        cache=platform.cache,
        announce=platform.outbox.announce,
        tracer=platform.tracer,
        hints=price_hints(platform.engine),
        # The id the response will carry in X-Request-ID, so an event leads to its request.
        origin=AuditOrigin.of(
            request_id_var.get(), client_address(request, platform.settings.trusted_proxies)
        ),
    )


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
