"""Requests and checks shared by the orders API tests."""

from typing import Any

import httpx

from tests.domains.orders.factories import ORDERS
from tests.factories import Account


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def place(client: httpx.AsyncClient, account: Account, body: object) -> httpx.Response:
    return await client.post(ORDERS, json=body, headers=account.headers)
