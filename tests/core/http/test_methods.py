import gzip

import httpx
import pytest

from app.core.config import Settings
from tests.conftest import serve, variant
from tests.factories import user
from tests.transport import replica_url

ITEM = {"name": "Desk lamp", "description": "A lamp for the desk. " * 80, "price": "12.50"}


async def create_item(client: httpx.AsyncClient) -> str:
    owner = await user(client)
    response = await client.post("/api/v1/items", json=ITEM | {"stock": 3}, headers=owner.headers)
    assert response.status_code == 201, response.text
    return f"/api/v1/items/{response.json()['id']}"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/v1/items/1", "GET, HEAD, PATCH, DELETE"),
        ("DELETE", "/api/v1/items", "GET, HEAD, POST"),
        ("PUT", "/api/v1/users/me", "GET, HEAD, PATCH, DELETE"),
        ("HEAD", "/api/v1/auth/token", "POST"),
        ("POST", "/health", "GET, HEAD"),
    ],
)
async def test_a_405_allows_every_method_of_the_path(
    client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.headers["content-type"] == "application/problem+json"
    if method != "HEAD":
        assert response.json()["detail"] == f"{method} is not allowed on {path}."


async def test_head_is_answered_wherever_get_is(client: httpx.AsyncClient) -> None:
    item = await create_item(client)
    for path in ("/health", item, "/api/v1/items", "/openapi.json", "/docs"):
        get, head = await client.get(path), await client.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b"", path
        for name in ("content-type", "content-length", "etag", "cache-control"):
            assert head.headers.get(name) == get.headers.get(name), (path, name)
        assert "x-request-id" in head.headers
    # Starlette's own routes (the scrape, static files) answer HEAD themselves.
    for url in (replica_url(client, "/metrics"), "/static/docs/swagger-ui.css"):
        response = await client.head(url)
        assert response.status_code == 200, url
        assert response.content == b"", url


async def test_head_revalidates_like_get(client: httpx.AsyncClient) -> None:
    item = await create_item(client)
    etag = (await client.get(item)).headers["etag"]
    response = await client.head(item, headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.headers["etag"] == etag


async def test_head_of_a_missing_resource_is_a_404(client: httpx.AsyncClient) -> None:
    assert (await client.head("/api/v1/items/999999")).status_code == 404
    assert (await client.head("/no/such/path")).status_code == 404


async def test_gzip_and_identity_responses_carry_different_etags(migrated: Settings) -> None:
    async with serve(variant(migrated, gzip_minimum_size=100)) as client:
        item = await create_item(client)
        identity = await client.get(item, headers={"Accept-Encoding": "identity"})
        async with client.stream("GET", item, headers={"Accept-Encoding": "gzip"}) as encoded:
            raw = [chunk async for chunk in encoded.aiter_raw()]

        assert "content-encoding" not in identity.headers
        assert encoded.headers["content-encoding"] == "gzip"
        assert gzip.decompress(b"".join(raw)) == identity.content
        strong = identity.headers["etag"]
        assert not strong.startswith("W/")
        assert encoded.headers["etag"] == f"W/{strong}"
        assert "accept-encoding" in encoded.headers["vary"].lower()

        # Either form revalidates either representation, and a 304 names the form held.
        for held, accept, answered in (
            (strong, "identity", strong),
            (f"W/{strong}", "gzip", f"W/{strong}"),
            (strong, "gzip", strong),
            (f"W/{strong}", "identity", strong),
        ):
            response = await client.get(
                item, headers={"If-None-Match": held, "Accept-Encoding": accept}
            )
            assert response.status_code == 304, (held, accept)
            assert response.headers["etag"] == answered, (held, accept)


async def test_an_identity_response_varies_on_accept_encoding_where_gzip_would_apply(
    migrated: Settings,
) -> None:
    async with serve(variant(migrated, gzip_minimum_size=100)) as client:
        item = await create_item(client)
        large = await client.get(item, headers={"Accept-Encoding": "identity"})
        small = await client.get("/health", headers={"Accept-Encoding": "identity"})
        # A 304 has no body to compress.
        etag = large.headers["etag"]
        revalidated = await client.get(
            item, headers={"Accept-Encoding": "identity", "If-None-Match": etag}
        )

    assert len(large.content) >= 100
    assert "content-encoding" not in large.headers
    assert large.headers["vary"].lower() == "accept-encoding"
    assert len(small.content) < 100
    assert "vary" not in small.headers
    assert revalidated.status_code == 304
    assert "vary" not in revalidated.headers
