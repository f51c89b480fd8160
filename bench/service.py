"""The servers of a run: the service's production settings, its baselines, logging in, and
what is measured of the process itself (cold start, memory)."""

import http.client
import json
import os
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager

from app.core.config import Settings
from bench.prepare import REDIS_KEY_PREFIX, Backends
from bench.scenarios import ServerName
from bench.servers import SERVICE_CONFIG, Server, ServerError, rss_megabytes

# High enough that no request of a run is refused, with a one-second window so each
# moving window in Redis holds one second of hits rather than growing all run long.
RAISED_RATE_LIMIT = "1000000/second"
BASELINE_APPS = {
    ServerName.BARE_ASGI: "bench.baselines.bare_asgi:app",
    ServerName.PK_READ: "bench.baselines.pk_read:app",
    ServerName.RAW_INSERT: "bench.baselines.insert:app",
}


def service_environment(
    backends: Backends, secret_key: str, *, cache_enabled: bool = True, replica: bool = False
) -> dict[str, str]:
    # A replica is the replica row's alone, even when the benchmark's own environment names
    # one (scripts.with_replica sets DATABASE_READ_URL for the run).
    inherited = {name: value for name, value in os.environ.items() if name != "DATABASE_READ_URL"}
    environment = inherited | {
        "ENVIRONMENT": "production",
        "SECRET_KEY": secret_key,
        "DATABASE_URL": backends.database_url,
        "REDIS_URL": backends.redis_url,
        "REDIS_KEY_PREFIX": REDIS_KEY_PREFIX,
        "RATE_LIMIT_ENABLED": "true",
        "METRICS_ENABLED": "true",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
        "OTEL_ENABLED": "false",
        "CACHE_ENABLED": "true" if cache_enabled else "false",
        # Scenarios take turns, so a cached row's entries would expire between its runs and
        # each run start cold; steady traffic over the catalog keeps them warm instead.
        "CACHE_TTL_SECONDS": "900",
        # As compose and Kubernetes run it: the replicas only write job log messages, and
        # the worker service delivers them (bench measures the API, not SMTP).
        "OUTBOX_ENABLED": "false",
        # Tokens taken before the run must outlive it; expiry costs nothing per request.
        "ACCESS_TOKEN_EXPIRE_MINUTES": "120",
        # A database the benchmark made holds no earlier release's bcrypt hashes, so its
        # logins measure Argon2id alone, as a deployment without them is told to run.
        "PASSWORD_HASH_BCRYPT_ROUNDS": "0",
    }
    if replica and backends.read_url is not None:
        environment["DATABASE_READ_URL"] = backends.read_url
    # Every limit the settings define, so one added later is raised too.
    for name in Settings.model_fields:
        if name.startswith("rate_limit_") and name != "rate_limit_enabled":
            environment[name.upper()] = RAISED_RATE_LIMIT
    return environment


def cache_setting_supported() -> bool:
    return "cache_enabled" in Settings.model_fields


def baseline_environment(backends: Backends) -> dict[str, str]:
    return os.environ | {"DATABASE_URL": backends.database_url}


def log_in(server: Server, email: str, password: str) -> str:
    form = urllib.parse.urlencode({"username": email, "password": password})
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(
            "POST",
            "/api/v1/auth/token",
            body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = connection.getresponse()
        if response.status != 200:
            raise ServerError(f"logging in as {email} answered {response.status}")
        token: str = json.load(response)["access_token"]
        return token
    finally:
        connection.close()


@contextmanager
def running(servers: Sequence[Server]) -> Iterator[None]:
    with ExitStack() as stack:
        for server in servers:
            server.start()
            stack.callback(server.stop)
        for server in servers:
            server.wait_until_serving()
            server.pin()
        yield


def measure_cold_start(environment: Mapping[str, str], cpu: int | None, times: int) -> list[float]:
    """Seconds from process start to the first 200 from /health, one fresh start each."""
    found = []
    for _ in range(times):
        server = Server(
            "cold-start",
            "app.main:app",
            environment,
            cpu=cpu,
            pin_at_start=True,
            config=SERVICE_CONFIG,
        )
        server.start()
        try:
            found.append(server.wait_until_serving())
        finally:
            server.stop()
    return found


def worker_rss(server: Server) -> list[float]:
    return [round(rss_megabytes(pid), 1) for pid in server.worker_pids()]
