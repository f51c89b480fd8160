"""What the database is asked to do when an order is placed or changes status, and what it
answers: the mechanics only, each one transaction. The rules (app.domains.orders.rules)
have decided everything before: the prices, the amounts, whether the change is allowed. The
database claims the idempotency key, takes or returns the stock (rows locked in ascending
item id order, so orders sharing items queue instead of deadlocking), and writes the
order, its lines, its audit event and its job log messages, all or nothing.

Two implementations behind one protocol, chosen by the database (`order_writes`): one
call of a database function on PostgreSQL (postgres.py), and a `BEGIN IMMEDIATE`
transaction of plain statements on the embedded SQLite (sqlite.py). Both answer the same
outcomes for the same input.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from app.core.jobs import NewMessage
from app.domains.audit.schemas import AuditAction, AuditOrigin
from app.domains.orders.models import IdempotencyStatus, OrderStatus
from app.domains.orders.rules import PricedOrder


class Outcome(StrEnum):
    """What became of a placement."""

    PLACED = "placed"
    # The key's request was answered before: `replay_status`, `replay_body`.
    REPLAY = "replay"
    # Another request holds the key right now.
    IN_FLIGHT = "in_flight"
    # The key was used with another body.
    KEY_REUSED = "key_reused"
    # Items not in the catalog (deleted meanwhile included): `unknown`.
    UNKNOWN = "unknown"
    # A line asks for more than is in stock: `short_line`.
    SHORT = "short"
    # A price is not the one the order was priced with any more: `prices`.
    PRICE_CHANGED = "price_changed"


@dataclass(frozen=True, slots=True)
class Placement:
    """An order priced by the rules, and everything its transaction records."""

    user_id: int
    item_ids: list[int]
    quantities: list[int]
    priced: PricedOrder
    street: str
    city: str
    country: str
    # The order as the API shows it (OrderRead), but its id and creation time.
    order: dict[str, Any]
    # The `order.placed` event (OrderEvent), but its data: the order once it has an id.
    event: dict[str, Any]
    event_topic: str
    # The confirmation email (OrderConfirmation), but the order's id.
    confirmation: dict[str, Any]
    confirmation_topic: str
    audit_details: dict[str, Any]
    origin: AuditOrigin
    key: str | None
    fingerprint: str | None
    # How long the key answers repeats with this order.
    key_ttl: timedelta


@dataclass(frozen=True, slots=True)
class PlacementResult:
    outcome: Outcome
    order_id: int | None = None
    created_at: datetime | None = None
    # SHORT: the index of the first short line, in ascending item id order.
    short_line: int | None = None
    # UNKNOWN: line index -> item id, for every line whose item is not in the catalog.
    unknown: dict[int, int] | None = None
    # PRICE_CHANGED: item id -> its price now.
    prices: dict[int, Decimal] | None = None
    replay_status: int | None = None
    replay_body: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """An idempotency key as stored: the request it was first used with and its answer."""

    fingerprint: str
    status: str
    response_status: int | None
    response_body: dict[str, Any] | None
    expires_at: datetime


def answer_for(record: KeyRecord, fingerprint: str | None, now: datetime) -> PlacementResult | None:
    """What a stored key means for a new request with it; None when the key is free (an
    expired key is used afresh)."""
    if record.expires_at <= now:
        return None
    if record.fingerprint != fingerprint:
        return PlacementResult(Outcome.KEY_REUSED)
    if (
        record.status != IdempotencyStatus.COMPLETED
        or record.response_status is None
        or record.response_body is None
    ):
        # Left by a request of an earlier release, which claimed keys before placing.
        return PlacementResult(Outcome.IN_FLIGHT)
    return PlacementResult(
        Outcome.REPLAY, replay_status=record.response_status, replay_body=record.response_body
    )


@dataclass(frozen=True, slots=True)
class StatusChange:
    """An allowed change of an order's status, and what its transaction records."""

    order_id: int
    # Only this user's order; None for any (administrators).
    owner_id: int | None
    source: OrderStatus
    target: OrderStatus
    returns_stock: bool
    actor_id: int
    action: AuditAction
    origin: AuditOrigin
    messages: list[NewMessage]


class ChangeOutcome(StrEnum):
    CHANGED = "changed"
    # The order is no longer in the source status: `status` says what it is.
    ILLEGAL = "illegal"
    NOT_FOUND = "not_found"


@dataclass(frozen=True, slots=True)
class ChangeResult:
    outcome: ChangeOutcome
    status: str | None = None


class OrderWrites(Protocol):
    async def prices(self, item_ids: Sequence[int]) -> dict[int, Decimal]:
        """The current price of each of these items still in the catalog."""
        ...

    async def find_key(self, user_id: int, key: str) -> KeyRecord | None:
        """The user's idempotency key as stored, if it is."""
        ...

    async def place(self, placement: Placement) -> PlacementResult:
        """Claim the key, take the stock and record the order, in one transaction."""
        ...

    async def change_status(self, change: StatusChange) -> ChangeResult:
        """Change the status, return the stock if asked and record it, in one transaction."""
        ...
