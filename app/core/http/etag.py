"""Strong ETags and `If-None-Match` revalidation for cacheable JSON reads.

A route renders its body with `etag_response`: the body gets a strong ETag hashed from its
bytes, so every worker and replica gives the same tag for the same body, and a client that
already holds that body gets a 304 with no body instead (`conditional`, run by the edge).
"""

import hashlib
import re

from fastapi import Response
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.schemas import JSONBody

ANY = "*"
# etagc of RFC 9110 8.8.3: visible ASCII but DQUOTE, plus obs-text.
_OPAQUE = re.compile(r"[\x21\x23-\x7e\x80-\xff]*")
# Each pattern is one character class matched at a fixed position: no backtracking, so the
# scan below is linear in the length of the header.
_SEPARATORS = re.compile(r"[ \t,]*")
_OWS = re.compile(r"[ \t]*")
# What a 304 leaves out: it describes the body it does not send.
_BODY_HEADERS = frozenset({b"content-length", b"content-type"})


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


def etag_response(content: BaseModel | JSONBody) -> Response:
    """A JSON response with a strong ETag hashed from its bytes.

    The edge answers a request whose `If-None-Match` lists the tag with a 304 instead
    (`conditional`), so a route only renders.
    """
    body = (content if isinstance(content, JSONBody) else JSONBody.of(content)).data
    response = Response(body, media_type="application/json")
    response.headers.raw.append((b"etag", strong_etag(body).encode()))
    return response


def conditional(send: Send, if_none_match: str) -> Send:
    """`send` for a GET or HEAD with `If-None-Match`: a 200 whose ETag it lists becomes a
    304 with the same headers but the body's (RFC 9110 15.4.5), and no body."""
    not_modified = False

    async def send_or_304(message: Message) -> None:
        nonlocal not_modified
        if message["type"] == "http.response.start" and message["status"] == 200:
            headers = message.get("headers", ())
            etag = next((value for name, value in headers if name == b"etag"), None)
            if etag is not None and none_match(if_none_match, etag.decode("latin-1")):
                not_modified = True
                message = {
                    **message,
                    "status": 304,
                    "headers": [h for h in headers if h[0] not in _BODY_HEADERS],
                }
        elif message["type"] == "http.response.body" and not_modified:
            if message.get("more_body", False):
                return
            message = {"type": "http.response.body", "body": b""}
        await send(message)

    return send_or_304


# The scope key by which the edge hands `Revalidating` a GET's `If-None-Match`.
IF_NONE_MATCH = "app.if_none_match"


class Revalidating:
    """Answers a GET or HEAD with `If-None-Match` through `conditional`, innermost, so that a
    304 is decided before anything (gzip) works on a body it will not send."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if_none_match = scope.get(IF_NONE_MATCH)
        if if_none_match is not None:
            send = conditional(send, if_none_match)
        await self.app(scope, receive, send)
