"""Typed messages: a topic bound to the schema of its payload, enqueued and handled as such."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.jobs.models import NewMessage, enqueue, requeue

P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One claimed message, handed to its topic's handler."""

    id: int
    topic: str
    payload: dict[str, Any]
    attempt: int
    # A handler that keeps records of its own (webhook deliveries) marks them dead when
    # this attempt fails too.
    last_attempt: bool


Handler = Callable[[Delivery], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class MessageType(Generic[P]):
    """A kind of job: its topic and its payload's schema.

    Whoever causes the job calls `enqueue` inside its transaction; the composition root
    registers a handler for the topic with the dispatcher (`OutboxDispatcher.register`).
    """

    topic: str
    schema: type[P]

    async def enqueue(
        self, session: AsyncSession, payload: P, *, dedup_key: str | None = None
    ) -> bool:
        """Queue `payload` in the caller's transaction; False if `dedup_key` is taken."""
        return await enqueue(
            session, self.topic, payload.model_dump(mode="json"), dedup_key=dedup_key
        )

    async def requeue(self, session: AsyncSession, payload: P, *, dedup_key: str) -> bool:
        """Send the job with `dedup_key` again (`app.core.jobs.models.requeue`)."""
        return await requeue(
            session, self.topic, payload.model_dump(mode="json"), dedup_key=dedup_key
        )

    def message(self, payload: P, *, dedup_key: str | None = None) -> NewMessage:
        """`payload` as a message of this type, for writes that queue it without a session."""
        return NewMessage(self.topic, payload.model_dump(mode="json"), dedup_key)

    def handler(self, handle: Callable[[P, Delivery], Awaitable[None]]) -> Handler:
        """A dispatcher handler that hands `handle` the payload parsed into its schema."""
        schema = self.schema

        async def deliver(delivery: Delivery) -> None:
            await handle(schema.model_validate(delivery.payload), delivery)

        return deliver
