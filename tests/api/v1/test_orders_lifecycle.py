import httpx
import pytest
from sqlalchemy import delete

from app.core.resources import Resources
from app.domains.items.models import Item
from tests.factories import ORDERS, admin, create_item, order_body, place, stock_of, user
from tests.problems import assert_problem


@pytest.mark.parametrize(
    "path", [f"{ORDERS}/{2**63}", f"{ORDERS}/0", f"{ORDERS}/abc", f"{ORDERS}?user_id={2**64}"]
)
async def test_hostile_ids_are_422(client: httpx.AsyncClient, path: str) -> None:
    buyer = await user(client)
    assert_problem(await client.get(path, headers=buyer.headers), 422)


async def test_cancelling_returns_the_stock_once(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    first = await create_item(resources, buyer.id, stock=5)
    second = await create_item(resources, buyer.id, stock=5)
    order = (await place(client, buyer, order_body((second, 2), (first, 3)))).json()

    cancelled = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=buyer.headers)

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert (await stock_of(resources, first), await stock_of(resources, second)) == (5, 5)
    again = assert_problem(
        await client.post(f"{ORDERS}/{order['id']}/cancel", headers=buyer.headers), 409
    )
    assert again["type"] == "urn:problem-type:illegal-transition"
    assert "cancelled" in again["detail"]
    assert (await stock_of(resources, first), await stock_of(resources, second)) == (5, 5)


async def test_an_order_survives_its_item_leaving_the_catalog(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    item = await create_item(resources, buyer.id, price="7.00")
    order = (await place(client, buyer, order_body((item, 2)))).json()
    async with resources.sessionmaker() as session:
        await session.execute(delete(Item).where(Item.id == item))
        await session.commit()

    read = await client.get(f"{ORDERS}/{order['id']}", headers=buyer.headers)
    assert read.json()["lines"] == [
        {"item_id": None, "quantity": 2, "unit_price": "7.00", "line_total": "14.00"}
    ]
    cancelled = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=buyer.headers)
    assert cancelled.status_code == 200, cancelled.text


async def test_shipping_is_for_administrators_and_placed_orders_only(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    boss = await admin(client, resources)
    item = await create_item(resources, buyer.id)
    shipped = (await place(client, buyer, order_body((item, 1)))).json()
    cancelled = (await place(client, buyer, order_body((item, 1)))).json()
    await client.post(f"{ORDERS}/{cancelled['id']}/cancel", headers=buyer.headers)

    assert_problem(await client.post(f"{ORDERS}/{shipped['id']}/ship", headers=buyer.headers), 403)
    response = await client.post(f"{ORDERS}/{shipped['id']}/ship", headers=boss.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "shipped"

    assert_problem(await client.post(f"{ORDERS}/{shipped['id']}/ship", headers=boss.headers), 409)
    assert_problem(
        await client.post(f"{ORDERS}/{shipped['id']}/cancel", headers=buyer.headers), 409
    )
    assert_problem(await client.post(f"{ORDERS}/{cancelled['id']}/ship", headers=boss.headers), 409)
    assert_problem(await client.post(f"{ORDERS}/999999/ship", headers=boss.headers), 404)
    assert await stock_of(resources, item) == 9


async def test_someone_elses_order_is_404(client: httpx.AsyncClient, resources: Resources) -> None:
    owner = await user(client)
    stranger = await user(client)
    item = await create_item(resources, owner.id)
    order = (await place(client, owner, order_body((item, 1)))).json()
    url = f"{ORDERS}/{order['id']}"

    foreign = assert_problem(await client.get(url, headers=stranger.headers), 404)
    missing = assert_problem(await client.get(f"{ORDERS}/999999", headers=stranger.headers), 404)
    # Indistinguishable from an order that does not exist.
    assert (foreign["type"], foreign["detail"]) == (missing["type"], missing["detail"])
    assert_problem(await client.post(f"{url}/cancel", headers=stranger.headers), 404)
    assert (await client.get(ORDERS, headers=stranger.headers)).json()["total"] == 0
    filtered = await client.get(ORDERS, params={"user_id": owner.id}, headers=stranger.headers)
    assert filtered.json()["total"] == 0
    assert await stock_of(resources, item) == 9


async def test_administrators_see_and_cancel_any_order(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    owner = await user(client)
    boss = await admin(client, resources)
    item = await create_item(resources, owner.id, stock=3)
    order = (await place(client, owner, order_body((item, 3)))).json()

    assert (await client.get(f"{ORDERS}/{order['id']}", headers=boss.headers)).json() == order
    cancelled = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=boss.headers)
    assert cancelled.json()["status"] == "cancelled"
    assert await stock_of(resources, item) == 3


async def test_an_admin_token_without_the_orders_admin_scope_sees_only_its_own(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    owner = await user(client)
    boss = await admin(client, resources)
    item = await create_item(resources, owner.id)
    order = (await place(client, owner, order_body((item, 1)))).json()
    narrow = await client.post(
        "/api/v1/auth/token",
        data={"username": boss.email, "password": boss.password, "scope": "orders:read"},
    )
    headers = {"Authorization": f"Bearer {narrow.json()['access_token']}"}
    assert_problem(await client.get(f"{ORDERS}/{order['id']}", headers=headers), 404)
    assert_problem(await client.post(f"{ORDERS}/{order['id']}/ship", headers=headers), 403)


async def test_listing_is_newest_first_filtered_and_paged(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    other = await user(client)
    boss = await admin(client, resources)
    item = await create_item(resources, buyer.id, stock=100)
    mine = [(await place(client, buyer, order_body((item, 1)))).json()["id"] for _ in range(3)]
    theirs = (await place(client, other, order_body((item, 1)))).json()["id"]
    await client.post(f"{ORDERS}/{mine[0]}/cancel", headers=buyer.headers)

    def ids(response: httpx.Response) -> list[int]:
        assert response.status_code == 200, response.text
        return [order["id"] for order in response.json()["items"]]

    own = await client.get(ORDERS, headers=buyer.headers)
    assert ids(own) == mine[::-1]
    assert own.json()["total"] == 3
    paged = await client.get(ORDERS, params={"limit": 1, "offset": 1}, headers=buyer.headers)
    assert ids(paged) == [mine[1]]
    assert paged.json() | {"items": [], "next_cursor": None} == {
        "items": [],
        "total": 3,
        "offset": 1,
        "limit": 1,
        "next_cursor": None,
    }
    placed = await client.get(ORDERS, params={"status": "placed"}, headers=buyer.headers)
    assert ids(placed) == [mine[2], mine[1]]

    assert ids(await client.get(ORDERS, headers=boss.headers)) == [theirs, *mine[::-1]]
    by_user = await client.get(ORDERS, params={"user_id": other.id}, headers=boss.headers)
    assert ids(by_user) == [theirs]
    cancelled = await client.get(ORDERS, params={"status": "cancelled"}, headers=boss.headers)
    assert ids(cancelled) == [mine[0]]
    assert_problem(await client.get(ORDERS, params={"status": "lost"}, headers=buyer.headers), 422)
    assert_problem(await client.get(ORDERS, params={"limit": 101}, headers=buyer.headers), 422)
