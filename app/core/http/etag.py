"""Strong ETags and `If-None-Match` revalidation for cacheable JSON reads.

A route renders its model through `ETagJSON` (see app.core.deps): the body gets a strong ETag
hashed from its bytes, so every worker and replica gives the same tag for the same body, and
a client that already holds that body gets a 304 with no body instead.
"""

import hashlib
import re

from fastapi import Request, Response
from pydantic import BaseModel

from app.core.schemas import JSONBody

ANY = "*"
# etagc of RFC 9110 8.8.3: visible ASCII but DQUOTE, plus obs-text.
_OPAQUE = re.compile(r"[\x21\x23-\x7e\x80-\xff]*")
# Each pattern is one character class matched at a fixed position: no backtracking, so the
# scan below is linear in the length of the header.
_SEPARATORS = re.compile(r"[ \t,]*")
_OWS = re.compile(r"[ \t]*")
_REVALIDATING_METHODS = frozenset({"GET", "HEAD"})


def strong_etag(body: bytes) -> str:
    """A quoted strong ETag derived from the body bytes alone."""
    return f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'


def _skip(pattern: re.Pattern[str], text: str, position: int) -> int:
    match = pattern.match(text, position)
    return match.end() if match else position


def entity_tags(field: str) -> list[str]:
    """The entity-tags of an `If-None-Match` value, as written (`W/"a"`, `"b"`).

    `["*"]` for the wildcard; empty when the value is not an RFC 9110 entity-tag list, which
    makes the condition false and the response a full 200, always a correct answer.
    One pass over the value, however hostile: an entity-tag may contain commas, so the value
    is scanned tag by tag rather than split.
    """
    if field.strip(" \t") == ANY:
        return [ANY]
    tags: list[str] = []
    position, end = 0, len(field)
    while True:
        position = _skip(_SEPARATORS, field, position)
        if position == end:
            return tags
        start = position
        if field.startswith("W/", position):
            position += 2
        if not field.startswith('"', position):
            return []
        closing = field.find('"', position + 1)
        if closing < 0 or not _OPAQUE.fullmatch(field, position + 1, closing):
            return []
        tags.append(field[start : closing + 1])
        position = _skip(_OWS, field, closing + 1)
        if position < end and field[position] != ",":
            return []


def opaque_tag(etag: str) -> str:
    return etag.removeprefix("W/")


def none_match(if_none_match: str, etag: str) -> bool:
    """Whether `If-None-Match` lists `etag`, by the weak comparison RFC 9110 13.1.2 asks for."""
    tags = entity_tags(if_none_match)
    if tags == [ANY]:
        return True
    opaque = opaque_tag(etag)
    return any(opaque_tag(tag) == opaque for tag in tags)


class ETagJSONRenderer:
    """Renders a model as JSON with a strong ETag, or a 304 when the client has it.

    Headers set on the route's `Response` by dependencies (rate-limit counters,
    `Cache-Control`) are carried over, since FastAPI drops them when a route returns its
    own response.
    """

    def __init__(self, request: Request, response: Response) -> None:
        self._request = request
        self._response = response

    def __call__(self, content: BaseModel | JSONBody) -> Response:
        body = (content if isinstance(content, JSONBody) else JSONBody.of(content)).data
        etag = strong_etag(body)
        if_none_match = self._request.headers.get("if-none-match")
        if (
            if_none_match is not None
            and self._request.method in _REVALIDATING_METHODS
            and none_match(if_none_match, etag)
        ):
            rendered = Response(status_code=304)
        else:
            rendered = Response(body, media_type="application/json")
        rendered.headers.raw.extend(self._response.headers.raw)
        rendered.headers["ETag"] = etag
        return rendered


async def etag_json(request: Request, response: Response) -> ETagJSONRenderer:
    return ETagJSONRenderer(request, response)
