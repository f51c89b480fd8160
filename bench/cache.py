"""A cached scenario's cache: warmed before each measured run, its hit ratio read from
the service's /metrics around it.

The orders placed between a cached row's repetitions invalidate the items they touch, so
without warming a repetition would start with part of the catalog missing and measure
misses as much as hits. Every path the scenario can request is read once instead.

The service counts look-ups in process and adds them to the shared metrics once a second
and before a scrape of the worker that answers it, so the counters are read after a pause
longer than that second: every worker's count, and every request still finishing when wrk
stopped, is in them.
"""

import http.client
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from prometheus_client.parser import text_string_to_metric_families

from bench.servers import ServerError

WARM_CONNECTIONS = 4
SETTLE_SECONDS = 1.5
HITS, MISSES = "cache_hits_total", "cache_misses_total"


def _read_all(port: int, paths: Sequence[str], headers: dict[str, str]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for path in paths:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise ServerError(f"warming the cache: GET {path} answered {response.status}")
    finally:
        connection.close()


def warm(port: int, paths: Sequence[str], headers: Sequence[str] = ()) -> None:
    """GET every path once, over a few keep-alive connections."""
    fields = dict(header.split(": ", 1) for header in headers)
    shares = [paths[start::WARM_CONNECTIONS] for start in range(WARM_CONNECTIONS)]
    with ThreadPoolExecutor(WARM_CONNECTIONS) as pool:
        for done in [pool.submit(_read_all, port, share, fields) for share in shares if share]:
            done.result()


def parse_cache_counts(exposition: str, namespace: str) -> tuple[int, int]:
    """(hits, misses) of one namespace in a Prometheus text exposition; 0 when absent."""
    counts = {HITS: 0.0, MISSES: 0.0}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name in counts and sample.labels.get("namespace") == namespace:
                counts[sample.name] += sample.value
    return int(counts[HITS]), int(counts[MISSES])


def cache_counts(port: int, namespace: str) -> tuple[int, int]:
    """The service's cache hits and misses in `namespace` so far, once its counts settle."""
    time.sleep(SETTLE_SECONDS)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        body = response.read().decode()
        if response.status != 200:
            raise ServerError(f"GET /metrics answered {response.status}")
    finally:
        connection.close()
    return parse_cache_counts(body, namespace)
