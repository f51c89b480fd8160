"""What clients were told, checked against what the database holds after the faults.

A committed write is never lost, and a write that got a 5xx never half-happened: every order
answered 201 exists, with its lines, its audit event, its order event and its confirmation
email, and nothing of an order that does not exist is left behind; each item's stock is its
initial stock minus what orders took plus what cancellations gave back; every account has
exactly one welcome email queued with it.
"""

import itertools
from collections import Counter
from dataclasses import dataclass, field

import asyncpg
import httpx

PASSWORD = "fault-tolerant-1"
ORDER_ADDRESS = {"street": "1 Main St", "city": "Springfield", "country": "US"}
_sequence = itertools.count(1)


@dataclass
class Ledger:
    initial_stock: dict[int, int] = field(default_factory=dict)
    orders: dict[int, dict[int, int]] = field(default_factory=dict)
    cancelled: set[int] = field(default_factory=set)
    registered: set[str] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)
    # Requests whose answer never arrived (a killed worker): their write may or may not have
    # committed, so each allows one order the ledger does not know about.
    unanswered: int = 0

    def saw(self, response: httpx.Response | None) -> None:
        if response is None:
            self.unanswered += 1
            self.statuses["no answer"] += 1
        else:
            self.statuses[str(response.status_code)] += 1

    async def register(self, client: httpx.AsyncClient, prefix: str = "user") -> httpx.Response:
        email = f"{prefix}{next(_sequence)}-{id(self)}@example.com"
        body = {"email": email, "full_name": "Fault Tester", "password": PASSWORD}
        response = await client.post("/api/v1/users", json=body)
        if response.status_code == 201:
            self.registered.add(email)
        return response

    @staticmethod
    def order_body(item_id: int, quantity: int = 1) -> dict[str, object]:
        return {
            "lines": [{"item_id": item_id, "quantity": quantity}],
            "shipping": "standard",
            "address": ORDER_ADDRESS,
        }

    async def order(
        self, client: httpx.AsyncClient, headers: dict[str, str], item_id: int, quantity: int = 1
    ) -> httpx.Response:
        body = self.order_body(item_id, quantity)
        response = await client.post("/api/v1/orders", json=body, headers=headers)
        if response.status_code == 201:
            self.orders[response.json()["id"]] = {item_id: quantity}
        return response

    async def cancel(
        self, client: httpx.AsyncClient, headers: dict[str, str], order_id: int
    ) -> httpx.Response:
        response = await client.post(f"/api/v1/orders/{order_id}/cancel", headers=headers)
        if response.status_code == 200:
            self.cancelled.add(order_id)
        return response

    async def problems(self, dsn: str) -> list[str]:
        """Every way the database disagrees with what clients were told; empty when none."""
        connection = await asyncpg.connect(dsn.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            return await self._compare(connection)
        finally:
            await connection.close()

    async def _compare(self, db: asyncpg.Connection) -> list[str]:
        problems = []
        rows = await db.fetch("SELECT id, status FROM orders")
        stored = {row["id"]: row["status"] for row in rows}
        lost = sorted(set(self.orders) - set(stored))
        if lost:
            problems.append(f"orders answered 201 but missing: {lost}")
        unknown = set(stored) - set(self.orders)
        if len(unknown) > self.unanswered:
            problems.append(f"{len(unknown)} orders no client was told of: {sorted(unknown)}")
        for order_id in self.cancelled:
            if stored.get(order_id) != "cancelled":
                problems.append(f"order {order_id} answered cancelled is {stored.get(order_id)}")
        problems += await _order_records(db, set(stored))
        lines = await db.fetch("SELECT order_id, item_id, quantity FROM order_lines")
        taken: Counter[int] = Counter()
        for line in lines:
            if stored[line["order_id"]] != "cancelled":
                taken[line["item_id"]] += line["quantity"]
        stock = {row["id"]: row["stock"] for row in await db.fetch("SELECT id, stock FROM items")}
        for item_id, initial in self.initial_stock.items():
            if stock[item_id] != initial - taken[item_id]:
                problems.append(
                    f"item {item_id}: stock {stock[item_id]}, expected {initial} - "
                    f"{taken[item_id]} taken by orders not cancelled"
                )
        welcomes = await db.fetch(
            """
            SELECT users.email, count(outbox_messages.id) AS emails
            FROM users LEFT JOIN outbox_messages
              ON outbox_messages.topic = 'email'
             AND outbox_messages.payload ->> 'to' = users.email
             AND outbox_messages.payload ->> 'subject' = 'Welcome aboard'
            GROUP BY users.email
            """
        )
        emails = {row["email"]: row["emails"] for row in welcomes}
        missing = sorted(self.registered - set(emails))
        if missing:
            problems.append(f"registrations answered 201 but missing: {missing}")
        wrong = {email: count for email, count in emails.items() if count != 1}
        if wrong:
            problems.append(f"accounts without exactly one welcome email: {wrong}")
        return problems


async def _order_records(db: asyncpg.Connection, orders: set[int]) -> list[str]:
    """Each order's lines, audit event and job log messages, exactly once, and none of an
    order that is not there: what its one transaction writes."""
    problems = []
    records: dict[str, Counter[int]] = {
        "lines": Counter(
            row["order_id"] for row in await db.fetch("SELECT order_id FROM order_lines")
        ),
        "audit events": Counter(
            row["target_id"]
            for row in await db.fetch(
                "SELECT target_id FROM audit_events WHERE action = 'order.placed'"
            )
        ),
    }
    for kind, prefix in (
        ("order events", "order.placed:"),
        ("confirmations", "email.order_confirmed:"),
    ):
        keys = await db.fetch(
            "SELECT dedup_key FROM outbox_messages WHERE dedup_key LIKE $1", prefix + "%"
        )
        records[kind] = Counter(int(row["dedup_key"].removeprefix(prefix)) for row in keys)
    for kind, counts in records.items():
        missing = sorted(orders - set(counts))
        if missing:
            problems.append(f"orders without {kind}: {missing}")
        stray = sorted(set(counts) - orders)
        if stray:
            problems.append(f"{kind} of orders that do not exist: {stray}")
        if kind != "lines" and any(count != 1 for count in counts.values()):
            problems.append(f"{kind} recorded more than once: {counts}")
    return problems


async def customer(http: httpx.AsyncClient, ledger: Ledger) -> dict[str, str]:
    registered = await ledger.register(http)
    assert registered.status_code == 201, registered.text
    email = registered.json()["email"]
    form = {"username": email, "password": PASSWORD}
    tokens = await http.post("/api/v1/auth/token", data=form)
    assert tokens.status_code == 200, tokens.text
    return {"Authorization": f"Bearer {tokens.json()['access_token']}"}


async def stocked_item(
    http: httpx.AsyncClient, ledger: Ledger, headers: dict[str, str], stock: int = 1000
) -> int:
    body = {"name": "Widget", "description": "", "price": "10.00", "stock": stock}
    created = await http.post("/api/v1/items", json=body, headers=headers)
    assert created.status_code == 201, created.text
    item_id: int = created.json()["id"]
    ledger.initial_stock[item_id] = stock
    return item_id
