import itertools
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.core.resources import Resources
from tests.conftest import asgi_client, serve, variant
from tests.factories import Account, admin, user

ITEMS = "/api/v1/items"
_peers = itertools.count(1)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # Each test is its own client address, so the public-read limit counts per test.
    n = next(_peers)
    async with asgi_client(app, peer=(f"10.1.{n // 250}.{n % 250 + 1}", 123)) as http:
        yield http


async def create(client: httpx.AsyncClient, account: Account, **fields: Any) -> dict[str, Any]:
    body = {"name": "Widget", "description": "A useful widget", "price": "12.50", "stock": 3}
    response = await client.post(ITEMS, json=body | fields, headers=account.headers)
    assert response.status_code == 201, response.text
    item: dict[str, Any] = response.json()
    return item


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status


async def test_create_returns_201_with_location_and_two_place_money(
    client: httpx.AsyncClient,
) -> None:
    owner = await user(client)
    response = await client.post(
        ITEMS,
        json={"name": "Lamp", "description": "Bright", "price": 12.5, "stock": 0},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    item = response.json()
    assert response.headers["location"] == f"{ITEMS}/{item['id']}"
    assert response.headers["cache-control"] == "private, no-store"
    assert item["price"] == "12.50"
    assert item["owner_id"] == owner.id
    assert set(item) == {
        "id", "name", "description", "price", "stock", "owner_id", "created_at", "updated_at",
    }  # fmt: skip

    read = await client.get(response.headers["location"])
    assert read.status_code == 200
    assert read.json() == item


async def test_create_needs_a_token_and_the_items_scope(client: httpx.AsyncClient) -> None:
    anonymous = await client.post(ITEMS, json={"name": "x", "price": "1.00", "stock": 1})
    assert_problem(anonymous, 401)
    profile_only = await user(client, scope="profile")
    response = await client.post(
        ITEMS, json={"name": "x", "price": "1.00", "stock": 1}, headers=profile_only.headers
    )
    assert_problem(response, 403)


async def test_missing_item_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{ITEMS}/424242")
    assert_problem(response, 404)
    assert response.json()["type"] == "urn:problem-type:item-not-found"


@pytest.mark.parametrize("path", ["99999999999999999999", "9223372036854775808", "0", "-1", "abc"])
async def test_ids_out_of_range_are_422_not_500(client: httpx.AsyncClient, path: str) -> None:
    assert_problem(await client.get(f"{ITEMS}/{path}"), 422)


async def test_the_largest_id_is_simply_not_found(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"{ITEMS}/9223372036854775807"), 404)


HOSTILE_BODIES = [
    {"name": "a\x00b", "price": "1.00", "stock": 1},
    {"name": "ok", "description": "nul\x00", "price": "1.00", "stock": 1},
    {"name": "x" * 201, "price": "1.00", "stock": 1},
    {"name": "ok", "description": "x" * 100_000, "price": "1.00", "stock": 1},
    {"name": "   ", "price": "1.00", "stock": 1},
    {"name": "ok", "price": "0", "stock": 1},
    {"name": "ok", "price": "-1.00", "stock": 1},
    {"name": "ok", "price": "1.005", "stock": 1},
    {"name": "ok", "price": "1000000.01", "stock": 1},
    {"name": "ok", "price": "1e30", "stock": 1},
    {"name": "ok", "price": 1e308, "stock": 1},
    {"name": "ok", "price": "NaN", "stock": 1},
    {"name": "ok", "price": "Infinity", "stock": 1},
    {"name": "ok", "price": "-Infinity", "stock": 1},
    {"name": "ok", "price": "1.00", "stock": -1},
    {"name": "ok", "price": "1.00", "stock": 2**31},
    {"name": "ok", "price": "1.00", "stock": 99999999999999999999},
    {"name": "ok", "price": "1.00", "stock": 1, "owner_id": 1},
    {"name": "ok", "price": "1.00"},
]


@pytest.mark.parametrize("body", HOSTILE_BODIES)
async def test_hostile_input_is_a_422_problem(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    owner = await user(client)
    response = await client.post(ITEMS, json=body, headers=owner.headers)
    assert_problem(response, 422)
    assert response.json()["errors"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
async def test_non_finite_json_numbers_are_refused(client: httpx.AsyncClient, literal: str) -> None:
    owner = await user(client)
    raw = f'{{"name": "ok", "price": {literal}, "stock": 1}}'
    response = await client.post(
        ITEMS, content=raw, headers=owner.headers | {"Content-Type": "application/json"}
    )
    assert_problem(response, 422)


async def test_the_maximum_price_and_stock_are_accepted(client: httpx.AsyncClient) -> None:
    owner = await user(client)
    item = await create(client, owner, price="1000000", stock=2**31 - 1)
    assert item["price"] == "1000000.00"
    assert item["stock"] == 2**31 - 1


async def test_list_page_shape_and_pagination_edges(client: httpx.AsyncClient) -> None:
    owner = await user(client)
    for n in range(3):
        await create(client, owner, name=f"Thing {n}")
    page = (await client.get(ITEMS, params={"limit": 2})).json()
    assert page["total"] == 3
    assert (page["offset"], page["limit"]) == (0, 2)
    assert len(page["items"]) == 2
    rest = (await client.get(ITEMS, params={"limit": 2, "offset": 2})).json()
    assert len(rest["items"]) == 1
    assert {i["id"] for i in page["items"]}.isdisjoint({i["id"] for i in rest["items"]})

    default = (await client.get(ITEMS)).json()
    assert default["limit"] == 20

    far = await client.get(ITEMS, params={"offset": 1_000_000_000})
    assert far.status_code == 200
    assert far.json()["items"] == []
    assert far.json()["total"] == 3


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": -1},
        {"offset": -1},
        {"offset": 99999999999999999999},
        {"limit": 99999999999999999999},
        {"q": "ab"},
        {"q": "x" * 101},
        {"q": "abc\x00"},
        {"min_price": "NaN"},
        {"max_price": "Infinity"},
        {"min_price": "-1"},
        {"max_price": "1e400"},
        {"min_price": "99999999999999999999"},
        {"sort": "owner_id"},
        {"order": "sideways"},
    ],
)
async def test_bad_list_parameters_are_422_problems(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    assert_problem(await client.get(ITEMS, params=params), 422)


async def test_min_price_above_max_price_is_a_422_problem(client: httpx.AsyncClient) -> None:
    response = await client.get(ITEMS, params={"min_price": "10", "max_price": "5"})
    assert_problem(response, 422)
    assert "min_price must not exceed max_price" in response.json()["errors"][0]["msg"]


async def test_price_filters(client: httpx.AsyncClient) -> None:
    owner = await user(client)
    for price in ("5.00", "10.00", "15.00", "20.00"):
        await create(client, owner, name=f"Priced {price}", price=price)

    async def prices(**params: str) -> list[str]:
        response = await client.get(ITEMS, params=params | {"sort": "price", "order": "asc"})
        assert response.status_code == 200, response.text
        return [item["price"] for item in response.json()["items"]]

    assert await prices(min_price="10") == ["10.00", "15.00", "20.00"]
    assert await prices(max_price="15.00") == ["5.00", "10.00", "15.00"]
    assert await prices(min_price="10", max_price="15") == ["10.00", "15.00"]
    assert await prices(min_price="10", max_price="10") == ["10.00"]


async def test_q_matches_name_or_description_case_insensitively(
    client: httpx.AsyncClient,
) -> None:
    owner = await user(client)
    by_name = await create(client, owner, name="Blue Teapot", description="ceramic")
    by_description = await create(client, owner, name="Kettle", description="a TEAPOT's cousin")
    await create(client, owner, name="Spoon", description="silver")

    page = (await client.get(ITEMS, params={"q": "teapot"})).json()
    assert {item["id"] for item in page["items"]} == {by_name["id"], by_description["id"]}
    assert page["total"] == 2


async def test_q_treats_like_wildcards_literally(client: httpx.AsyncClient) -> None:
    owner = await user(client)
    percent = await create(client, owner, name="100% cotton")
    underscore = await create(client, owner, name="snake_case")
    await create(client, owner, name="100 cotton shirts")
    await create(client, owner, name="snakeXcase")
    await create(client, owner, name="back\\slash")

    async def ids(q: str) -> set[int]:
        response = await client.get(ITEMS, params={"q": q})
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    assert await ids("0% c") == {percent["id"]}
    assert await ids("e_c") == {underscore["id"]}
    assert await ids("%%%") == set()
    assert await ids("___") == set()
    assert len(await ids("k\\s")) == 1


@pytest.mark.parametrize("sort", ["created_at", "price", "name"])
@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_sort_and_order_are_stable(client: httpx.AsyncClient, sort: str, order: str) -> None:
    owner = await user(client)
    made = [
        await create(client, owner, name=name, price=price)
        for name, price in [("Bravo", "2.00"), ("Alpha", "3.00"), ("Charlie", "2.00"),
                            ("Alpha", "1.00")]
    ]  # fmt: skip

    def key(item: dict[str, Any]) -> tuple[Any, int]:
        value = Decimal(item["price"]) if sort == "price" else item[sort]
        return value, item["id"]

    expected = [item["id"] for item in sorted(made, key=key, reverse=order == "desc")]
    response = await client.get(ITEMS, params={"sort": sort, "order": order})
    assert [item["id"] for item in response.json()["items"]] == expected

    paged: list[int] = []
    for offset in range(4):
        page = await client.get(
            ITEMS, params={"sort": sort, "order": order, "limit": 1, "offset": offset}
        )
        paged.extend(item["id"] for item in page.json()["items"])
    assert paged == expected


async def test_default_order_is_newest_first(client: httpx.AsyncClient) -> None:
    owner = await user(client)
    first = await create(client, owner, name="First")
    second = await create(client, owner, name="Second")
    ids = [item["id"] for item in (await client.get(ITEMS)).json()["items"]]
    assert ids == [second["id"], first["id"]]


async def test_etag_is_stable_and_if_none_match_gives_304(client: httpx.AsyncClient) -> None:
    owner = await user(client)
    item = await create(client, owner)
    for path in (f"{ITEMS}/{item['id']}", ITEMS):
        first = await client.get(path)
        again = await client.get(path)
        etag = first.headers["etag"]
        assert etag == again.headers["etag"]
        revalidated = await client.get(path, headers={"If-None-Match": etag})
        assert revalidated.status_code == 304
        assert revalidated.content == b""
        assert revalidated.headers["etag"] == etag
        stale = await client.get(path, headers={"If-None-Match": '"something-else"'})
        assert stale.status_code == 200


async def test_owner_update_is_seen_by_the_next_read_and_list(
    client: httpx.AsyncClient,
) -> None:
    owner = await user(client)
    item = await create(client, owner, name="Old name", price="10.00")
    path = f"{ITEMS}/{item['id']}"
    before = await client.get(path)
    listed = await client.get(ITEMS)
    assert listed.json()["items"][0]["name"] == "Old name"

    response = await client.patch(path, json={"name": "New name"}, headers=owner.headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "private, no-store"
    changed = response.json()
    assert changed["name"] == "New name"
    assert changed["price"] == "10.00"
    assert changed["description"] == item["description"]

    after = await client.get(path)
    assert after.json() == changed
    assert after.headers["etag"] != before.headers["etag"]
    stale = await client.get(path, headers={"If-None-Match": before.headers["etag"]})
    assert stale.status_code == 200
    assert (await client.get(ITEMS)).json()["items"][0]["name"] == "New name"


async def test_a_new_item_appears_in_a_cached_list(client: httpx.AsyncClient) -> None:
    owner = await user(client)
    assert (await client.get(ITEMS)).json()["total"] == 0
    await create(client, owner)
    assert (await client.get(ITEMS)).json()["total"] == 1


async def test_delete_is_seen_by_the_next_read_and_list(client: httpx.AsyncClient) -> None:
    owner = await user(client)
    item = await create(client, owner)
    path = f"{ITEMS}/{item['id']}"
    assert (await client.get(path)).status_code == 200
    assert (await client.get(ITEMS)).json()["total"] == 1

    response = await client.delete(path, headers=owner.headers)
    assert response.status_code == 204
    assert response.headers["cache-control"] == "private, no-store"
    assert_problem(await client.get(path), 404)
    assert (await client.get(ITEMS)).json() == {"items": [], "total": 0, "offset": 0, "limit": 20}
    assert_problem(await client.delete(path, headers=owner.headers), 404)


async def test_update_validates_like_create(client: httpx.AsyncClient) -> None:
    owner = await user(client)
    path = f"{ITEMS}/{(await create(client, owner))['id']}"
    for body in (
        {"price": None},
        {"name": None},
        {"price": "NaN"},
        {"stock": -1},
        {"owner_id": 99},
        {"name": "x\x00"},
    ):
        assert_problem(await client.patch(path, json=body, headers=owner.headers), 422)
    unchanged = await client.patch(path, json={}, headers=owner.headers)
    assert unchanged.status_code == 200
    assert unchanged.json()["price"] == "12.50"


async def test_only_the_owner_or_an_admin_may_change_an_item(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    owner = await user(client)
    other = await user(client)
    boss = await admin(client, resources)
    item = await create(client, owner)
    path = f"{ITEMS}/{item['id']}"

    forbidden = await client.patch(path, json={"stock": 0}, headers=other.headers)
    assert_problem(forbidden, 403)
    assert forbidden.json()["type"] == "urn:problem-type:not-item-owner"
    assert_problem(await client.delete(path, headers=other.headers), 403)
    assert_problem(await client.patch(path, json={"stock": 0}), 401)
    assert_problem(await client.delete(path), 401)
    assert (await client.get(path)).json() == item

    by_admin = await client.patch(path, json={"stock": 7}, headers=boss.headers)
    assert by_admin.status_code == 200
    assert by_admin.json()["owner_id"] == owner.id
    assert (await client.delete(path, headers=boss.headers)).status_code == 204
    assert_problem(await client.get(path), 404)


async def test_public_reads_are_rate_limited(settings: Settings, empty_redis: None) -> None:
    async with serve(variant(settings, rate_limit_default="2/minute")) as http:
        for _ in range(2):
            assert (await http.get(ITEMS)).status_code == 200
        limited = await http.get(f"{ITEMS}/1")
        assert_problem(limited, 429)
        assert int(limited.headers["retry-after"]) >= 1
