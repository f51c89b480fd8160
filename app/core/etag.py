"""Strong ETags and `If-None-Match` revalidation for cacheable JSON reads.

A route renders its model through `ETagJSON` (see app.api.deps): the body gets a strong ETag
hashed from its bytes, so every worker and replica gives the same tag for the same body, and
a client that already holds that body gets a 304 with no body instead.
"""

import hashlib
import re

from fastapi import Request, Response
from pydantic import BaseModel

# An entity-tag may contain commas, so a header is split by matching tags, not by ",".
_ENTITY_TAG = re.compile(r'\s*(?:W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?:,|$)')
_REVALIDATING_METHODS = frozenset({"GET", "HEAD"})


def strong_etag(body: bytes) -> str:
    """A quoted strong ETag derived from the body bytes alone."""
    return f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'


def none_match(if_none_match: str, etag: str) -> bool:
    """Whether `If-None-Match` lists `etag`, by the weak comparison RFC 9110 13.1.2 asks for."""
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(f'"{tag}"' == opaque for tag in _ENTITY_TAG.findall(if_none_match))


class ETagJSONRenderer:
    """Renders a model as JSON with a strong ETag, or a 304 when the client has it.

    Headers set on the route's `Response` by dependencies (rate-limit counters,
    `Cache-Control`) are carried over, since FastAPI drops them when a route returns its
    own response.
    """

    def __init__(self, request: Request, response: Response) -> None:
        self._request = request
        self._response = response

    def __call__(self, model: BaseModel) -> Response:
        body = model.model_dump_json(by_alias=True).encode()
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
