"""What runs under callgrind for bench.instructions: `python -m bench.exercise WORKLOAD`.

The app as the environment configures it (bench.instructions passes the benchmark's
production settings): its lifespan, one log-in, a warm-up of every path, then one window
with no request and one window of N requests per path. Each window is bracketed by marks,
calls of getppid(), on which callgrind dumps the counts gathered since the last mark
(`--dump-before=getppid`); nothing else in the process calls it, so a window's dump holds
exactly what its requests cost, plus the marks' own cost, which the empty window measures.
It prints the statuses it got, so a count of failed requests is never taken for the cost
of good ones.
"""

import asyncio
import gc
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import uvloop

from bench.asgi import InProcess

MARKER = "BENCH-EXERCISE "
LOGIN_EMAIL = "demo1@example.com"


@dataclass(frozen=True)
class Workload:
    paths: tuple[str, ...]
    # Which of `paths` are sent with the bearer token of the log-in.
    authorized: tuple[bool, ...]
    warmup: int
    requests: int

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Workload":
        data = json.loads(text)
        return cls(
            paths=tuple(str(path) for path in data["paths"]),
            authorized=tuple(bool(flag) for flag in data["authorized"]),
            warmup=int(data["warmup"]),
            requests=int(data["requests"]),
        )

    @property
    def marks(self) -> int:
        """Marks the exercise makes: two around the empty window and around each path's."""
        return 2 * (len(self.paths) + 1)


async def log_in(client: InProcess) -> list[tuple[str, str]]:
    from app.demo import DEMO_PASSWORD

    form = f"username={LOGIN_EMAIL.replace('@', '%40')}&password={DEMO_PASSWORD}".encode()
    headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("content-length", str(len(form))),
    ]
    status, body = await client.request("POST", "/api/v1/auth/token", headers, form)
    if status != 200:
        raise RuntimeError(f"logging in answered {status}")
    return [("authorization", f"Bearer {json.loads(body)['access_token']}")]


def exercise(loop: asyncio.AbstractEventLoop, workload: Workload) -> dict[int, int]:
    # Imported here: the settings are read from the environment at import.
    from app.main import app

    # As gunicorn.conf.py's post_worker_init leaves every worker: what the import built is
    # never walked by the collector again.
    gc.collect()
    gc.freeze()

    statuses: dict[int, int] = {}
    client = InProcess(app)

    async def send(indexes: Sequence[int], headers: Sequence[Sequence[tuple[str, str]]]) -> None:
        for index in indexes:
            status, _ = await client.request("GET", workload.paths[index], headers[index])
            statuses[status] = statuses.get(status, 0) + 1

    def window(indexes: Sequence[int], headers: Sequence[Sequence[tuple[str, str]]]) -> None:
        # Collected outside the window, so a full collection never lands in one at random.
        gc.collect()
        os.getppid()
        loop.run_until_complete(send(indexes, headers))
        os.getppid()

    loop.run_until_complete(client.__aenter__())
    try:
        bearer = loop.run_until_complete(log_in(client))
        headers = [bearer if flag else [] for flag in workload.authorized]
        loop.run_until_complete(send(list(range(len(workload.paths))) * workload.warmup, headers))
        window([], headers)
        for index in range(len(workload.paths)):
            window([index] * workload.requests, headers)
    finally:
        loop.run_until_complete(client.__aexit__(None, None, None))
    return statuses


def main(argv: Sequence[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    # The loop uvicorn runs the app on in production.
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        statuses = exercise(loop, Workload.from_json(arguments[0]))
    finally:
        loop.close()
    print(MARKER + json.dumps({str(status): count for status, count in statuses.items()}))


if __name__ == "__main__":
    main()
