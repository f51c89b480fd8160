"""Admission control: an overloaded worker answers 503 `overloaded` with Retry-After at once,
rather than letting requests queue past a client's patience, and never refuses /health."""

import asyncio
import time

import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.core.http.admission import Admission, Overloaded
from app.main import create_app
from tests.conftest import running, variant
from tests.problems import assert_problem

OVERLOADED = "urn:problem-type:overloaded"


async def test_a_free_slot_is_taken_at_once_and_a_freed_one_passes_to_the_next_in_line() -> None:
    admission = Admission(limit=1, queue_timeout=1.0)
    assert admission.enter_now()
    assert not admission.enter_now()
    waiter = asyncio.create_task(admission.enter())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    admission.leave(time.perf_counter())
    await asyncio.wait_for(waiter, 1)
    assert admission.running == 1
    admission.leave(None)
    assert admission.running == 0


async def test_a_request_that_would_wait_too_long_is_refused_on_arrival() -> None:
    admission = Admission(limit=1, queue_timeout=0.5)
    admission.enter_now()
    # Requests have been taking two seconds: one more in line would wait about as long.
    admission.leave(time.perf_counter() - 2.0 / 0.1)
    admission.enter_now()
    started = time.perf_counter()
    with pytest.raises(Overloaded) as refused:
        await admission.enter()
    assert time.perf_counter() - started < 0.1
    assert refused.value.retry_after >= 1


async def test_a_request_that_has_waited_the_queue_timeout_is_refused_then() -> None:
    admission = Admission(limit=1, queue_timeout=0.2)
    admission.enter_now()
    started = time.perf_counter()
    with pytest.raises(Overloaded):
        await admission.enter()
    assert 0.2 <= time.perf_counter() - started < 1.0
    # The refused request left no trace in the line: the next one waits its own turn.
    admission.leave(None)
    assert admission.enter_now()


def slow_app(settings: Settings) -> FastAPI:
    application = create_app(
        variant(settings, max_concurrent_requests=2, request_queue_timeout_ms=300)
    )

    @application.get("/slow")
    async def slow() -> dict[str, bool]:
        await asyncio.sleep(1.0)
        return {"done": True}

    return application


async def test_a_burst_past_what_a_worker_runs_is_answered_503_at_once(
    migrated: Settings,
) -> None:
    async with running(slow_app(migrated)) as client:
        started = time.perf_counter()
        burst = [asyncio.create_task(client.get("/slow")) for _ in range(6)]
        await asyncio.sleep(0.05)
        health = await client.get("/health")
        answers = await asyncio.gather(*burst)
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200, 200, 503, 503, 503, 503]
    for answer in answers:
        if answer.status_code == 503:
            assert_problem(answer, 503, OVERLOADED)
            assert int(answer.headers["retry-after"]) >= 1
            # Within the queue timeout, not after the slow requests ahead of it.
            assert answer.elapsed.total_seconds() < 0.9
    # The liveness probe is never refused, however busy the worker.
    assert health.status_code == 200
    assert time.perf_counter() - started < 5
