from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Header, Query

from app.core.db.base import utcnow
from app.core.deps import reaches_database, uses_platform
from app.core.resources import Resources
from app.domains.events.service import EventFeed
from app.domains.orders.dependencies import OrderReader
from app.domains.orders.service import owner_filter

# An event id as this service sends it (a positive 64-bit integer), or empty, which an
# EventSource that has received no id yet may send.
_EVENT_ID = r"^[0-9]{0,18}$"


async def get_last_event_id(
    header: Annotated[
        str,
        Header(
            alias="Last-Event-ID",
            pattern=_EVENT_ID,
            description="the last event received; what a browser's EventSource sends itself",
        ),
    ] = "",
    query: Annotated[
        str,
        Query(
            alias="last_event_id",
            pattern=_EVENT_ID,
            description="as the Last-Event-ID header, for clients that cannot set headers",
        ),
    ] = "",
) -> int | None:
    given = header or query
    return int(given) if given else None


LastEventId = Annotated[int | None, Depends(get_last_event_id)]


@reaches_database
@uses_platform
async def get_event_feed(platform: Resources, principal: OrderReader) -> EventFeed:
    settings = platform.settings
    # Other processes' commits reach this one's streams through the job log's listener.
    platform.outbox.listen()
    return EventFeed(
        platform.sessionmaker,
        platform.outbox.committed,
        user_id=principal.id,
        owner=owner_filter(principal),
        slots=platform.streams,
        heartbeat_seconds=settings.events_heartbeat_seconds,
        retention=timedelta(hours=settings.events_retention_hours),
        clock=utcnow,
    )


EventFeedDep = Annotated[EventFeed, Depends(get_event_feed)]
