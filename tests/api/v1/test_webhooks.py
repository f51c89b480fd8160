import base64
import re

import httpx
import pytest

from app.core.config import Settings
from app.core.resources import Resources
from tests.conftest import serve, variant
from tests.factories import (
    ORDER_EVENTS,
    PUBLIC_URL,
    WEBHOOKS,
    admin,
    log_in,
    register_webhook,
    user,
)
from tests.factories.audit import audit_events
from tests.problems import assert_problem

TARGET_NOT_ALLOWED = "urn:problem-type:webhook-target-not-allowed"


async def test_registering_returns_the_secret_once(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    root = await admin(client, resources)
    response = await client.post(
        WEBHOOKS,
        json={"url": PUBLIC_URL, "events": ["order.shipped", "order.placed"], "description": "ERP"},
        headers=root.headers,
    )

    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {
        "id",
        "url",
        "events",
        "description",
        "is_active",
        "disabled_reason",
        "created_at",
        "secret",
    }
    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"].removeprefix("whsec_"))) >= 24
    assert created["events"] == ["order.placed", "order.shipped"]
    assert created["is_active"] is True
    assert response.headers["location"] == f"{WEBHOOKS}/{created['id']}"

    read = (await client.get(response.headers["location"], headers=root.headers)).json()
    assert "secret" not in read
    assert read == {key: value for key, value in created.items() if key != "secret"}
    listed = (await client.get(WEBHOOKS, headers=root.headers)).json()
    assert listed["items"] == [read]
    assert listed["total"] == 1
    other = await register_webhook(client, root)
    assert other["secret"] != created["secret"]


async def test_change_and_delete(client: httpx.AsyncClient, resources: Resources) -> None:
    root = await admin(client, resources)
    hook = await register_webhook(client, root)
    path = f"{WEBHOOKS}/{hook['id']}"

    changed = await client.patch(
        path,
        json={
            "url": "https://93.184.216.35/v2",
            "events": ["order.cancelled"],
            "description": "billing",
            "is_active": False,
        },
        headers=root.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() | {"id": 0, "created_at": ""} == {
        "id": 0,
        "url": "https://93.184.216.35/v2",
        "events": ["order.cancelled"],
        "description": "billing",
        "is_active": False,
        "disabled_reason": None,
        "created_at": "",
    }
    assert_problem(await client.patch(path, json={"events": None}, headers=root.headers), 422)
    assert_problem(await client.patch(path, json={"secret": "x"}, headers=root.headers), 422)

    assert (await client.delete(path, headers=root.headers)).status_code == 204
    assert_problem(
        await client.get(path, headers=root.headers), 404, "urn:problem-type:webhook-not-found"
    )
    assert_problem(await client.get(f"{path}/deliveries", headers=root.headers), 404)
    assert_problem(await client.delete(path, headers=root.headers), 404)


async def test_managing_an_endpoint_is_audited_without_its_secret(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    root = await admin(client, resources)
    created = await client.post(
        WEBHOOKS, json={"url": PUBLIC_URL, "events": ORDER_EVENTS}, headers=root.headers
    )
    hook = created.json()
    path = f"{WEBHOOKS}/{hook['id']}"
    changed = await client.patch(path, json={"is_active": False}, headers=root.headers)
    deleted = await client.delete(path, headers=root.headers)

    events = [
        event
        for event in await audit_events(resources, target_type="webhook")
        if event.target_id == hook["id"]
    ]
    assert [event.action for event in events] == [
        "webhook.created",
        "webhook.updated",
        "webhook.deleted",
    ]
    assert {event.actor_id for event in events} == {root.id}
    assert [event.request_id for event in events] == [
        response.headers["x-request-id"] for response in (created, changed, deleted)
    ]
    assert events[0].details["url"] == PUBLIC_URL
    assert events[1].details["changes"] == ["is_active"]
    assert all(hook["secret"] not in str(event.details) for event in events)


async def test_only_administrators_with_the_scope_manage_webhooks(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    assert_problem(await client.get(WEBHOOKS), 401)
    customer = await user(client)
    assert_problem(await client.get(WEBHOOKS, headers=customer.headers), 403)
    body = {"url": PUBLIC_URL, "events": ORDER_EVENTS}
    assert_problem(await client.post(WEBHOOKS, json=body, headers=customer.headers), 403)
    root = await admin(client, resources)
    narrowed = await log_in(root, client, scope="users:admin")
    assert_problem(await client.get(WEBHOOKS, headers=narrowed.headers), 403)


@pytest.mark.parametrize(
    "body",
    [
        {"url": PUBLIC_URL, "events": ["order.refunded"]},
        {"url": PUBLIC_URL, "events": []},
        {"url": PUBLIC_URL},
        {"url": "ftp://93.184.216.34/hooks", "events": ORDER_EVENTS},
        {"url": "file:///etc/passwd", "events": ORDER_EVENTS},
        {"url": "not a url", "events": ORDER_EVENTS},
        # None of these fits the documented pattern, so none is accepted either.
        {"url": "", "events": ORDER_EVENTS},
        {"url": "https://", "events": ORDER_EVENTS},
        {"url": "https:93.184.216.34/hooks", "events": ORDER_EVENTS},
        {"url": "https:\\\\93.184.216.34/hooks", "events": ORDER_EVENTS},
        {"url": f" {PUBLIC_URL} ", "events": ORDER_EVENTS},
        # A host outside the documented characters, and one that fits them but that the
        # deliveries could not decode (an emoji domain, valid to the URL parser).
        {"url": "https://'\u00e1/hooks", "events": ORDER_EVENTS},
        {"url": "https://xn--ls8h.la/hooks", "events": ORDER_EVENTS},
        {"url": "https://" + "a" * 2050 + ".com/", "events": ORDER_EVENTS},
        {"url": PUBLIC_URL, "events": ORDER_EVENTS, "secret": "whsec_mine"},
    ],
)
async def test_invalid_registrations_are_422(
    client: httpx.AsyncClient, resources: Resources, body: dict[str, object]
) -> None:
    root = await admin(client, resources)
    assert_problem(await client.post(WEBHOOKS, json=body, headers=root.headers), 422)


async def test_the_document_states_which_urls_are_accepted(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]
    url = schema["WebhookCreate"]["properties"]["url"]
    for refused in ("", "https://", "https:93.184.216.34", f" {PUBLIC_URL}", "ftp://host/x"):
        assert not re.search(url["pattern"], refused), refused
    assert re.search(url["pattern"], PUBLIC_URL)


PRIVATE_URLS = [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://172.16.5.5/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hook",
    "http://[fe80::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    # IPv6 forms that carry an IPv4 address, which a translator or tunnel may deliver to.
    "http://[::127.0.0.1]/hook",  # IPv4-compatible
    "http://[64:ff9b::7f00:1]/hook",  # NAT64, well-known prefix: 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64: 169.254.169.254
    "http://[64:ff9b:1::a00:1]/hook",  # NAT64, local-use prefix
    "http://[2002:7f00:1::]/hook",  # 6to4: 127.0.0.1
    "http://[2002:c0a8:a::1]/hook",  # 6to4: 192.168.0.10
    "http://[::ffff:0:7f00:1]/hook",  # IPv4-translated: 127.0.0.1
    "http://[::ffff:0:a01:203]/hook",  # IPv4-translated: 10.1.2.3
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_private_targets_are_refused(
    client: httpx.AsyncClient, resources: Resources, url: str
) -> None:
    root = await admin(client, resources)
    response = await client.post(
        WEBHOOKS, json={"url": url, "events": ORDER_EVENTS}, headers=root.headers
    )
    assert_problem(response, 422, TARGET_NOT_ALLOWED)
    hook = await register_webhook(client, root)
    changed = await client.patch(
        f"{WEBHOOKS}/{hook['id']}", json={"url": url}, headers=root.headers
    )
    assert_problem(changed, 422, TARGET_NOT_ALLOWED)


async def test_a_host_that_does_not_resolve_is_refused(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    root = await admin(client, resources)
    body = {"url": "https://no-such-host.invalid/hook", "events": ORDER_EVENTS}
    assert_problem(
        await client.post(WEBHOOKS, json=body, headers=root.headers), 422, TARGET_NOT_ALLOWED
    )


async def test_a_refusal_tells_nothing_about_what_a_name_resolves_to(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    root = await admin(client, resources)
    refusals = []
    for url in [
        "http://localhost/hook",
        "https://no-such-host.invalid/hook",
        "http://10.1.2.3/hook",
        "http://[64:ff9b::7f00:1]/hook",
    ]:
        response = await client.post(
            WEBHOOKS, json={"url": url, "events": ORDER_EVENTS}, headers=root.headers
        )
        refusals.append(assert_problem(response, 422, TARGET_NOT_ALLOWED)["detail"])
    # One answer for every refused target: an internal name that resolves reads exactly as
    # one that does not, and no address appears.
    assert len(set(refusals)) == 1
    assert "127.0.0.1" not in refusals[0]
    assert "::1" not in refusals[0]


async def test_private_targets_are_allowed_when_configured(
    app: object, settings: Settings, resources: Resources
) -> None:
    async with serve(variant(settings, webhook_allow_private_targets=True)) as http:
        root = await admin(http, resources)
        for url in ("http://127.0.0.1:8080/hook", "http://localhost/hook"):
            await register_webhook(http, root, url)
