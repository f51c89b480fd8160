import timeit
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import Depends, FastAPI, Response
from pydantic import BaseModel

from app.core.config import Settings
from app.core.http.etag import entity_tags, etag_response, none_match, strong_etag
from app.core.http.limits import RateLimit
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
    async def read_lamp() -> Response:
        response = etag_response(Lamp(id=7, name="lamp"))
        response.headers["Cache-Control"] = "no-cache"
        return response

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
    # Headers the route sets, and the limits its dependencies report, survive on the 304.
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
        (f", ,{BODY_ETAG},,", True),
        (" * ", True),
        (f'"a" {BODY_ETAG}', False),
        (f"w/{BODY_ETAG}", False),
        (f'"unterminated, {BODY_ETAG}', False),
        (BODY_ETAG.strip('"'), False),
        ("", False),
    ],
)
def test_if_none_match_compares_weakly_and_accepts_lists(header: str, matches: bool) -> None:
    assert none_match(header, BODY_ETAG) is matches


def test_entity_tags_are_returned_as_written() -> None:
    assert entity_tags('W/"a", "b,c" ,"" ') == ['W/"a"', '"b,c"', '""']
    assert entity_tags("*") == ["*"]
    assert entity_tags('"a", *') == []


def parse_cost(header: str) -> float:
    return min(timeit.repeat(lambda: none_match(header, BODY_ETAG), number=20, repeat=5))


@pytest.mark.parametrize("unit", [" ", ",", "\t ,", "W/", '"', 'W/"a",', '"a" '])
def test_if_none_match_is_parsed_in_linear_time(unit: str) -> None:
    """A hostile 16 KiB header costs about 16 times a 1 KiB one, not 256 times."""
    small, large = unit * (1024 // len(unit)), unit * (16384 // len(unit))
    # Linear parsing gives a ratio near 16 and quadratic near 256; 64 leaves room for noise.
    assert parse_cost(large) / parse_cost(small) < 64
