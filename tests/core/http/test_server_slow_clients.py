"""Slow clients against the servers as they run (`make serve`'s uvicorn, uvicorn with h11,
the image's gunicorn), over real sockets: a connection that sends nothing, a head or a body
a byte at a time, and an idle kept-alive connection are all closed within their bounds,
while a slow client within them is served."""

import json
import socket
import time
from collections.abc import Iterator

import pytest

from support.serving import Served, environment, server
from tests.conftest import RUNS_WITH_POSTGRES, make_settings
from tests.core.http.test_server import COMMANDS
from tests.migrations import upgrade_to_head

pytestmark = RUNS_WITH_POSTGRES

HEAD_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
KEEP_ALIVE = 1.0
# How much later than its bound a connection may close: scheduling on a busy machine.
SLACK = 2.0
REGISTRATION = b'{"email": "slow@example.com", "full_name": "Slow", "password": "patient-1234"}'


@pytest.fixture(scope="module", params=list(COMMANDS))
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("slow")
    upgrade_to_head(make_settings(None, directory / "app.db"))
    env = environment(
        directory,
        REQUEST_HEAD_TIMEOUT_SECONDS=str(HEAD_TIMEOUT),
        REQUEST_BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT),
        KEEP_ALIVE_TIMEOUT_SECONDS=str(int(KEEP_ALIVE)),
    )
    with server(COMMANDS[request.param], env) as running:
        yield running
    # A client cut off mid-body is not an error of the service's.
    assert "Traceback" not in running.output, running.output


def trickle(
    served: Served, pieces: list[bytes], *, every: float, give_up_after: float
) -> tuple[float, bytes, bool]:
    """Send `pieces` one every `every` seconds, reading what comes back, until the server
    closes the connection or `give_up_after` seconds pass: how long the connection lasted,
    what the server answered, and whether it was the server that closed it."""
    started = time.monotonic()
    answer = b""
    pending = list(pieces)
    next_send = started
    with socket.create_connection((served.host, served.port), timeout=5) as connection:
        connection.settimeout(0.05)
        while time.monotonic() - started < give_up_after:
            if pending and time.monotonic() >= next_send:
                try:
                    connection.sendall(pending.pop(0))
                except (BrokenPipeError, ConnectionResetError):
                    return time.monotonic() - started, answer, True
                next_send += every
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                return time.monotonic() - started, answer, True
            if not chunk:
                return time.monotonic() - started, answer, True
            answer += chunk
    return time.monotonic() - started, answer, False


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_a_connection_that_sends_nothing_is_closed(served: Served) -> None:
    lasted, answer, closed = trickle(served, [], every=1, give_up_after=HEAD_TIMEOUT + SLACK)
    assert closed
    assert answer == b""
    assert lasted >= HEAD_TIMEOUT * 0.9


def test_a_head_sent_a_byte_at_a_time_gets_a_408_and_is_closed(served: Served) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100 + b"\r\n\r\n"
    # Four bytes a second: every pause is short, the head as a whole is not.
    pieces = [head[i : i + 1] for i in range(len(head))]
    lasted, answer, closed = trickle(served, pieces, every=0.25, give_up_after=HEAD_TIMEOUT + SLACK)
    assert closed
    assert status_of(answer) == 408
    head_part, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head_part.lower()
    assert json.loads(body)["status"] == 408
    assert lasted < HEAD_TIMEOUT + SLACK


def test_a_body_that_pauses_too_long_is_cut_off(served: Served) -> None:
    head = (
        b"POST /api/v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(REGISTRATION)
    )
    pieces = [head + REGISTRATION[:1]] + [REGISTRATION[i : i + 1] for i in range(1, 20)]
    pause = BODY_TIMEOUT + 0.5
    lasted, answer, closed = trickle(served, pieces, every=pause, give_up_after=pause + SLACK)
    assert closed
    assert answer == b""
    assert lasted < pause


def test_an_idle_kept_alive_connection_is_closed(served: Served) -> None:
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    lasted, answer, closed = trickle(served, [request], every=1, give_up_after=KEEP_ALIVE + SLACK)
    assert closed
    assert status_of(answer) == 200
    assert lasted >= KEEP_ALIVE * 0.9


def test_a_slow_client_within_the_bounds_is_served(served: Served) -> None:
    head = (
        b"POST /api/v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(REGISTRATION)
    )
    # The head in two parts, then the body in four: each pause within the body's bound,
    # the body as a whole longer than it.
    middle = len(head) // 2
    quarter = len(REGISTRATION) // 4
    pieces = [head[:middle], head[middle:]] + [
        REGISTRATION[i : i + quarter] for i in range(0, len(REGISTRATION), quarter)
    ]
    every = BODY_TIMEOUT * 0.4
    lasted, answer, closed = trickle(served, pieces, every=every, give_up_after=10)
    assert closed
    assert status_of(answer) == 201, answer
    assert lasted > BODY_TIMEOUT
