"""Webhook endpoints registered over HTTP, as an administrator would."""

from typing import Any

import httpx

from tests.factories.accounts import Account

WEBHOOKS = "/api/v1/webhooks"
ORDER_EVENTS = ["order.placed", "order.cancelled", "order.shipped"]
# A public address literal: accepted by the target check without a DNS lookup.
PUBLIC_URL = "https://93.184.216.34/hooks/orders"


async def register_webhook(
    client: httpx.AsyncClient, account: Account, url: str = PUBLIC_URL, **fields: Any
) -> dict[str, Any]:
    body = {"url": url, "events": ORDER_EVENTS} | fields
    response = await client.post(WEBHOOKS, json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
