"""Contract fuzzing: requests generated from the served OpenAPI document, answers checked
against it.

Every operation is called with valid and invalid data (schemathesis' positive and negative
modes) as an administrator, as a regular user and anonymously, and every answer must pass
every check schemathesis runs by default: no 5xx, a declared status, content type, headers
and body, invalid data rejected and valid data accepted, authentication enforced.

The app runs on an event loop of its own (schemathesis' ASGI client starts the lifespan on
its loop; through nginx, TEST_VIA_NGINX=1, uvicorn serves it on a thread), so this module
builds its own app on the suite's migrated database instead of sharing the session app,
whose engine belongs to the suite's loop. Its fixtures are function-scoped so that they
start after clean_state has emptied the tables.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
import requests
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CheckFunction
from schemathesis.core.failures import FailureGroup
from schemathesis.core.transport import Response
from schemathesis.python import asgi
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.core.config import Settings
from app.core.types import MAX_ID
from app.main import create_app
from tests.conftest import RUNS_WITH_POSTGRES, variant
from tests.factories.accounts import PASSWORD
from tests.transport import VIA_NGINX, threaded_front

ADMIN_EMAIL = "fuzz-admin@example.com"
USER_EMAIL = "fuzz-user@example.com"
# Enough to reach every branch of the validation of each operation, small enough that the
# whole document is covered in well under a minute on either backend.
MAX_EXAMPLES = 10
VALIDATION_ERROR = "urn:problem-type:validation-error"
MONEY_FIELDS = {"price", "min_price", "max_price"}
# The live event stream never ends by itself: what it sent by then is what is checked, rather
# than what it sent before schemathesis' default ten-second deadline, every call.
EVENT_STREAM = "GET /api/v1/events"
EVENT_STREAM_SECONDS = 0.5


@dataclass
class Identities:
    """Bearer headers for the administrator and the user, and none for the anonymous caller.

    Fuzzed calls may log an identity out, change its email or revoke its sessions; the
    tokens are renewed for each operation so one operation's side effects do not hide the
    next operation's behaviour behind a 401.
    """

    client: requests.Session
    operation: str = ""
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def for_operation(self, operation: str) -> Iterator[dict[str, str]]:
        if operation != self.operation:
            self.operation = operation
            self.headers = {email: self._log_in(email) for email in (ADMIN_EMAIL, USER_EMAIL)}
        yield from self.headers.values()
        yield {}

    def _log_in(self, email: str) -> dict[str, str]:
        response = self.client.post(
            "/api/v1/auth/token", data={"username": email, "password": PASSWORD}
        )
        if response.status_code != 200:
            # Deactivated or renamed by an earlier fuzzed call: it calls as nobody now.
            return {}
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _seed(client: requests.Session, identities: Identities) -> None:
    """One object of each kind, so generated ids sometimes name something that exists."""
    response = client.post(
        "/api/v1/users", json={"email": USER_EMAIL, "full_name": "Fuzz User", "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    admin, user, _ = identities.for_operation("seed")
    item = client.post(
        "/api/v1/items",
        json={"name": "Lamp", "description": "A lamp", "price": "60.00", "stock": 50},
        headers=user,
    )
    assert item.status_code == 201, item.text
    order = {
        "lines": [{"item_id": item.json()["id"], "quantity": 1}],
        "shipping": "standard",
        "address": {"street": "1 Main St", "city": "Springfield", "country": "US"},
    }
    bodies: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        ("/api/v1/posts", {"title": "Hello", "body": "World"}, user),
        ("/api/v1/orders", order, user),
        ("/api/v1/users/me/api-keys", {"name": "script", "scopes": ["profile"]}, user),
        (
            "/api/v1/webhooks",
            {"url": "https://93.184.215.14/hook", "events": ["order.placed"]},
            admin,
        ),
    ]
    for path, body, headers in bodies:
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 201, response.text


@pytest.fixture
def fuzzed_app(migrated: Settings) -> Iterator[FastAPI]:
    app = create_app(
        variant(
            migrated,
            first_admin_email=ADMIN_EMAIL,
            first_admin_password=PASSWORD,
        )
    )
    try:
        yield app
    finally:
        asgi.shutdown_lifespans()


class _BaseUrlSession(requests.Session):
    """requests against one server, with paths for URLs, as schemathesis' ASGI client."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        verb = method.decode() if isinstance(method, bytes) else method
        path = url.decode() if isinstance(url, bytes) else url
        return super().request(verb, f"{self.base_url}{path}", *args, **kwargs)


@pytest.fixture
def nginx_url(fuzzed_app: FastAPI) -> Iterator[str | None]:
    """Where the app answers through nginx with TEST_VIA_NGINX=1; None in process."""
    if not VIA_NGINX:
        yield None
        return
    with threaded_front(fuzzed_app) as url:
        yield url


@pytest.fixture
def contract(fuzzed_app: FastAPI, nginx_url: str | None) -> Any:
    if nginx_url is None:
        return schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app)
    return schemathesis.openapi.from_url(f"{nginx_url}/openapi.json")


@pytest.fixture
def identities(fuzzed_app: FastAPI, contract: Any, nginx_url: str | None) -> Identities:
    client = (
        asgi.get_client(cast(Any, fuzzed_app)) if nginx_url is None else _BaseUrlSession(nginx_url)
    )
    identities = Identities(client)
    _seed(client, identities)
    return identities


# The shared app is named only so that clean_state empties the database first.
pytestmark = [pytest.mark.usefixtures("app"), RUNS_WITH_POSTGRES]


def _rule_refusal(response: Response) -> bool:
    """A refusal of schema-valid input by a rule that JSON Schema cannot state.

    positive_data_acceptance takes every schema-valid request for one the service must
    accept. Domain rules answer with their own problem type (an expired token, a tampered
    cursor, a scope the caller lacks, an unknown item): declared 400/422 responses that no
    schema can predict. A validation error passes only when every error in it is one of
    `_unstateable`; any other still fails the check.
    """
    if response.status_code not in (400, 422):
        return False
    problem = response.json()
    if problem.get("type") != VALIDATION_ERROR:
        return True
    errors = problem.get("errors") or [{"type": "", "msg": "", "loc": []}]
    return all(_unstateable(error) for error in errors)


def _unstateable(error: dict[str, Any]) -> bool:
    kind, message, field = error["type"], error["msg"], error["loc"][-1]
    # email-validator refuses special-use domains (`.test`, `.local`) that `format: email`
    # allows.
    if kind == "value_error" and message.startswith("value is not a valid email address"):
        return True
    # Money: a JSON number is a binary float, so "at most two places" has no exact
    # `multipleOf`, and the bounds of a JSON Schema apply to the number form only, not to
    # the string form ("0.00") that money also accepts.
    if kind in {"decimal_max_places", "decimal_max_digits"}:
        return True
    if field in MONEY_FIELDS and kind in {"greater_than", "greater_than_equal", "less_than_equal"}:
        return True
    # A webhook URL's host is checked by parsing it as the deliveries do; its pattern states
    # the characters, not that "999.1.1.1" is no IPv4 address or 99999 no port.
    if field == "url" and (kind == "url_parsing" or "host" in message):
        return True
    # One query parameter bounding another (`min_price` <= `max_price`).
    if kind == "value_error" and message.endswith("min_price must not exceed max_price"):
        return True
    # A query parameter is text whichever form the document offers, so a money filter's
    # number form in exponent notation ("1e-05") is read as text, and refused as the string
    # form would be.
    if (
        field in MONEY_FIELDS
        and kind in {"decimal_parsing", "money_format"}
        and error["loc"][0] == "query"
    ):
        return True
    # The largest id, 2**63 - 1, sent as a JSON float rounds up to 2**63, past `maximum`.
    return bool(kind == "less_than_equal" and message.endswith(str(MAX_ID)))


def _has_inputs(operation: APIOperation[Any, Any, Any, Any]) -> bool:
    # With nothing to make invalid, negative generation has no case to produce.
    return any(True for _ in operation.iter_parameters()) or bool(
        operation.get_request_payload_content_types()
    )


def _fuzz(
    operation: APIOperation[Any, Any, Any, Any], mode: GenerationMode, identities: Identities
) -> int:
    """Send `operation` the cases of one mode as each identity; the number of cases."""
    cases = 0
    timeout = EVENT_STREAM_SECONDS if operation.label == EVENT_STREAM else None

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case[Any]) -> None:
        nonlocal cases
        cases += 1
        for headers in identities.for_operation(operation.label):
            response = case.call(headers=headers, timeout=timeout)
            excluded: list[CheckFunction] = (
                [positive_data_acceptance] if _rule_refusal(response) else []
            )
            case.validate_response(
                response,
                headers=headers,
                excluded_checks=excluded,
                transport_kwargs={"headers": headers},
            )

    check()
    return cases


def test_every_operation_keeps_its_contract(contract: Any, identities: Identities) -> None:
    failures: list[str] = []
    cases = 0
    operations = [result.ok() for result in contract.get_all_operations()]
    for operation in operations:
        for mode in GenerationMode:
            if mode is GenerationMode.NEGATIVE and not _has_inputs(operation):
                continue
            try:
                cases += _fuzz(operation, mode, identities)
            except (FailureGroup, Exception) as error:  # one report for all that fail
                failures.append(f"{operation.label} ({mode}): {error}")
    print(f"{len(operations)} operations, {cases} cases")
    print("\n\n".join(failures))
    assert not failures, "\n\n".join(failures)
