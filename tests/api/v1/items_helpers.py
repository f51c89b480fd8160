"""The client, builder and checks shared by the items API tests."""

from typing import Any

import httpx

from tests.factories import Account

ITEMS = "/api/v1/items"


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
