from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import Depends, FastAPI, Response
from pydantic import BaseModel

from app.core.config import Settings
from app.core.deps import ETagJSON, RateLimit
from app.core.etag import none_match, strong_etag
from app.main import create_app
from tests.conftest import asgi_client

# The ETag of BODY, computed once: equal in every process because it hashes the bytes.
BODY = b'{"id":7,"name":"lamp"}'
BODY_ETAG = '"fff137c7f6787ba001d7af5170749987"'


class Lamp(BaseModel):
    id: int
    name: str


def lamp_app(settings: Settings) -> FastAPI:
    application = create_app(settings)

    @application.get(
        "/lamp",
        response_model=Lamp,
        dependencies=[Depends(RateLimit("1000/minute", scope="lamp"))],
    )
    async def read_lamp(etag_json: ETagJSON, response: Response) -> Response:
        response.headers["Cache-Control"] = "no-cache"
        return etag_json(Lamp(id=7, name="lamp"))

    return application


@pytest.fixture
async def lamp_clients(
    migrated: Settings, empty_redis: None
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    first, second = lamp_app(migrated), lamp_app(migrated)
    async with (
        first.router.lifespan_context(first),
        second.router.lifespan_context(second),
        asgi_client(first) as one,
        asgi_client(second) as two,
    ):
        yield one, two


def test_strong_etag_is_a_hash_of_the_body() -> None:
    assert strong_etag(BODY) == BODY_ETAG
    assert strong_etag(BODY + b" ") != BODY_ETAG


async def test_etag_is_the_same_from_two_separately_created_apps(
    lamp_clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    one, two = lamp_clients
    first, second = await one.get("/lamp"), await two.get("/lamp")
    assert first.status_code == second.status_code == 200
    assert first.content == BODY
    assert first.headers["etag"] == second.headers["etag"] == BODY_ETAG
    assert first.headers["content-type"] == "application/json"


async def test_matching_if_none_match_is_a_304_without_a_body(
    lamp_clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    one, _ = lamp_clients
    response = await one.get("/lamp", headers={"If-None-Match": BODY_ETAG})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == BODY_ETAG
    # Headers the route and its dependencies set survive on the 304.
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["ratelimit-limit"] == "1000"


async def test_another_tag_gets_the_full_body(
    lamp_clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    one, _ = lamp_clients
    response = await one.get("/lamp", headers={"If-None-Match": '"something-else"'})
    assert response.status_code == 200
    assert response.content == BODY
    assert response.headers["etag"] == BODY_ETAG


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (BODY_ETAG, True),
        (f"W/{BODY_ETAG}", True),
        (f'"a", {BODY_ETAG}', True),
        (f'"a,b",W/{BODY_ETAG} , "c"', True),
        ("*", True),
        (' "a" , "b" ', False),
        (BODY_ETAG.strip('"'), False),
        ("", False),
    ],
)
def test_if_none_match_compares_weakly_and_accepts_lists(header: str, matches: bool) -> None:
    assert none_match(header, BODY_ETAG) is matches
