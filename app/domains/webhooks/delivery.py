"""Sending order events to webhook endpoints, as Standard Webhooks describes.

Two job log message types do the work. An `ORDER_EVENT` (queued by the order service) fans
out into one delivery record and one `WEBHOOK_DELIVERY` job per subscribed endpoint, in one
transaction, so a fan-out that runs twice still creates each delivery once. Each delivery
job then POSTs the stored body, signed afresh on every attempt; the job log retries it with
backoff until it succeeds or runs out of attempts.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db.base import utcnow
from app.core.db.transactions import independent_transaction
from app.core.jobs import Delivery, MessageType
from app.domains.orders.events import OrderEvent
from app.domains.webhooks.exceptions import WebhookTargetNotAllowed
from app.domains.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from app.domains.webhooks.repository import WebhookRepository
from app.domains.webhooks.schemas import WebhookDeliveryJob
from app.domains.webhooks.targets import checked_address

WEBHOOK_DELIVERY = MessageType("webhook.delivery", WebhookDeliveryJob)
SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of every secret, not a secret
SECRET_BYTES = 32
# Only the status matters; reading a little of the body lets a receiver finish its answer,
# and the cap keeps an endless one from holding the worker.
MAX_RESPONSE_BYTES = 64 * 1024


class DeliveryFailed(Exception):
    """The receiver did not accept the event; the job log retries it."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: HMAC-SHA256 of "{id}.{timestamp}.{body}"."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"


def event_body(event: OrderEvent) -> dict[str, object]:
    """What every endpoint receives: the same for every attempt."""
    return {
        "type": event.type.value,
        "timestamp": event.timestamp.isoformat(),
        "data": event.data.model_dump(mode="json"),
    }


def fan_out(
    sessionmaker: async_sessionmaker[AsyncSession], *, announce: Callable[[], Awaitable[None]]
) -> Callable[[OrderEvent, Delivery], Awaitable[None]]:
    """What handles an `ORDER_EVENT`: a delivery for every endpoint subscribed to it."""

    async def handle(event: OrderEvent, _: Delivery) -> None:
        queued = False
        async with independent_transaction(sessionmaker) as session:
            webhooks = WebhookRepository(session)
            for endpoint in await webhooks.subscribed(event.type):
                delivery_id = await webhooks.add_delivery(
                    endpoint_id=endpoint.id,
                    event_id=event.id,
                    event_type=event.type,
                    payload=event_body(event),
                )
                if delivery_id is not None:
                    queued |= await WEBHOOK_DELIVERY.enqueue(
                        session,
                        WebhookDeliveryJob(delivery_id=delivery_id),
                        dedup_key=f"webhook.delivery:{delivery_id}",
                    )
        if queued:
            await announce()

    return handle


class WebhookSender:
    """What handles a `WEBHOOK_DELIVERY`: one signed POST, its outcome recorded."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        timeout: float,
        allow_private: bool,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._timeout = timeout
        self._allow_private = allow_private

    async def deliver(self, job: WebhookDeliveryJob, delivery: Delivery) -> None:
        async with self._sessionmaker() as session:
            found = await WebhookRepository(session).delivery_with_endpoint(job.delivery_id)
        if found is None:
            return  # the endpoint was deleted, and its deliveries with it
        record, endpoint = found
        status_code: int | None = None
        failure: Exception | None = None
        try:
            if not endpoint.is_active:
                raise DeliveryFailed("the endpoint is deactivated")
            status_code = await self._post(endpoint, record)
            if not 200 <= status_code < 300:
                raise DeliveryFailed(f"the receiver answered {status_code}")
        except (DeliveryFailed, WebhookTargetNotAllowed, httpx.HTTPError, TimeoutError) as error:
            failure = error
        if failure is None:
            status = DeliveryStatus.DELIVERED
        else:
            status = DeliveryStatus.DEAD if delivery.last_attempt else DeliveryStatus.FAILED
        async with independent_transaction(self._sessionmaker) as session:
            await WebhookRepository(session).record_attempt(
                record.id,
                status=status,
                status_code=status_code,
                delivered_at=utcnow() if failure is None else None,
            )
        if failure is not None:
            raise failure

    async def _post(self, endpoint: WebhookEndpoint, record: WebhookDelivery) -> int:
        url = httpx.URL(endpoint.url)
        # Resolved and checked now, for this attempt, and connected to by address.
        address = await checked_address(endpoint.url, allow_private=self._allow_private)
        body = json.dumps(record.payload, separators=(",", ":")).encode()
        timestamp = int(time.time())
        headers = {
            "Host": url.netloc.decode("ascii"),
            "Content-Type": "application/json",
            "webhook-id": record.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(endpoint.secret, record.event_id, timestamp, body),
        }
        # TLS still verifies the certificate against the name in the URL.
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        # One deadline for the whole exchange: httpx's timeout applies to each read, so a
        # receiver dribbling bytes could otherwise hold the worker indefinitely.
        async with (
            asyncio.timeout(self._timeout),
            # No proxies from the environment: a proxy would resolve the name itself.
            httpx.AsyncClient(
                timeout=self._timeout, follow_redirects=False, trust_env=False
            ) as client,
            client.stream(
                "POST",
                url.copy_with(host=str(address)),
                content=body,
                headers=headers,
                extensions=extensions,
            ) as response,
        ):
            received = 0
            async for chunk in response.aiter_raw():
                received += len(chunk)
                if received >= MAX_RESPONSE_BYTES:
                    break
            return response.status_code
