from typing import Any

import httpx
import pytest

from app.core.resources import Resources
from tests.factories import Account, admin, bearer, create_api_key, user
from tests.problems import assert_problem

POSTS = "/api/v1/posts"


async def write(client: httpx.AsyncClient, author: Account, **fields: str) -> dict[str, Any]:
    body = {"title": "Hello", "body": "First words."} | fields
    response = await client.post(POSTS, json=body, headers=author.headers)
    assert response.status_code == 201, response.text
    post: dict[str, Any] = response.json()
    return post


async def test_write_and_read_a_post(client: httpx.AsyncClient) -> None:
    author = await user(client)
    response = await client.post(
        POSTS, json={"title": "  Hello  ", "body": "Words."}, headers=author.headers
    )
    assert response.status_code == 201, response.text
    post = response.json()
    assert response.headers["location"] == f"{POSTS}/{post['id']}"
    assert response.headers["cache-control"] == "private, no-store"
    assert set(post) == {"id", "title", "body", "author_id", "created_at", "updated_at"}
    assert (post["title"], post["author_id"]) == ("Hello", author.id)
    assert (await client.get(response.headers["location"])).json() == post


async def test_list_is_newest_first_and_paginated(client: httpx.AsyncClient) -> None:
    author = await user(client)
    made = [await write(client, author, title=f"Post {n}") for n in range(3)]
    page = (await client.get(POSTS, params={"limit": 2})).json()
    assert page["total"] == 3
    assert [p["id"] for p in page["items"]] == [made[2]["id"], made[1]["id"]]
    rest = (await client.get(POSTS, params={"limit": 2, "offset": 2})).json()
    assert [p["id"] for p in rest["items"]] == [made[0]["id"]]
    far = (await client.get(POSTS, params={"offset": 1_000_000_000})).json()
    assert (far["items"], far["total"]) == ([], 3)
    for params in ({"limit": 0}, {"limit": 101}, {"limit": -1}):
        assert_problem(await client.get(POSTS, params=params), 422)


async def test_writing_needs_a_token_with_the_posts_scope(client: httpx.AsyncClient) -> None:
    assert_problem(await client.post(POSTS, json={"title": "t", "body": "b"}), 401)
    profile_only = await user(client, scope="profile")
    response = await client.post(
        POSTS, json={"title": "t", "body": "b"}, headers=profile_only.headers
    )
    assert_problem(response, 403)


@pytest.mark.parametrize(
    "body",
    [
        {"title": "t\x00", "body": "b"},
        {"title": "t", "body": "b\x00"},
        {"title": "   ", "body": "b"},
        {"title": "t" * 201, "body": "b"},
        {"title": "t", "body": "b" * 20_001},
        {"title": "t", "body": ""},
        {"title": "t", "body": "b", "author_id": 1},
        {"title": "t"},
    ],
)
async def test_hostile_input_is_a_422_problem(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    author = await user(client)
    assert_problem(await client.post(POSTS, json=body, headers=author.headers), 422)


@pytest.mark.parametrize("path", ["99999999999999999999", "0", "x"])
async def test_ids_out_of_range_are_422(client: httpx.AsyncClient, path: str) -> None:
    assert_problem(await client.get(f"{POSTS}/{path}"), 422)


async def test_missing_post_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{POSTS}/9223372036854775807")
    assert_problem(response, 404)
    assert response.json()["type"] == "urn:problem-type:post-not-found"


async def test_only_the_author_may_change_a_post(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    author = await user(client)
    other = await user(client)
    boss = await admin(client, resources)
    post = await write(client, author)
    path = f"{POSTS}/{post['id']}"

    assert_problem(await client.patch(path, json={"title": "Mine"}, headers=other.headers), 403)
    forbidden = await client.patch(path, json={"title": "Mine"}, headers=boss.headers)
    assert_problem(forbidden, 403)
    assert forbidden.json()["type"] == "urn:problem-type:not-post-author"
    assert_problem(await client.patch(path, json={"title": "Mine"}), 401)
    assert_problem(await client.patch(path, json={"title": None}, headers=author.headers), 422)
    assert (await client.get(path)).json() == post

    changed = await client.patch(path, json={"body": "Second thoughts."}, headers=author.headers)
    assert changed.status_code == 200
    assert changed.headers["cache-control"] == "private, no-store"
    assert (changed.json()["title"], changed.json()["body"]) == ("Hello", "Second thoughts.")
    assert (await client.get(path)).json() == changed.json()


async def test_the_author_or_an_admin_may_delete_a_post(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    author = await user(client)
    other = await user(client)
    boss = await admin(client, resources)
    first = f"{POSTS}/{(await write(client, author))['id']}"
    second = f"{POSTS}/{(await write(client, author))['id']}"

    assert_problem(await client.delete(first, headers=other.headers), 403)
    assert_problem(await client.delete(first), 401)
    assert (await client.delete(first, headers=author.headers)).status_code == 204
    assert_problem(await client.get(first), 404)
    assert (await client.delete(second, headers=boss.headers)).status_code == 204
    assert_problem(await client.get(second), 404)
    assert (await client.get(POSTS)).json()["total"] == 0


async def test_an_admins_key_deletes_other_users_posts_only_with_posts_admin(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    author = await user(client)
    boss = await admin(client, resources)
    path = f"{POSTS}/{(await write(client, author))['id']}"

    writer = bearer((await create_api_key(client, boss, "posts:write"))["key"])
    refused = await client.delete(path, headers=writer)
    assert_problem(refused, 403, "urn:problem-type:not-post-author")
    assert (await client.get(path)).status_code == 200
    own = await client.post(POSTS, json={"title": "Mine", "body": "b"}, headers=writer)
    assert (await client.delete(f"{POSTS}/{own.json()['id']}", headers=writer)).status_code == 204

    moderator = bearer((await create_api_key(client, boss, "posts:write", "posts:admin"))["key"])
    assert_problem(await client.patch(path, json={"title": "Mine"}, headers=moderator), 403)
    assert (await client.delete(path, headers=moderator)).status_code == 204
