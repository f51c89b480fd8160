"""Prometheus metrics: every series the service records, defined in this one place.

Code increments the counters defined here (cache hits and misses, rate-limit rejections)
rather than defining its own, so every name is listed once; the edge records the HTTP
series, and app.core.http.metrics serves the `/metrics` scrape.

Under gunicorn every worker is a process with its own counters. With
`PROMETHEUS_MULTIPROC_DIR` set (gunicorn.conf.py sets and empties it), prometheus_client
writes each worker's values to files there and a scrape merges them, so any worker answers
for all of them.

That write takes a lock and touches a memory-mapped file on every update, a few
microseconds each and several per request. The hot paths therefore count into `TALLY`, plain
numbers in this process, and `TALLY.flush()` adds them to the metrics once a second (from
a `Flusher`, which the edge runs for the app's lifetime) and before every scrape. A scrape
may be a second behind another worker; a worker that dies loses at most its last second.
"""

import asyncio
import bisect
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from prometheus_client import (
    Counter,
    Gauge,
    Histogram,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from app.core.tasks import stop

# Refresh interval of each worker's pool gauges in multiprocess mode, where a scrape only
# reaches the worker that answers it.
POOL_REFRESH_SECONDS = 5.0
FLUSH_SECONDS = 1.0
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from receiving a request to sending the last of its response.",
    ["method", "route", "status"],
    buckets=DURATION_BUCKETS,
)
HTTP_REQUESTS_IN_FLIGHT = Gauge(
    "http_requests_in_flight",
    "Requests being handled now.",
    multiprocess_mode="livesum",
)
DB_POOL_CHECKED_OUT = Gauge(
    "db_pool_checked_out_connections",
    "Database connections in use by requests.",
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    "db_pool_size_connections",
    "Database connections the pool keeps open (overflow connections come on top).",
    multiprocess_mode="livesum",
)
# Each worker looks at the replicas itself; a scrape keeps the most pessimistic view.
DB_REPLICA_UP = Gauge(
    "db_replica_up",
    "1 while a read replica answers (it may still lag), 0 while it is down.",
    ["replica"],
    multiprocess_mode="livemin",
)
DB_REPLICA_LAG = Gauge(
    "db_replica_lag_seconds",
    "How long ago the primary had written no further than a read replica has replayed.",
    ["replica"],
    multiprocess_mode="livemax",
)
CACHE_HITS = Counter("cache_hits", "Cache look-ups answered from the cache.", ["namespace"])
CACHE_MISSES = Counter("cache_misses", "Cache look-ups that fell through.", ["namespace"])
RATE_LIMIT_REJECTIONS = Counter(
    "rate_limit_rejections", "Requests refused with 429, by limit scope.", ["scope"]
)

# The job log (app.core.outbox), by topic: one series per message type, a handful in all.
OUTBOX_DELIVERED = Counter(
    "outbox_messages_delivered", "Job log messages their handler completed.", ["topic"]
)
OUTBOX_RETRIED = Counter(
    "outbox_messages_retried", "Failed job log attempts scheduled for a retry.", ["topic"]
)
OUTBOX_DEAD = Counter(
    "outbox_messages_dead", "Job log messages given up after their last attempt.", ["topic"]
)
# Counted in the database by every running dispatcher, each seeing the same table: in a
# multiprocess scrape the live processes' values are one number, so the largest is kept.
OUTBOX_PENDING = Gauge(
    "outbox_messages_pending",
    "Job log messages due and not yet delivered, by topic.",
    ["topic"],
    multiprocess_mode="livemax",
)
OUTBOX_BACKLOG_AGE = Histogram(
    "outbox_backlog_age_seconds",
    "How long each claimed job log message had been due and waiting.",
    ["topic"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0),
)


def multiprocess_mode() -> bool:
    return "PROMETHEUS_MULTIPROC_DIR" in os.environ


def record_pool_usage(engine: AsyncEngine) -> None:
    pool = engine.sync_engine.pool
    # Only a queue pool has a size; SQLite's in-memory or null pools report nothing.
    if isinstance(pool, QueuePool):
        DB_POOL_CHECKED_OUT.set(pool.checkedout())
        DB_POOL_SIZE.set(pool.size())


@asynccontextmanager
async def pool_usage_refresh(engine: AsyncEngine) -> AsyncIterator[None]:
    """Keep this worker's pool gauges current while the application runs (multiprocess)."""
    if not multiprocess_mode():
        yield
        return

    async def refresh() -> None:
        while True:
            record_pool_usage(engine)
            await asyncio.sleep(POOL_REFRESH_SECONDS)

    task = asyncio.create_task(refresh())
    try:
        yield
    finally:
        await stop(task)


class _Durations:
    """A histogram's observations since the last flush, by bucket."""

    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)
        self.total = 0.0


class Tally:
    """Counts and request durations kept in process until `flush()` (module docstring)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[Counter, tuple[str, ...]], int] = {}
        self._durations: dict[tuple[str, str, str], _Durations] = {}
        self._in_flight: Callable[[], int] | None = None

    def count(self, counter: Counter, *labels: str) -> None:
        key = (counter, labels)
        self._counts[key] = self._counts.get(key, 0) + 1

    def request(self, method: str, route: str, status: str, seconds: float) -> None:
        """One HTTP request answered: `http_requests` and `http_request_duration_seconds`."""
        key = (method, route, status)
        durations = self._durations.get(key)
        if durations is None:
            durations = self._durations[key] = _Durations()
        durations.buckets[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        durations.total += seconds

    def watch_in_flight(self, read: Callable[[], int]) -> None:
        """Sample `http_requests_in_flight` from `read()` at every flush."""
        self._in_flight = read

    def flush(self) -> None:
        counts, self._counts = self._counts, {}
        durations, self._durations = self._durations, {}
        for (counter, labels), amount in counts.items():
            (counter.labels(*labels) if labels else counter).inc(amount)
        for labels, observed in durations.items():
            HTTP_REQUESTS.labels(*labels).inc(sum(observed.buckets))
            histogram = HTTP_REQUEST_DURATION.labels(*labels)
            # What `observe()` does one sample at a time: the sum, and the first bucket
            # whose bound holds the value (the last is +Inf).
            histogram._sum.inc(observed.total)
            for bucket, amount in zip(histogram._buckets, observed.buckets, strict=True):
                if amount:
                    bucket.inc(amount)
        if self._in_flight is not None:
            HTTP_REQUESTS_IN_FLIGHT.set(self._in_flight())


TALLY = Tally()


class Flusher:
    """Adds `TALLY` to the metrics every FLUSH_SECONDS from `start()` to `stop()`, and once
    more at `stop()`: the edge runs it from the app's start-up to its shutdown."""

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever(), name="metrics flush")

    def stop(self) -> None:
        """Stop, flushing what is left; synchronous, so nothing can cut it short."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        TALLY.flush()

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            TALLY.flush()
