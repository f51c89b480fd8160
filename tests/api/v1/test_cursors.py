"""Keyset pages on every list: each row exactly once while rows arrive between requests, and
cursors that were altered, carried to other filters or mixed with an offset refused."""

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from app.core.pagination import MAX_CURSOR_LENGTH
from app.core.resources import Resources
from app.domains.webhooks.models import WebhookDelivery
from tests.factories import (
    API_KEYS,
    ITEMS,
    ORDERS,
    WEBHOOKS,
    Account,
    admin,
    create_item,
    order_body,
    place,
    post_item,
    register,
    register_webhook,
    user,
)
from tests.problems import assert_problem

POSTS = "/api/v1/posts"
USERS = "/api/v1/users"
INVALID_CURSOR = "urn:problem-type:invalid-cursor"
PAGE = 3

Between = Callable[[], Awaitable[None]]


async def walk(
    client: httpx.AsyncClient,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    between: Between | None = None,
) -> list[dict[str, Any]]:
    """Every row of a list, page by page through `next_cursor`; `between` runs before each
    following page is requested."""
    query = dict(params or {}) | {"limit": PAGE}
    rows: list[dict[str, Any]] = []
    response = await client.get(path, params=query, headers=headers)
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["offset"] == len(rows)
        assert page["limit"] == PAGE
        rows.extend(page["items"])
        if page["next_cursor"] is None:
            assert len(page["items"]) <= PAGE
            return rows
        assert len(page["items"]) == PAGE
        if between is not None:
            await between()
        response = await client.get(
            path, params=query | {"cursor": page["next_cursor"]}, headers=headers
        )


def assert_each_once(rows: list[dict[str, Any]], existing: list[int]) -> None:
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids)), "a row was repeated"
    assert set(existing) <= set(ids), "a row was skipped"


async def all_ids(
    client: httpx.AsyncClient, path: str, params: dict[str, Any] | None = None, **kwargs: Any
) -> list[int]:
    response = await client.get(path, params=(params or {}) | {"limit": 100}, **kwargs)
    return [row["id"] for row in response.json()["items"]]


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("sort", ["created_at", "price", "name"])
async def test_items_every_row_once_while_items_arrive(
    client: httpx.AsyncClient, sort: str, order: str
) -> None:
    owner = await user(client)
    # Repeated prices and names: the id must break the ties.
    prices = ["5.00", "5.00", "7.00", "9.00", "9.00", "9.00", "12.00", "3.00"]
    for name, price in zip("bbacadcb", prices, strict=True):
        await post_item(client, owner, name=name, price=price)
    params = {"sort": sort, "order": order}
    existing = await all_ids(client, ITEMS, params)
    newcomers = itertools.cycle([("a", "1.00"), ("z", "99.00"), ("c", "9.00")])

    async def add_item() -> None:
        name, price = next(newcomers)
        await post_item(client, owner, name=name, price=price)

    rows = await walk(client, ITEMS, params=params, between=add_item)

    assert_each_once(rows, existing)
    # The walk keeps the list's order: the rows that were there come as a full read has them.
    final = await all_ids(client, ITEMS, params)
    walked = [row["id"] for row in rows]
    assert [i for i in walked if i in existing] == [i for i in final if i in existing]
    assert [i for i in final if i in walked] == walked


# The longest names the catalog accepts, in the scripts whose characters take the most room:
# Latin with accents, CJK, and characters beyond the Basic Multilingual Plane.
LONGEST_NAMES = ["é" * 200, "語" * 200, "\U0001f600" * 200, "\U0010fffd" * 199 + "a"]


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_the_longest_names_page_by_name_with_cursors_the_api_accepts(
    client: httpx.AsyncClient, order: str
) -> None:
    owner = await user(client)
    for name in LONGEST_NAMES:
        await post_item(client, owner, name=name)
        await post_item(client, owner, name="x" + name[1:])
    params: dict[str, str | int] = {"sort": "name", "order": order, "limit": 1}
    existing = await all_ids(client, ITEMS, {"sort": "name", "order": order})

    response = await client.get(ITEMS, params=params)
    walked: list[int] = []
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        walked += [row["id"] for row in page["items"]]
        if page["next_cursor"] is None:
            break
        assert len(page["next_cursor"]) <= MAX_CURSOR_LENGTH
        response = await client.get(ITEMS, params=params | {"cursor": page["next_cursor"]})
    assert walked == existing


async def test_item_filters_hold_across_pages(client: httpx.AsyncClient) -> None:
    owner = await user(client)
    for n in range(8):
        await post_item(client, owner, name=f"lamp {n}", price=f"{n + 1}.00")
        await post_item(client, owner, name=f"desk {n}", price=f"{n + 1}.00")
    params = {"q": "lamp", "min_price": "2.00", "sort": "price", "order": "asc"}
    rows = await walk(client, ITEMS, params=params)
    assert [row["name"] for row in rows] == [f"lamp {n}" for n in range(1, 8)]


async def test_posts_every_row_once_while_posts_arrive(client: httpx.AsyncClient) -> None:
    author = await user(client)

    async def write() -> None:
        response = await client.post(
            POSTS, json={"title": "News", "body": "Text"}, headers=author.headers
        )
        assert response.status_code == 201

    for _ in range(8):
        await write()
    existing = await all_ids(client, POSTS)
    assert_each_once(await walk(client, POSTS, between=write), existing)


async def test_users_every_row_once_while_users_register(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    root = await admin(client, resources)
    for _ in range(7):
        await register(client)

    async def sign_up() -> None:
        await register(client)

    existing = await all_ids(client, USERS, headers=root.headers)
    rows = await walk(client, USERS, headers=root.headers, between=sign_up)
    assert_each_once(rows, existing)
    # Oldest first: whoever registers during the walk joins its end.
    assert len(rows) > len(existing)


async def test_orders_every_row_once_while_orders_arrive(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    item = await create_item(resources, buyer.id, stock=100)

    async def buy() -> None:
        assert (await place(client, buyer, order_body((item, 1)))).status_code == 201

    for _ in range(8):
        await buy()
    existing = await all_ids(client, ORDERS, headers=buyer.headers)
    assert_each_once(await walk(client, ORDERS, headers=buyer.headers, between=buy), existing)

    root = await admin(client, resources)
    placed = await walk(client, ORDERS, params={"status": "placed"}, headers=root.headers)
    assert_each_once(placed, existing)


async def test_webhooks_and_deliveries_every_row_once(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    root = await admin(client, resources)
    for _ in range(7):
        await register_webhook(client, root)

    async def register_another() -> None:
        await register_webhook(client, root)

    existing = await all_ids(client, WEBHOOKS, headers=root.headers)
    rows = await walk(client, WEBHOOKS, headers=root.headers, between=register_another)
    assert_each_once(rows, existing)

    endpoint_id = existing[0]
    events = itertools.count()

    async def record_delivery() -> None:
        async with resources.sessionmaker.begin() as session:
            session.add(
                WebhookDelivery(
                    endpoint_id=endpoint_id,
                    event_id=f"evt_{next(events)}",
                    event_type="order.placed",
                    payload={},
                )
            )

    for _ in range(8):
        await record_delivery()
    path = f"{WEBHOOKS}/{endpoint_id}/deliveries"
    existing = await all_ids(client, path, headers=root.headers)
    assert_each_once(
        await walk(client, path, headers=root.headers, between=record_delivery), existing
    )


async def first_cursor(
    client: httpx.AsyncClient, path: str, params: dict[str, Any] | None = None, **kwargs: Any
) -> str:
    response = await client.get(path, params=(params or {}) | {"limit": 1}, **kwargs)
    cursor: str = response.json()["next_cursor"]
    assert cursor is not None
    return cursor


async def test_altered_or_misplaced_cursors_are_422(client: httpx.AsyncClient) -> None:
    owner = await user(client)
    for name in ("lamp one", "lamp two", "desk"):
        await post_item(client, owner, name=name)
        await client.post(POSTS, json={"title": "T", "body": "B"}, headers=owner.headers)
    by_price = await first_cursor(client, ITEMS, {"sort": "price"})
    body, signature = by_price.split(".")
    flipped = body[:-2] + ("AA" if body[-2:] != "AA" else "BB")

    refused: list[tuple[str, dict[str, str | int]]] = [
        (ITEMS, {"sort": "price", "cursor": f"{flipped}.{signature}"}),
        (ITEMS, {"sort": "price", "cursor": f"{body}.{signature[:-1]}"}),
        (ITEMS, {"sort": "price", "cursor": "not-a-cursor"}),
        (ITEMS, {"sort": "name", "cursor": by_price}),
        (ITEMS, {"sort": "price", "order": "asc", "cursor": by_price}),
        (ITEMS, {"sort": "price", "q": "lamp", "cursor": by_price}),
        (ITEMS, {"sort": "price", "min_price": "1", "cursor": by_price}),
        (ITEMS, {"sort": "price", "cursor": by_price, "offset": 0}),
        (POSTS, {"cursor": by_price}),
        (POSTS, {"cursor": await first_cursor(client, POSTS), "offset": 2}),
    ]
    for path, params in refused:
        assert_problem(await client.get(path, params=params), 422, INVALID_CURSOR)
    assert_problem(await client.get(ITEMS, params={"cursor": "x" * 2000}), 422)
    assert_problem(await client.get(ITEMS, params={"cursor": ""}), 422)
    following = await client.get(ITEMS, params={"sort": "price", "cursor": by_price, "limit": 1})
    assert following.status_code == 200


async def test_an_order_cursor_belongs_to_its_user_and_filters(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer, other = await user(client), await user(client)
    item = await create_item(resources, buyer.id, stock=10)
    for account in (buyer, buyer, other, other):
        await place(client, account, order_body((item, 1)))
    cursor = await first_cursor(client, ORDERS, headers=buyer.headers)

    assert (
        await client.get(ORDERS, params={"cursor": cursor, "limit": 1}, headers=buyer.headers)
    ).status_code == 200
    for account, params in [(other, {}), (buyer, {"status": "cancelled"})]:
        response = await client.get(
            ORDERS, params=params | {"cursor": cursor}, headers=account.headers
        )
        assert_problem(response, 422, INVALID_CURSOR)


async def test_cached_item_pages_are_keyed_on_the_cursor(client: httpx.AsyncClient) -> None:
    owner: Account = await user(client)
    for n in range(4):
        await post_item(client, owner, name=f"Item {n}")
    first = (await client.get(ITEMS, params={"limit": 2})).json()
    second = (await client.get(ITEMS, params={"limit": 2, "cursor": first["next_cursor"]})).json()
    again = (await client.get(ITEMS, params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert {i["id"] for i in first["items"]}.isdisjoint({i["id"] for i in second["items"]})
    assert again == second
    assert second["next_cursor"] is None


async def test_a_cursor_with_non_ascii_text_is_422_on_every_list(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    root = await admin(client, resources)
    webhook = (await register_webhook(client, root))["id"]
    lists = [
        ITEMS,
        POSTS,
        ORDERS,
        USERS,
        API_KEYS,
        WEBHOOKS,
        f"{WEBHOOKS}/{webhook}/deliveries",
        "/api/v1/audit-events",
    ]
    # Percent-encoded by the client: é in the signature, in the body, and alone.
    for cursor in ("a.é", "é.a", "é", "a.\u0663", "\U0001f600.\U0001f600"):
        for path in lists:
            response = await client.get(path, params={"cursor": cursor}, headers=root.headers)
            assert_problem(response, 422, INVALID_CURSOR)
