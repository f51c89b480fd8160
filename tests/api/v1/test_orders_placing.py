from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import select

from app.core.config import Settings
from app.core.jobs import OutboxMessage
from app.core.resources import Resources
from app.main import create_app
from tests.conftest import running, serve, variant
from tests.factories import (
    ORDERS,
    Inbox,
    create_item,
    order_body,
    order_count,
    place,
    stock_of,
    user,
)
from tests.factories import body as email_part
from tests.problems import assert_problem


async def test_an_order_is_priced_on_the_server(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    pen = await create_item(resources, buyer.id, price="12.50", stock=10)
    ink = await create_item(resources, buyer.id, price="3.99", stock=10)
    body = order_body((pen, 2), (ink, 3))
    del body["address"]["country"]

    response = await place(client, buyer, body)

    assert response.status_code == 201, response.text
    order = response.json()
    assert order["lines"] == [
        {"item_id": pen, "quantity": 2, "unit_price": "12.50", "line_total": "25.00"},
        {"item_id": ink, "quantity": 3, "unit_price": "3.99", "line_total": "11.97"},
    ]
    assert order["subtotal"] == "36.97"
    assert order["shipping"] == "standard"
    assert order["shipping_cost"] == "5.00"
    assert order["total"] == "41.97"
    assert order["status"] == "placed"
    assert order["user_id"] == buyer.id
    assert order["address"] == {"street": "1 Main Street", "city": "Springfield", "country": "US"}
    assert response.headers["location"].endswith(f"{ORDERS}/{order['id']}")
    assert await stock_of(resources, pen) == 8
    assert await stock_of(resources, ink) == 7
    again = await client.get(f"{ORDERS}/{order['id']}", headers=buyer.headers)
    assert again.json() == order


async def test_client_sent_prices_are_refused(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    item = await create_item(resources, buyer.id)
    body = order_body((item, 1))
    body["lines"][0]["unit_price"] = "0.01"
    assert_problem(await place(client, buyer, body), 422)


@pytest.mark.parametrize(
    ("shipping", "cost", "total"),
    [("standard", "5.00", "65.00"), ("express", "15.00", "75.00"), ("overnight", "30.00", "90.00")],
)
async def test_shipping_costs_by_method(
    client: httpx.AsyncClient, resources: Resources, shipping: str, cost: str, total: str
) -> None:
    buyer = await user(client)
    item = await create_item(resources, buyer.id, price="60.00")
    response = await place(client, buyer, order_body((item, 1), shipping=shipping))
    assert response.status_code == 201, response.text
    assert (response.json()["shipping_cost"], response.json()["total"]) == (cost, total)


async def test_overnight_needs_a_subtotal_of_fifty(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    item = await create_item(resources, buyer.id, price="24.99")

    short = assert_problem(
        await place(client, buyer, order_body((item, 2), shipping="overnight")), 422
    )
    assert short["type"] == "urn:problem-type:overnight-minimum"
    assert "50.00" in short["detail"]
    assert "49.98" in short["detail"]
    assert await stock_of(resources, item) == 10

    cheap = await create_item(resources, buyer.id, price="0.02")
    exact = await place(client, buyer, order_body((item, 2), (cheap, 1), shipping="overnight"))
    assert exact.status_code == 201, exact.text
    assert exact.json()["subtotal"] == "50.00"


async def test_unknown_items_are_named_by_line(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    item = await create_item(resources, buyer.id)
    body = assert_problem(await place(client, buyer, order_body((item, 1), (999_999, 1))), 422)
    assert body["type"] == "urn:problem-type:unknown-items"
    assert "lines[1].item_id=999999" in body["detail"]
    assert await stock_of(resources, item) == 10
    assert await order_count(resources) == 0


async def test_short_stock_is_409_and_reserves_nothing(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    plenty = await create_item(resources, buyer.id, stock=5)
    scarce = await create_item(resources, buyer.id, stock=1)

    body = assert_problem(await place(client, buyer, order_body((plenty, 2), (scarce, 3))), 409)

    assert body["type"] == "urn:problem-type:out-of-stock"
    assert f"Item {scarce}" in body["detail"]
    # The first line's stock was taken before the second fell short; it is all undone.
    assert await stock_of(resources, plenty) == 5
    assert await stock_of(resources, scarce) == 1
    assert await order_count(resources) == 0


async def test_the_whole_stock_can_be_bought(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    item = await create_item(resources, buyer.id, price="0.01", stock=1000)
    response = await place(client, buyer, order_body((item, 1000)))
    assert response.status_code == 201, response.text
    assert await stock_of(resources, item) == 0
    assert_problem(await place(client, buyer, order_body((item, 1))), 409)


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([{"item_id": 1, "quantity": 0}], ["body", "lines", 0, "quantity"]),
        ([{"item_id": 1, "quantity": 1001}], ["body", "lines", 0, "quantity"]),
        ([{"item_id": 1, "quantity": -1}], ["body", "lines", 0, "quantity"]),
        ([{"item_id": 0, "quantity": 1}], ["body", "lines", 0, "item_id"]),
        ([{"item_id": 2**63, "quantity": 1}], ["body", "lines", 0, "item_id"]),
        ([{"item_id": 10**40, "quantity": 1}], ["body", "lines", 0, "item_id"]),
        ([{"item_id": 1, "quantity": 10**40}], ["body", "lines", 0, "quantity"]),
        ([{"item_id": 1, "quantity": 1.5}], ["body", "lines", 0, "quantity"]),
        ([{"item_id": 1, "quantity": "NaN"}], ["body", "lines", 0, "quantity"]),
        ([], ["body", "lines"]),
        ([{"item_id": n, "quantity": 1} for n in range(1, 52)], ["body", "lines"]),
        ([{"item_id": 1, "quantity": 1, "price": "1.00"}], ["body", "lines", 0, "price"]),
    ],
    ids=[
        "zero",
        "over-1000",
        "negative",
        "id-zero",
        "id-past-bigint",
        "id-huge",
        "quantity-huge",
        "fraction",
        "nan",
        "no-lines",
        "51-lines",
        "unknown-field",
    ],
)
async def test_malformed_lines_are_422(
    client: httpx.AsyncClient, lines: list[dict[str, Any]], field: list[str | int]
) -> None:
    buyer = await user(client)
    body = assert_problem(await place(client, buyer, {**order_body(), "lines": lines}), 422)
    assert field in [error["loc"] for error in body["errors"]]


async def test_an_item_on_two_lines_is_refused_naming_both(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    item = await create_item(resources, buyer.id, stock=10)
    other = await create_item(resources, buyer.id)
    body = order_body((item, 1), (other, 1), (item, 2))
    refused = assert_problem(
        await place(client, buyer, body), 422, "urn:problem-type:repeated-item"
    )
    assert "lines[0], lines[2]" in refused["detail"]
    assert await stock_of(resources, item) == 10


async def test_fifty_lines_are_allowed(client: httpx.AsyncClient, resources: Resources) -> None:
    buyer = await user(client)
    items = [await create_item(resources, buyer.id, price="1.00") for _ in range(50)]
    response = await place(client, buyer, order_body(*((item, 1) for item in items)))
    assert response.status_code == 201, response.text
    assert response.json()["subtotal"] == "50.00"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"shipping": "teleport"}, ["body", "shipping"]),
        ({"address": {"street": "1 Main\x00Street", "city": "X"}}, ["body", "address", "street"]),
        ({"address": {"street": "1 Main Street", "city": "X" * 101}}, ["body", "address", "city"]),
        ({"address": {"street": "  ", "city": "X"}}, ["body", "address", "street"]),
        (
            {"address": {"street": "S", "city": "X", "country": "usa"}},
            ["body", "address", "country"],
        ),
        ({"address": {"street": "S", "city": "X", "zip": "1"}}, ["body", "address", "zip"]),
        ({"coupon": "FREE"}, ["body", "coupon"]),
        ({"total": "0.00"}, ["body", "total"]),
    ],
    ids=[
        "shipping",
        "nul",
        "long-city",
        "blank-street",
        "country",
        "address-extra",
        "extra",
        "total",
    ],
)
async def test_malformed_orders_are_422(
    client: httpx.AsyncClient, change: dict[str, Any], field: list[str | int]
) -> None:
    buyer = await user(client)
    body = assert_problem(await place(client, buyer, order_body((1, 1)) | change), 422)
    assert field in [error["loc"] for error in body["errors"]]


@pytest.mark.parametrize(
    "content",
    [b'{"lines": [{"item_id": 1, "quantity": NaN}]}', b"\x00", b'{"lines": ', b"[]"],
    ids=["nan-literal", "nul-byte", "truncated", "array"],
)
async def test_hostile_bodies_are_4xx_problems(client: httpx.AsyncClient, content: bytes) -> None:
    buyer = await user(client)
    response = await client.post(
        ORDERS, content=content, headers=buyer.headers | {"content-type": "application/json"}
    )
    assert_problem(response, 422)


async def test_orders_need_a_token_with_the_right_scope(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    item = await create_item(resources, buyer.id)
    assert_problem(await client.post(ORDERS, json=order_body((item, 1))), 401)
    assert_problem(await client.get(ORDERS), 401)
    reader = await user(client, scope="orders:read")
    assert_problem(await place(client, reader, order_body((item, 1))), 403)
    assert (await client.get(ORDERS, headers=reader.headers)).status_code == 200
    assert await stock_of(resources, item) == 10


async def test_order_creation_is_rate_limited_per_user(
    app: FastAPI, settings: Settings, resources: Resources
) -> None:
    async with serve(variant(settings, rate_limit_orders="2/minute")) as client:
        buyer = await user(client)
        other = await user(client)
        item = await create_item(resources, buyer.id)
        for _ in range(2):
            assert (await place(client, buyer, order_body((item, 1)))).status_code == 201
        limited = await place(client, buyer, order_body((item, 1)))
        assert_problem(limited, 429)
        assert int(limited.headers["retry-after"]) >= 1
        assert (await place(client, other, order_body((item, 1)))).status_code == 201
    assert await stock_of(resources, item) == 7


async def test_placing_is_traced_as_a_domain_span(
    app: FastAPI, settings: Settings, resources: Resources
) -> None:
    exporter = InMemorySpanExporter()
    traced = create_app(variant(settings, otel_enabled=True), span_exporter=exporter)
    async with running(traced) as client:
        buyer = await user(client)
        item = await create_item(resources, buyer.id)
        response = await place(client, buyer, order_body((item, 1), shipping="express"))
        assert response.status_code == 201, response.text

    spans = exporter.get_finished_spans()
    placing = [span for span in spans if span.name == "orders.place"]
    assert len(placing) == 1
    assert placing[0].attributes == {"orders.lines": 1, "orders.shipping": "express"}
    inside = [
        span.name
        for span in spans
        if span.parent and span.parent.span_id == placing[0].context.span_id
    ]
    # The database's part: one function call on PostgreSQL, statements on SQLite.
    taking_stock = "place_order_v1" if resources.calls is not None else "UPDATE"
    assert any(taking_stock in name for name in inside), inside


async def test_the_confirmation_is_queued_as_data_and_rendered_as_it_is_sent(
    client: httpx.AsyncClient, resources: Resources, inbox: Inbox
) -> None:
    buyer = await user(client)
    item = await create_item(resources, buyer.id, price="4.50")
    order = (await place(client, buyer, order_body((item, 2)))).json()

    async with resources.sessionmaker() as session:
        [queued] = await session.scalars(
            select(OutboxMessage).filter_by(topic="email.order_confirmed")
        )
    key = queued.payload["key"]
    assert queued.payload == {
        "to": buyer.email,
        "order_id": order["id"],
        "items": 2,
        "subtotal": "9.00",
        "shipping": "standard",
        "shipping_cost": "5.00",
        "total": "14.00",
        "key": key,
    }
    message = await inbox.one_to(buyer.email, f"Order {order['id']} confirmed")
    assert "Total: 14.00" in email_part(message)
    assert "<td>14.00</td>" in email_part(message, "html")
    # The key stored with the data: every attempt sends the same Message-ID.
    assert message["Message-ID"] == f"<{key}@example.com>"


def test_placing_resolves_the_caller_the_order_limit_and_one_service_dependency(
    app: FastAPI,
) -> None:
    [route] = [
        route
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute) and route.original_route.name == "place_order"
    ]

    def calls(dependant: Dependant) -> set[Any]:
        found: set[Any] = set()
        for sub in dependant.dependencies:
            found |= {sub.call} | calls(sub)
        return found

    resolved = {getattr(call, "__name__", call) for call in calls(route.dependant)}
    # The caller (through the writer's chain), the exact order limit keyed by the caller,
    # and the service: no request session, no per-object platform dependencies.
    assert resolved == {
        "get_writer",
        "get_principal",
        "get_settings",
        "check_rate_limit",
        "ordering_user",
        "get_order_service",
    }
