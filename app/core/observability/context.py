"""Per-request context (request id) readable from anywhere without passing it around."""

import re
import uuid
from contextvars import ContextVar
from typing import TypeGuard

REQUEST_ID_HEADER = "X-Request-ID"
# Only ids that are safe to echo into headers and logs are honoured.
_WELL_FORMED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def well_formed_request_id(incoming: str | None) -> TypeGuard[str]:
    return incoming is not None and _WELL_FORMED_REQUEST_ID.fullmatch(incoming) is not None


def choose_request_id(incoming: str | None) -> str:
    return incoming if well_formed_request_id(incoming) else uuid.uuid4().hex
