"""The job log: a transactional outbox of typed messages, each delivered by its handler;
and the email it sends (`email`, bodies from `templates`).

A request writes an `OutboxMessage` in its own transaction (`MessageType.enqueue`), so the
message exists exactly when the change does; a dedup key makes enqueuing the same effect
twice a no-op. The `OutboxDispatcher` delivers it afterwards:

1. it claims due messages in a short transaction (`FOR UPDATE SKIP LOCKED`, so any number of
   workers and replicas share the table without waiting on each other) and sets a lease;
2. it calls the topic's handler outside any transaction, so a slow SMTP server or webhook
   receiver never holds a database connection or lock;
3. it marks the message delivered, or schedules a retry with exponential backoff and jitter,
   or gives up after the maximum number of attempts and logs the message as dead.

After a commit that enqueued, `announce()` wakes the local dispatcher and, on PostgreSQL,
every other one through a NOTIFY sent after the commit, at most one per short interval per
process (`wakeups`); polling remains the fallback. A worker that dies
mid-delivery leaves only a lease behind; once it expires another worker claims the message
again. Delivery is therefore at least once: handlers should tolerate a rare repeat (the
email handler gives each message a stable Message-ID, webhooks a stable `webhook-id`).

app.core knows no domain: the composition root (`app.jobs`) registers each topic's handler,
and the domains' periodic chores (`Chore`), which running dispatchers do between claims.
"""

from app.core.jobs.dispatcher import OutboxDispatcher, backoff_delay
from app.core.jobs.maintenance import Chore, dead_messages, purge_delivered, retry_dead
from app.core.jobs.messages import Delivery, Handler, MessageType
from app.core.jobs.models import (
    NewMessage,
    OutboxMessage,
    OutboxStatus,
    enqueue,
    enqueue_on,
    requeue,
    take_enqueued,
)
from app.core.jobs.wakeups import notify

__all__ = [
    "Chore",
    "Delivery",
    "Handler",
    "MessageType",
    "NewMessage",
    "OutboxDispatcher",
    "OutboxMessage",
    "OutboxStatus",
    "backoff_delay",
    "dead_messages",
    "enqueue",
    "enqueue_on",
    "notify",
    "purge_delivered",
    "requeue",
    "retry_dead",
    "take_enqueued",
]
