"""What a live event stream sends, in the `text/event-stream` format."""

import json
from dataclasses import dataclass

from app.domains.orders.events import OrderEvent, envelope


@dataclass(frozen=True, slots=True)
class Position:
    """A place in the stream: the last event sent, as (writing transaction, id). On SQLite,
    where ids are commit order, the transaction is always 0."""

    xact: int
    id: int


def live_event(event_id: int, event: OrderEvent) -> bytes:
    # json.dumps escapes every line break, so the data is one `data:` line.
    data = json.dumps(envelope(event), separators=(",", ":"))
    return f"id: {event_id}\nevent: {event.type.value}\ndata: {data}\n\n".encode()


# Sent first: it carries the response's head through every proxy at once, and asks a client
# whose stream ended (a replica stopping) to come back within a second.
OPENING = b"retry: 1000\n\n"
HEARTBEAT = b": heartbeat\n\n"
# The events after the client's Last-Event-ID are no longer all kept: it should reload
# what it shows, then go on from the events that follow.
RESET = b'event: reset\ndata: {"reason":"last event id is older than the retention"}\n\n'
