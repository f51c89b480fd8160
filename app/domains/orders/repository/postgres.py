"""The order writes on PostgreSQL: each one call of a database function, one round trip and
one transaction, run by the driver itself (app.core.db.calls).

The functions are created by the migrations; their names carry a version, and this module
is their caller, so each version of the caller names the version it was written for: a
change of arguments or outcomes is a new function (`place_order_v2`) created by a new
migration, called by the release that ships it, and the old one dropped a release later.
tests/domains/orders/test_writes.py checks that the database has each function with the
arguments passed here.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Any

import asyncpg
from opentelemetry.trace import SpanKind, Tracer

from app.core.db.calls import Calls, Record
from app.domains.audit.schemas import AuditAction
from app.domains.orders.repository.writes import (
    ChangeOutcome,
    ChangeResult,
    KeyRecord,
    Outcome,
    Placement,
    PlacementResult,
    StatusChange,
)


@dataclass(frozen=True)
class DatabaseFunction:
    """A function the migrations create, and the argument types its caller passes."""

    name: str
    arguments: tuple[str, ...]

    @cached_property
    def call(self) -> str:
        """The statement that calls it; the casts name the one function they fit."""
        placeholders = ", ".join(
            f"${number}::{type_}" for number, type_ in enumerate(self.arguments, start=1)
        )
        # Both are this module's constants, never input.
        return f"SELECT * FROM {self.name}({placeholders})"  # noqa: S608


PLACE_ORDER = DatabaseFunction(
    "place_order_v1",
    (
        "bigint",  # user
        "bigint[]",  # item ids, one per line in the request's order
        "integer[]",  # quantities
        "numeric[]",  # unit prices the order was priced with
        "numeric[]",  # line totals
        "text",  # shipping method
        "numeric",  # shipping cost
        "numeric",  # subtotal
        "numeric",  # total
        "text",  # street
        "text",  # city
        "text",  # country
        "jsonb",  # the order as the API shows it, but id and created_at
        "text",  # event topic
        "jsonb",  # event, but its data
        "text",  # confirmation email topic
        "jsonb",  # confirmation email, but the order id
        "text",  # audit action
        "jsonb",  # audit details
        "text",  # request id
        "text",  # client address
        "text",  # idempotency key
        "text",  # request fingerprint
        "interval",  # how long the key answers repeats
    ),
)
CHANGE_ORDER_STATUS = DatabaseFunction(
    "change_order_status_v1",
    (
        "bigint",  # order
        "bigint",  # owner, or NULL for any
        "text",  # source status
        "text",  # target status
        "boolean",  # return the order's stock to the catalog
        "bigint",  # actor
        "text",  # audit action
        "text",  # request id
        "text",  # client address
        "jsonb",  # job log messages: [{"topic", "dedup_key", "payload"}]
    ),
)
FUNCTIONS = (PLACE_ORDER, CHANGE_ORDER_STATUS)

_PRICES = "SELECT id, price FROM items WHERE id = ANY($1::bigint[])"
_KEY = (
    "SELECT fingerprint, status, response_status, response_body, expires_at "
    "FROM idempotency_keys WHERE user_id = $1 AND key = $2"
)
# What an old release's two-step claim can still do to a key this call is completing.
_KEY_CONSTRAINT = "uq_idempotency_keys_user_id"


class PostgresOrderWrites:
    def __init__(self, calls: Calls, tracer: Tracer) -> None:
        self.calls = calls
        self.tracer = tracer

    async def prices(self, item_ids: Sequence[int]) -> dict[int, Decimal]:
        rows = await self.calls.fetch(_PRICES, list(item_ids))
        return {row["id"]: row["price"] for row in rows}

    async def find_key(self, user_id: int, key: str) -> KeyRecord | None:
        row = await self.calls.fetchrow(_KEY, user_id, key)
        if row is None:
            return None
        return KeyRecord(
            fingerprint=row["fingerprint"],
            status=row["status"],
            response_status=row["response_status"],
            response_body=_decoded(row["response_body"]),
            expires_at=row["expires_at"],
        )

    async def place(self, placement: Placement) -> PlacementResult:
        p, priced = placement, placement.priced
        arguments = (
            p.user_id,
            p.item_ids,
            p.quantities,
            list(priced.unit_prices),
            list(priced.line_totals),
            priced.shipping.value,
            priced.shipping_cost,
            priced.subtotal,
            priced.total,
            p.street,
            p.city,
            p.country,
            _json(p.order),
            p.event_topic,
            _json(p.event),
            p.confirmation_topic,
            _json(p.confirmation),
            AuditAction.ORDER_PLACED.value,
            _json(p.audit_details),
            p.origin.request_id,
            p.origin.ip,
            p.key,
            p.fingerprint,
            p.key_ttl,
        )
        try:
            row = await self._call(PLACE_ORDER, arguments)
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name == _KEY_CONSTRAINT:
                return PlacementResult(Outcome.IN_FLIGHT)
            raise
        return _placement_result(row)

    async def change_status(self, change: StatusChange) -> ChangeResult:
        c = change
        messages = [
            {"topic": m.topic, "dedup_key": m.dedup_key, "payload": m.payload} for m in c.messages
        ]
        arguments = (
            c.order_id,
            c.owner_id,
            c.source.value,
            c.target.value,
            c.returns_stock,
            c.actor_id,
            c.action.value,
            c.origin.request_id,
            c.origin.ip,
            _json(messages),
        )
        row = await self._call(CHANGE_ORDER_STATUS, arguments)
        return ChangeResult(ChangeOutcome(row["outcome"]), row["current_status"])

    async def _call(self, function: DatabaseFunction, arguments: tuple[Any, ...]) -> Record:
        with self.tracer.start_as_current_span(
            function.name, kind=SpanKind.CLIENT, attributes={"db.system": "postgresql"}
        ):
            row = await self.calls.fetchrow(function.call, *arguments)
        if row is None:
            raise RuntimeError(f"{function.name} returned no row")
        return row


def _placement_result(row: Record) -> PlacementResult:
    outcome = Outcome(row["outcome"])
    info = _decoded(row["info"])
    if outcome is Outcome.PLACED:
        return PlacementResult(outcome, order_id=row["placed_id"], created_at=row["placed_at"])
    if outcome is Outcome.REPLAY:
        return PlacementResult(outcome, replay_status=info["status"], replay_body=info["body"])
    if outcome is Outcome.UNKNOWN:
        return PlacementResult(outcome, unknown={int(line): item for line, item in info})
    if outcome is Outcome.SHORT:
        return PlacementResult(outcome, short_line=row["short_line"])
    if outcome is Outcome.PRICE_CHANGED:
        return PlacementResult(
            outcome, prices={int(item): Decimal(price) for item, price in info.items()}
        )
    return PlacementResult(outcome)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _decoded(value: Any) -> Any:
    # The engine's connections decode JSON themselves (SQLAlchemy sets their codecs); a bare
    # asyncpg connection would hand over the text.
    return json.loads(value) if isinstance(value, str) else value
