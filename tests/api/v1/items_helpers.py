"""The client, builder and checks shared by the items API tests."""

import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import asgi_client
from tests.factories import Account

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
