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
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db.base import utcnow
from app.core.db.transactions import independent_transaction
from app.core.jobs import Delivery, MessageType
from app.domains.orders.events import OrderEvent, envelope
from app.domains.webhooks.exceptions import WebhookTargetNotAllowed
from app.domains.webhooks.failing import count_outcome
from app.domains.webhooks.models import (
    LAST_ERROR_LENGTH,
    RESPONSE_BODY_CHARS,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.domains.webhooks.repository import WebhookRepository, job_key
from app.domains.webhooks.schemas import WebhookDeliveryJob
from app.domains.webhooks.targets import checked_address

WEBHOOK_DELIVERY = MessageType("webhook.delivery", WebhookDeliveryJob)
SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of every secret, not a secret
SECRET_BYTES = 32
# The status decides and the start of the body is kept for the operator; reading a little
# more lets a receiver finish its answer, and the cap keeps an endless one from holding the
# worker.
MAX_RESPONSE_BYTES = 64 * 1024
# Enough bytes for the characters a delivery keeps of the answer, at four bytes at most each.
HEAD_BYTES = 4 * RESPONSE_BODY_CHARS


class DeliveryFailed(Exception):
    """The receiver did not accept the event; the job log retries it. The message is the
    delivery's `last_error`: what an operator reads to fix the receiver."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What the receiver said: its status, the start of its body, where it redirects."""

    status_code: int
    body: str
    location: str | None


def failure_of(answer: Answer) -> DeliveryFailed | None:
    """Why `answer` does not count as received; None for any 2xx."""
    if 200 <= answer.status_code < 300:
        return None
    if 300 <= answer.status_code < 400:
        target = answer.location or "no Location"
        return DeliveryFailed(
            f"redirect: HTTP {answer.status_code} to {target} (redirects are never followed)"
        )
    return DeliveryFailed(f"HTTP status {answer.status_code}")


def _refused(error: BaseException | None) -> bool:
    # httpx wraps the socket's error; the refusal is somewhere down the chain.
    while error is not None:
        if isinstance(error, ConnectionRefusedError):
            return True
        error = error.__cause__ or error.__context__
    return False


def describe(error: Exception, *, timeout: float) -> str:
    """`last_error` for an attempt that got no answer."""
    if isinstance(error, DeliveryFailed):
        reason = str(error)
    elif isinstance(error, WebhookTargetNotAllowed):
        reason = (
            "target not allowed: the host did not resolve, or resolved to an address that is "
            "not public"
        )
    elif isinstance(error, TimeoutError | httpx.TimeoutException):
        reason = f"timeout: no complete answer within {timeout:g} s"
    elif isinstance(error, httpx.ConnectError) and _refused(error):
        reason = "connection refused"
    elif isinstance(error, httpx.ConnectError):
        reason = f"connection failed: {error or type(error).__name__}"
    else:
        reason = f"no answer: {type(error).__name__}: {error}"
    return reason[:LAST_ERROR_LENGTH]


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: HMAC-SHA256 of "{id}.{timestamp}.{body}"."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"


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
                    payload=envelope(event),
                )
                if delivery_id is not None:
                    queued |= await WEBHOOK_DELIVERY.enqueue(
                        session,
                        WebhookDeliveryJob(delivery_id=delivery_id),
                        dedup_key=job_key(delivery_id),
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
        disable_after: int,
        announce: Callable[[], Awaitable[None]],
    ) -> None:
        self._sessionmaker = sessionmaker
        self._timeout = timeout
        self._allow_private = allow_private
        self._disable_after = disable_after
        self._announce = announce

    async def deliver(self, job: WebhookDeliveryJob, delivery: Delivery) -> None:
        async with self._sessionmaker() as session:
            found = await WebhookRepository(session).delivery_with_endpoint(job.delivery_id)
        if found is None:
            return  # the endpoint was deleted, and its deliveries with it
        record, endpoint = found
        answer: Answer | None = None
        failure: Exception | None = None
        try:
            if not endpoint.is_active:
                raise DeliveryFailed("disabled: the endpoint is not active")
            answer = await self._post(endpoint, record)
            failure = failure_of(answer)
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
                status_code=answer.status_code if answer is not None else None,
                error=describe(failure, timeout=self._timeout) if failure is not None else None,
                response_body=answer.body if answer is not None else None,
                delivered_at=utcnow() if failure is None else None,
            )
            disabled = await count_outcome(
                session,
                self._sessionmaker,
                endpoint,
                status,
                disable_after=self._disable_after,
            )
        if disabled:
            await self._announce()  # the administrators' emails
        if failure is not None:
            raise failure

    async def _post(self, endpoint: WebhookEndpoint, record: WebhookDelivery) -> Answer:
        url = httpx.URL(endpoint.url)
        # Resolved and checked now, for this attempt, and connected to by address.
        address = await checked_address(endpoint.url, allow_private=self._allow_private)
        body = json.dumps(record.payload, separators=(",", ":")).encode()
        timestamp = int(time.time())
        headers = {
            "Host": url.netloc.decode("ascii"),
            "Content-Type": "application/json",
            # The start of the answer is kept as text, so it must arrive as text.
            "Accept-Encoding": "identity",
            "webhook-id": record.event_id,
            "webhook-timestamp": str(timestamp),
            # Standard Webhooks: several signatures, space-separated; a receiver accepts the
            # delivery when any one of them verifies with a secret it holds.
            "webhook-signature": " ".join(
                sign(secret, record.event_id, timestamp, body)
                for secret in endpoint.signing_secrets(utcnow())
            ),
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
            head = bytearray()
            received = 0
            async for chunk in response.aiter_raw():
                head += chunk[: HEAD_BYTES - len(head)]
                received += len(chunk)
                if received >= MAX_RESPONSE_BYTES:
                    break
            return Answer(
                status_code=response.status_code,
                body=head.decode("utf-8", errors="replace")[:RESPONSE_BODY_CHARS],
                location=response.headers.get("location"),
            )
