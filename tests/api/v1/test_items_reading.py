from decimal import Decimal
from typing import Any

import httpx
import pytest

from app.core.config import Settings
from tests.conftest import serve, variant
from tests.factories import ITEMS, post_item, user
from tests.problems import assert_problem
from tests.waiting import clear_of_window_end


async def test_missing_item_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{ITEMS}/424242")
    assert_problem(response, 404)
    assert response.json()["type"] == "urn:problem-type:item-not-found"


@pytest.mark.parametrize("path", ["99999999999999999999", "9223372036854775808", "0", "-1", "abc"])
async def test_ids_out_of_range_are_422_not_500(client: httpx.AsyncClient, path: str) -> None:
    assert_problem(await client.get(f"{ITEMS}/{path}"), 422)


async def test_the_largest_id_is_simply_not_found(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"{ITEMS}/9223372036854775807"), 404)


async def test_list_page_shape_and_pagination_edges(client: httpx.AsyncClient) -> None:
    owner = await user(client)
    for n in range(3):
        await post_item(client, owner, name=f"Thing {n}")
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
        {"min_price": "1e2"},
        {"max_price": "\uff11\uff10"},
        {"max_price": "\u0661\u0660"},
        {"min_price": "-0"},
        {"min_price": " 5"},
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
        await post_item(client, owner, name=f"Priced {price}", price=price)

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
    by_name = await post_item(client, owner, name="Blue Teapot", description="ceramic")
    by_description = await post_item(client, owner, name="Kettle", description="a TEAPOT's cousin")
    await post_item(client, owner, name="Spoon", description="silver")

    page = (await client.get(ITEMS, params={"q": "teapot"})).json()
    assert {item["id"] for item in page["items"]} == {by_name["id"], by_description["id"]}
    assert page["total"] == 2


async def test_q_treats_like_wildcards_literally(client: httpx.AsyncClient) -> None:
    owner = await user(client)
    percent = await post_item(client, owner, name="100% cotton")
    underscore = await post_item(client, owner, name="snake_case")
    await post_item(client, owner, name="100 cotton shirts")
    await post_item(client, owner, name="snakeXcase")
    await post_item(client, owner, name="back\\slash")

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
        await post_item(client, owner, name=name, price=price)
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
    first = await post_item(client, owner, name="First")
    second = await post_item(client, owner, name="Second")
    ids = [item["id"] for item in (await client.get(ITEMS)).json()["items"]]
    assert ids == [second["id"], first["id"]]


async def test_etag_is_stable_and_if_none_match_gives_304(client: httpx.AsyncClient) -> None:
    owner = await user(client)
    item = await post_item(client, owner)
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


async def test_public_reads_are_rate_limited(migrated: Settings, empty_redis: None) -> None:
    await clear_of_window_end(60)
    async with serve(variant(migrated, rate_limit_default="2/minute")) as http:
        for _ in range(2):
            assert (await http.get(ITEMS)).status_code == 200
        limited = await http.get(f"{ITEMS}/1")
        assert_problem(limited, 429)
        assert int(limited.headers["retry-after"]) >= 1
