"""Transactional outbox: side effects that must not be lost, delivered after commit.

A request writes an `OutboxMessage` in its own transaction (`enqueue`), so the message exists
exactly when the change does. The `OutboxDispatcher` delivers it afterwards:

1. it claims due messages in a short transaction (`FOR UPDATE SKIP LOCKED`, so any number of
   workers and replicas share the table without waiting on each other) and sets a lease;
2. it calls the topic's handler outside any transaction, so a slow SMTP server never holds a
   database connection or lock;
3. it marks the message delivered, or schedules a retry with exponential backoff and jitter,
   or gives up after the maximum number of attempts and logs the message as dead.

A worker that dies mid-delivery leaves only a lease behind; once it expires another worker
claims the message again. Delivery is therefore at least once: handlers should tolerate a rare
repeat (the email handler gives each message a stable Message-ID for that reason).
"""

from app.core.outbox.dispatcher import Delivery, Handler, OutboxDispatcher, backoff_delay
from app.core.outbox.models import OutboxMessage, OutboxStatus, enqueue, take_enqueued

__all__ = [
    "Delivery",
    "Handler",
    "OutboxDispatcher",
    "OutboxMessage",
    "OutboxStatus",
    "backoff_delay",
    "enqueue",
    "take_enqueued",
]
