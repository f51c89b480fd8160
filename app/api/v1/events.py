"""Live order events over server-sent events."""

from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app.core.errors import PROBLEM_JSON, error_responses
from app.core.http.draining import draining
from app.core.http.routes import ApiRoute
from app.domains.auth.dependencies import get_principal
from app.domains.events.dependencies import EventFeedDep, LastEventId
from app.domains.events.service import EventFeed

router = APIRouter(prefix="/events", tags=["events"], route_class=ApiRoute)

# No proxy or cache may hold events back: nginx reads X-Accel-Buffering from the answer
# itself, so a stock configuration streams them too.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class HeldStream(StreamingResponse):
    """A stream that gives its slot back however it ends, even if it never began.

    Not FastAPI's `EventSourceResponse`: a route declaring that must be a generator, which
    runs only once the 200 has gone out, too late to refuse a stream over its user's limit.
    """

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[bytes], close: Callable[[], None]) -> None:
        super().__init__(content, headers=STREAM_HEADERS)
        self._close = close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The caller's dependency asks every authenticated answer to be private and stored
        # nowhere; a stream says the same in the one value every proxy knows for it.
        self.headers["Cache-Control"] = STREAM_HEADERS["Cache-Control"]
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._close()


# What an EventSource client reads from the stream, one event at a time (OpenAPI 3.1 has
# an event stream's schema describe each event); heartbeats are comments, not events.
EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Event",
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]{1,18}$", "description": "its place in the log"},
        "event": {"type": "string", "description": "its type: an order event, or `reset`"},
        "data": {
            "type": "string",
            "description": "JSON: the webhook envelope, or the reset's reason",
        },
        "retry": {"type": "integer", "description": "milliseconds to wait before reconnecting"},
    },
}


def _problems(responses: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """Error answers as what they are, problem documents: FastAPI would otherwise describe
    each under the route's own media type, as if a refusal were an event stream."""
    return {
        status: {
            "description": entry["description"],
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status, entry in responses.items()
    }


@router.get(
    "",
    response_class=HeldStream,
    status_code=200,
    summary="Stream the order events you may see as they happen, replaying any you missed",
    description="Each event is `id`, `event` (its type) and `data` (the webhook envelope); "
    "a comment line every EVENTS_HEARTBEAT_SECONDS. With `Last-Event-ID` every later event "
    "is sent first, with no gap and no duplicate; an id older than EVENTS_RETENTION_HOURS "
    "starts with `event: reset`. The stream ends when its server stops: reconnect.",
    response_description="The event stream (`text/event-stream`)",
    responses={
        200: {"content": {HeldStream.media_type: {"schema": EVENT_SCHEMA}}},
        **_problems(error_responses(get_principal, EventFeed.open)),
    },
)
async def stream_events(
    feed: EventFeedDep, last_event_id: LastEventId, request: Request
) -> HeldStream:
    opened = await feed.open(last_event_id)
    return HeldStream(feed.stream(opened, stop=draining(request.scope)), opened.close)
