from decimal import Decimal

import httpx

from app.core.resources import Resources
from tests.factories import ORDERS, create_item, order_body, user

DASHBOARD = "/api/v1/users/me/dashboard"


async def test_dashboard_shows_only_the_callers_stats_and_newest_activity(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    stranger = await user(client)
    item = await create_item(resources, buyer.id, price="12.50", stock=100)

    order_ids = []
    for quantity in range(1, 8):
        placed = await client.post(ORDERS, json=order_body((item, quantity)), headers=buyer.headers)
        order_ids.append(placed.json()["id"])
    await client.post(f"{ORDERS}/{order_ids[0]}/cancel", headers=buyer.headers)
    await client.post(ORDERS, json=order_body((item, 1)), headers=stranger.headers)
    for number in range(6):
        post = {"title": f"Post {number}", "body": "text"}
        assert (await client.post("/api/v1/posts", json=post, headers=buyer.headers)).is_success
    await client.post("/api/v1/posts", json={"title": "x", "body": "y"}, headers=stranger.headers)

    response = await client.get(DASHBOARD, headers=buyer.headers)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "private, no-store"
    dashboard = response.json()
    shipping = Decimal(dashboard["recent_orders"][0]["shipping_cost"])
    # Orders 2..7 count (the first was cancelled): 12.50 x (2+...+7) plus shipping each.
    expected = Decimal("12.50") * sum(range(2, 8)) + shipping * 6
    assert dashboard["stats"] == {"order_count": 7, "total_spent": f"{expected:.2f}"}
    assert [order["id"] for order in dashboard["recent_orders"]] == order_ids[::-1][:5]
    assert [post["title"] for post in dashboard["recent_posts"]] == [
        f"Post {number}" for number in (5, 4, 3, 2, 1)
    ]
    assert all(post["author_id"] == buyer.id for post in dashboard["recent_posts"])


async def test_empty_dashboard(client: httpx.AsyncClient) -> None:
    newcomer = await user(client)
    dashboard = (await client.get(DASHBOARD, headers=newcomer.headers)).json()
    assert dashboard == {
        "stats": {"order_count": 0, "total_spent": "0.00"},
        "recent_orders": [],
        "recent_posts": [],
    }


async def test_dashboard_needs_the_orders_read_scope(client: httpx.AsyncClient) -> None:
    assert (await client.get(DASHBOARD)).status_code == 401
    narrow = await user(client, scope="profile")
    response = await client.get(DASHBOARD, headers=narrow.headers)
    assert response.status_code == 403
    assert 'scope="orders:read"' in response.headers["www-authenticate"]
