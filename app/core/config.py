"""Settings read from the environment and `.env`, validated once at start-up."""

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, NameEmail, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app import __version__
from app.core.setting_types import (
    HostPatterns,
    HttpBaseUrl,
    Networks,
    Origins,
    RateLimitString,
    estimated_entropy_bits,
)

# Public on purpose: production refuses to start while it is in use.
DEFAULT_SECRET_KEY = "change-me-insecure-development-key-0123456789"  # noqa: S105
# Every other key the repository prints (the Kubernetes Secret example), refused as the
# default is: a copied example that is long enough would otherwise pass. The tests look for
# SECRET_KEY values in every file of the repository and fail on one production would accept.
EXAMPLE_SECRET_KEYS = frozenset(
    {DEFAULT_SECRET_KEY, "replace-with-python-c-import-secrets-print-secrets-token-urlsafe-48"}
)
# An HMAC key an attacker could brute-force offline from one token: fewer bits than the
# least NIST accepts for an HMAC key (SP 800-131A), estimated from what the key is made of,
# so a long key of a few repeated characters ("0123456789" four times) counts for what it is.
MIN_SECRET_KEY_BITS = 112
# bcrypt's lowest cost.
BCRYPT_MIN_ROUNDS = 4


class Environment(StrEnum):
    LOCAL = "local"
    TEST = "test"
    PRODUCTION = "production"


class InsecureConfigurationError(RuntimeError):
    """Raised when production settings would leave the service unsafe or unscalable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    environment: Environment = Field(
        default=Environment.LOCAL, description="`local`, `test` or `production`"
    )
    project_name: str = Field(
        default="FastAPI Reference Service",
        description=(
            "the title of the OpenAPI document, and the issuer authenticator apps show "
            "for two-factor login"
        ),
    )
    version: str = Field(
        default=__version__,
        description="shown in OpenAPI, `/health` and the traces' `service.version`",
    )
    secret_key: SecretStr = Field(
        default=SecretStr(DEFAULT_SECRET_KEY),
        description=(
            "signs tokens; production refuses the default, every key the repository "
            "prints as an example, and any key with less than about 112 bits of estimated "
            "entropy: each character counts for the alphabet the key draws from, and a "
            "repeated or consecutive stretch (`0123456789` four times) counts as one "
            "guess; `python -c 'import secrets; print(secrets.token_urlsafe(48))'` makes "
            "a good one"
        ),
    )

    database_url: str | None = Field(
        default=None,
        description=(
            "`postgresql+asyncpg://user:pass@host:5432/db`; unset: SQLite at "
            "`SQLITE_PATH`; production refuses SQLite"
        ),
    )
    sqlite_path: Path = Field(default=Path("data/app.db"), description="the embedded database file")
    db_pool_size: int = Field(
        default=10, ge=1, description="PostgreSQL connections each worker's pool keeps"
    )
    db_max_overflow: int = Field(
        default=10,
        ge=0,
        description="PostgreSQL connections each worker may open beyond `DB_POOL_SIZE`",
    )
    db_pool_timeout: float = Field(
        default=10.0,
        gt=0,
        description="seconds to wait for a pooled connection (at most `DB_CONNECT_TIMEOUT`)",
    )
    db_pool_recycle: int = Field(
        default=1800, ge=-1, description="seconds before a pooled connection is recycled"
    )
    db_read_pool_size: int = Field(
        default=5,
        ge=1,
        description="connections per worker for the hot paths' single-row reads (PostgreSQL)",
    )
    db_call_pool_size: int = Field(
        default=10,
        ge=1,
        description=(
            "connections per worker for the writes that are one database call: placing, "
            "cancelling and shipping orders (PostgreSQL; the engine's pool behind "
            "PgBouncer)"
        ),
    )
    db_echo: bool = Field(default=False, description="log every SQL statement")
    db_connect_timeout: float = Field(
        default=3.0,
        gt=0,
        description=(
            "seconds to open a connection or hear back from the ping each pooled "
            "connection gets before use; past it the request is a 503 with `Retry-After`, "
            "and requests are refused at once until the server answers each worker's "
            "heartbeat again"
        ),
    )
    db_command_timeout: float = Field(
        default=10.0,
        gt=0,
        description="seconds one SQL statement may run before it is abandoned (503)",
    )
    db_pgbouncer: bool = Field(
        default=False,
        description=(
            "`true` when `DATABASE_URL` is PgBouncer in transaction mode: asyncpg's "
            "statement caches off, unique prepared-statement names"
        ),
    )
    database_read_url: str | None = Field(
        default=None,
        description=(
            "PostgreSQL streaming replicas, comma-separated: the catalog's reads and "
            "pages, the public posts and the administrators' lists of users and audit "
            "events may be served there, never older than the last write they must see "
            "(docs/architecture.md, Read replicas); writes, transactions and every "
            "authentication check stay on the primary; unset: every read on "
            "`DATABASE_URL`"
        ),
    )
    read_replica_max_lag_seconds: float = Field(
        default=5.0,
        gt=0,
        description=(
            "a replica further behind than this, or down, is skipped (its reads go to the "
            "primary) and reported `degraded` by `/health/ready` until it catches up"
        ),
    )
    migration_lock_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description=(
            "how long a migration waits for a table's lock before it fails (and is run "
            "again) instead of holding every query of that table queued behind it"
        ),
    )
    outbox_listen_url: str | None = Field(
        default=None,
        description=(
            "PostgreSQL itself for the job log's `LISTEN` connection, bypassing a "
            "transaction pooler; unset: `DATABASE_URL`"
        ),
    )

    redis_url: str | None = Field(
        default=None,
        description=(
            "Redis shared by workers and replicas; production refuses in-process "
            "substitutes when more than one worker runs (`WEB_CONCURRENCY` or gunicorn's "
            "`--workers`); unset: in-process"
        ),
    )
    redis_cluster: bool = Field(
        default=False, description="`true` when `REDIS_URL` names a node of a Redis Cluster"
    )
    web_concurrency: int = Field(
        default=1, ge=1, description="worker processes per replica (gunicorn reads it too)"
    )
    redis_key_prefix: str = Field(
        default="app",
        min_length=1,
        description="prefix of every Redis key, so deployments can share a Redis",
    )
    redis_failure_cooldown_seconds: float = Field(
        default=5.0,
        ge=0,
        description=(
            "after a Redis error, seconds to use the fallbacks before one request probes "
            "Redis again"
        ),
    )
    redis_timeout: float = Field(
        default=0.25,
        gt=0,
        description=(
            "the most one Redis call may cost a request, connecting included; past it the "
            "fallback is used"
        ),
    )

    cache_enabled: bool = Field(
        default=True,
        description="`false` reads everything afresh from the database (benchmarks and debugging)",
    )
    cache_ttl_seconds: float = Field(
        default=60.0, gt=0, description="seconds a cached value stays fresh"
    )
    cache_stale_seconds: float = Field(
        default=30.0,
        ge=0,
        description="seconds past its TTL a value may be served while one replica recomputes it",
    )
    cache_lock_seconds: float = Field(
        default=5.0, gt=0, description="lifetime of the recompute lock"
    )
    cache_lock_wait_seconds: float = Field(
        default=0.5,
        ge=0,
        description="how long others wait for the recompute's result when nothing stale is left",
    )
    cache_local_max_entries: int = Field(
        default=10_000, ge=1, description="size of the in-process cache used without Redis"
    )
    cache_near_enabled: bool = Field(
        default=True,
        description=(
            "each worker keeps what it reads from Redis under a lease (one Redis, not a "
            "cluster; every replica must have the same setting)"
        ),
    )
    cache_near_lease_ms: int = Field(
        default=25,
        ge=5,
        le=1000,
        description=(
            "how long a near copy may be served after its last proof of freshness; every "
            "write that invalidates the cache waits this long before it answers"
        ),
    )
    cache_near_max_entries: int = Field(
        default=10_000, ge=1, description="entries each worker's near cache keeps"
    )

    rate_limit_enabled: bool = Field(
        default=True, description="`false` turns every limit off (load tests only)"
    )
    rate_limit_default: RateLimitString = Field(
        default="100/minute",
        description="every `/api/v1` request, per user (valid bearer token) or else per client IP",
    )
    rate_limit_login: RateLimitString = Field(
        default="5/minute", description="token requests, per client IP and username"
    )
    rate_limit_register: RateLimitString = Field(
        default="10/hour", description="registrations, per client IP"
    )
    rate_limit_orders: RateLimitString = Field(
        default="30/minute", description="order creation, per user"
    )
    rate_limit_password_reset: RateLimitString = Field(
        default="5/hour",
        description="password reset requests, per client IP and, separately, per email",
    )
    rate_limit_verify_email: RateLimitString = Field(
        default="5/hour", description="fresh verification links, per user"
    )
    # Two-factor codes, per address at login and per account when turning it on or off.
    rate_limit_mfa: RateLimitString = Field(
        default="10/minute",
        description=(
            "two-factor codes: per client IP at `/auth/token/mfa`, per user when "
            "confirming or turning it off"
        ),
    )
    rate_limit_export: RateLimitString = Field(
        default="5/hour", description="data exports, per user"
    )
    trusted_proxies: Networks = Field(
        default=(),
        description=(
            "comma-separated IPs or CIDRs whose `X-Forwarded-For` is believed; the "
            "servers' own proxy-header handling is off"
        ),
    )

    # Tokens: HMAC-signed JWTs; PREVIOUS_SECRET_KEYS still verify during a key rotation.
    previous_secret_keys: list[SecretStr] = Field(
        default_factory=list,
        description=(
            "JSON list of older keys that still verify tokens during a rotation; "
            "production holds them to `SECRET_KEY`'s rule"
        ),
    )
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = Field(
        default="HS256", description="`HS256`, `HS384` or `HS512`; the only algorithm accepted"
    )
    jwt_issuer: str = Field(
        default="fastapi-reference-service", description="the `iss` every token must carry"
    )
    jwt_audience: str = Field(
        default="fastapi-reference-service-api", description="the `aud` every token must carry"
    )
    access_token_expire_minutes: int = Field(
        default=15, ge=1, le=24 * 60, description="access token lifetime"
    )
    refresh_token_expire_days: int = Field(
        default=14,
        ge=1,
        le=365,
        description="refresh token lifetime (each refresh issues a new one)",
    )
    max_api_keys_per_user: int = Field(
        default=50, ge=1, le=10_000, description="live (unexpired) API keys one account may hold"
    )

    # Argon2id cost; the defaults are OWASP's minimum (19 MiB, 2 passes).
    password_hash_memory_kib: int = Field(
        default=19456,
        ge=1024,
        description="Argon2id memory cost in KiB (the default is OWASP's minimum, 19 MiB)",
    )
    password_hash_iterations: int = Field(
        default=2, ge=1, description="Argon2id passes (the default is OWASP's minimum)"
    )
    # Unset: one fewer than the CPU cores, leaving a core for the event loop.
    password_hash_concurrency: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="password hashes running at once per worker; unset: CPU cores - 1",
    )
    # The cost of the bcrypt hashes earlier releases stored (bcrypt's rounds, 4-31). While
    # they are accepted every login also pays one bcrypt check at this cost, so that timing
    # cannot tell which accounts still have one; 0 once none remain: bcrypt hashes no
    # longer verify, and a login costs one Argon2id check.
    password_hash_bcrypt_rounds: int = Field(
        default=12,
        ge=0,
        le=31,
        description=(
            "the cost of earlier releases' bcrypt hashes: they verify (and are upgraded), "
            "and every login pays one bcrypt check at this cost so timing reveals no "
            "account's hash; `0` when none remain: bcrypt hashes are refused, a login "
            "costs one Argon2id check"
        ),
    )

    # Account links: where the emailed links point, and how long their tokens stay valid.
    public_base_url: HttpBaseUrl = Field(
        default="http://127.0.0.1:8000",
        description=(
            "where emailed links point: `{PUBLIC_BASE_URL}/verify-email?token=...`, "
            "`/reset-password?token=...`"
        ),
    )
    password_reset_expire_minutes: int = Field(
        default=30, ge=1, le=24 * 60, description="lifetime of a password reset link"
    )
    email_verification_expire_hours: int = Field(
        default=48, ge=1, le=30 * 24, description="lifetime of an email verification link"
    )
    require_verified_email: bool = Field(
        default=False,
        description="`true`: unverified users get 403 on writes (items, posts, orders)",
    )

    first_admin_email: str | None = Field(
        default=None,
        description="an administrator created at start-up if the email is not registered",
    )
    first_admin_password: SecretStr | None = Field(
        default=None, description="that administrator's password"
    )

    docs_enabled: bool | None = Field(
        default=None,
        description="`/docs`, `/redoc`, `/openapi.json`; unset: on, except in production",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="`DEBUG`, `INFO`, `WARNING`, `ERROR`"
    )
    log_format: Literal["json", "text"] | None = Field(
        default=None,
        description=(
            "`json` (structured lines) or `text` (readable); unset: `json` in production, "
            "else `text`"
        ),
    )
    health_check_timeout: float = Field(
        default=2.0, gt=0, description="seconds each readiness check may take"
    )

    smtp_host: str | None = Field(
        default=None,
        description="the SMTP server that sends email; unset: emails are logged, not sent",
    )
    smtp_port: int = Field(
        default=587,
        ge=1,
        le=65535,
        description="its port (usually 587 with `starttls`, 465 with `tls`)",
    )
    smtp_username: str | None = Field(default=None, description="SMTP login; unset: no login")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password")
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="`starttls` (required, never opportunistic), `tls` (implicit TLS) or `none`",
    )
    smtp_timeout: float = Field(
        default=10.0, gt=0, description="seconds each SMTP operation may take"
    )
    email_from: NameEmail = Field(
        default=NameEmail("FastAPI Reference Service", "no-reply@example.com"),
        description="the `From` of every email",
    )

    outbox_enabled: bool = Field(
        default=True, description="run the outbox dispatcher in this process"
    )
    outbox_poll_interval: float = Field(
        default=5.0,
        gt=0,
        description=(
            "seconds between checks for due messages when nothing wakes a dispatcher "
            "(another replica's retries, a stopped worker's leases)"
        ),
    )
    outbox_batch_size: int = Field(
        default=20,
        ge=1,
        le=1000,
        description=(
            "deliveries each dispatcher keeps in flight at once (and claims at most at a time)"
        ),
    )
    outbox_max_attempts: int = Field(
        default=10, ge=1, le=100, description="attempts before a message is marked dead"
    )
    outbox_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="how long a claimed message stays reserved; a delivery may take half of it",
    )
    outbox_retry_base_seconds: float = Field(
        default=10.0,
        gt=0,
        description=(
            "delay before the first retry, doubling up to `OUTBOX_RETRY_MAX_SECONDS` "
            "(less a random part of up to half)"
        ),
    )
    outbox_retry_max_seconds: float = Field(
        default=3600.0, gt=0, description="the longest delay between retries"
    )
    outbox_retention_days: int = Field(
        default=7,
        ge=1,
        description=(
            "delivered messages older than this are purged (hourly by the dispatchers, or "
            "`app.cli outbox purge`)"
        ),
    )

    webhook_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="time a webhook receiver has for the whole exchange"
    )
    webhook_allow_private_targets: bool = Field(
        default=False,
        description=(
            "allow webhook URLs on loopback, private and link-local addresses (development only)"
        ),
    )
    webhook_secret_overlap_seconds: int = Field(
        default=86400,
        ge=0,
        le=30 * 86400,
        description=(
            "after a secret rotation, how long every delivery also carries the old "
            "secret's signature (0 to 30 days)"
        ),
    )
    webhook_disable_after_dead: int = Field(
        default=5,
        ge=1,
        le=1000,
        description=(
            "dead deliveries in a row after which a webhook is turned off "
            '(`disabled_reason: "failing"`)'
        ),
    )
    events_heartbeat_seconds: float = Field(
        default=15.0,
        gt=0,
        le=300,
        description="seconds between the comment lines of a live event stream",
    )
    events_retention_hours: int = Field(
        default=24,
        ge=1,
        description=(
            "how far back `Last-Event-ID` replays; older ids start with `event: reset`; "
            "at most `OUTBOX_RETENTION_DAYS` in hours, since the job log keeps the events"
        ),
    )
    events_max_streams_per_user: int = Field(
        default=5,
        ge=1,
        le=1000,
        description=(
            "live event streams one user may hold open, across every worker and replica "
            "sharing Redis (in each worker process without it); more get 429"
        ),
    )
    otel_enabled: bool | None = Field(
        default=None, description="force tracing on or off; unset: on when an endpoint is set"
    )
    otel_exporter_otlp_endpoint: HttpBaseUrl | None = Field(
        default=None,
        description=(
            "OTLP/HTTP collector base URL (`http://collector:4318`); setting it turns tracing on"
        ),
    )
    otel_service_name: str = Field(
        default="fastapi-reference-service",
        min_length=1,
        description="the `service.name` resource attribute (`service.version` is `VERSION`)",
    )
    otel_sample_ratio: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description="share of new traces kept, `0.0`-`1.0`; a caller's decision is followed",
    )

    metrics_enabled: bool = Field(
        default=True, description="serve Prometheus metrics at `/metrics`"
    )
    worker_metrics_port: int = Field(
        default=9100,
        ge=0,
        le=65535,
        description=(
            "port on which `python -m app.worker` serves its `/metrics` (the job log's "
            "counters) and its liveness, `/health`"
        ),
    )
    worker_unhealthy_after_seconds: float = Field(
        default=60.0,
        gt=0,
        description=(
            "the worker's `/health` answers 503 once its database work has been failing this long"
        ),
    )

    cors_origins: Origins = Field(
        default_factory=list,
        description="comma-separated exact origins, `https://app.example.com`; unset: no CORS",
    )
    cors_allow_credentials: bool = Field(
        default=False,
        description=(
            "allow cookies and `Authorization` cross-origin; refused with `CORS_ORIGINS=*`"
        ),
    )
    allowed_hosts: HostPatterns = Field(
        default_factory=lambda: ["*"],
        description=(
            "comma-separated host names served (`api.example.com`, `*.example.com`); others get 400"
        ),
    )
    max_request_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=1024 * 1024 * 1024,
        description="larger request bodies get 413, declared or streamed",
    )
    max_request_header_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="request header lines totalling more get 431 and the connection is closed",
    )
    # The HTTP server's patience with slow clients (app.core.http.server), so a client that
    # connects and sends nothing, or sends a request a byte at a time, cannot hold a
    # connection open for ever.
    request_head_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description=(
            "seconds to send a whole request line and headers, from connecting or from a "
            "request's first byte on a kept-alive connection; a late head gets 408 and "
            "the connection is closed"
        ),
    )
    request_body_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=600,
        description="the longest pause within a request body before the connection is closed",
    )
    keep_alive_timeout_seconds: int = Field(
        default=5,
        ge=1,
        le=600,
        description=(
            "seconds an idle connection stays open after a response (replaces uvicorn's "
            "`--timeout-keep-alive` and gunicorn's `--keep-alive`)"
        ),
    )
    gzip_minimum_size: int = Field(
        default=1024,
        ge=0,
        le=1024 * 1024,
        description="responses at least this long are gzip-compressed",
    )
    hsts_seconds: int = Field(
        default=0,
        ge=0,
        le=2 * 365 * 24 * 3600,
        description="`Strict-Transport-Security` max-age; `0` sends none",
    )
    max_concurrent_requests: int = Field(
        default=128,
        ge=1,
        le=10_000,
        description=(
            "requests one worker runs at once; more wait, up to `REQUEST_QUEUE_TIMEOUT_MS`"
        ),
    )
    request_queue_timeout_ms: int = Field(
        default=1000,
        ge=10,
        le=60_000,
        description=(
            "the longest a request waits to start or for a database connection before it "
            "is answered 503 `overloaded` with `Retry-After`"
        ),
    )

    @model_validator(mode="after")
    def _bcrypt_rounds_are_bcrypts(self) -> Self:
        if 0 < self.password_hash_bcrypt_rounds < BCRYPT_MIN_ROUNDS:
            raise ValueError(
                f"PASSWORD_HASH_BCRYPT_ROUNDS is 0 (bcrypt hashes refused) or "
                f"{BCRYPT_MIN_ROUNDS} to 31"
            )
        return self

    @model_validator(mode="after")
    def _events_outlive_their_replay(self) -> Self:
        # Replay reads the job log, which purges delivered messages after its own retention.
        if self.events_retention_hours > self.outbox_retention_days * 24:
            raise ValueError("EVENTS_RETENTION_HOURS may not exceed OUTBOX_RETENTION_DAYS * 24")
        return self

    @model_validator(mode="after")
    def _credentials_need_explicit_origins(self) -> Self:
        # Browsers refuse credentials with a wildcard origin; echoing any origin back
        # instead would let every site act with the user's credentials.
        if self.cors_allow_credentials and "*" in self.cors_origins:
            raise ValueError("CORS_ALLOW_CREDENTIALS=true needs explicit CORS_ORIGINS, not *")
        return self

    @model_validator(mode="after")
    def _replicas_need_postgres(self) -> Self:
        if self.read_replica_urls and self.uses_sqlite:
            raise ValueError("DATABASE_READ_URL needs DATABASE_URL to be PostgreSQL")
        return self

    @property
    def read_replica_urls(self) -> tuple[str, ...]:
        if self.database_read_url is None:
            return ()
        return tuple(url.strip() for url in self.database_read_url.split(",") if url.strip())

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.sqlite_path}"

    @property
    def uses_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    @property
    def near_cache(self) -> bool:
        """Whether workers keep near copies of the shared cache (and writers wait for them)."""
        return (
            self.cache_enabled
            and self.cache_near_enabled
            and self.redis_url is not None
            and not self.redis_cluster
        )

    @property
    def show_docs(self) -> bool:
        if self.docs_enabled is not None:
            return self.docs_enabled
        return self.environment is not Environment.PRODUCTION

    @property
    def tracing_enabled(self) -> bool:
        if self.otel_enabled is not None:
            return self.otel_enabled
        return self.otel_exporter_otlp_endpoint is not None

    @property
    def json_logs(self) -> bool:
        if self.log_format is not None:
            return self.log_format == "json"
        return self.environment is Environment.PRODUCTION

    def _signing_key_problems(self) -> list[str]:
        # Previous keys still verify tokens, so a weak one is as dangerous as a weak current key.
        generate = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        keys = [("SECRET_KEY", self.secret_key, f"set a long random SECRET_KEY ({generate})")] + [
            (f"PREVIOUS_SECRET_KEYS[{index}]", key, "remove it from PREVIOUS_SECRET_KEYS")
            for index, key in enumerate(self.previous_secret_keys)
        ]
        problems = []
        for name, secret, remedy in keys:
            key = secret.get_secret_value()
            bits = estimated_entropy_bits(key)
            if key == DEFAULT_SECRET_KEY:
                problem = "is the public development default"
            elif key in EXAMPLE_SECRET_KEYS:
                problem = "is an example printed in the repository"
            elif bits < MIN_SECRET_KEY_BITS:
                problem = (
                    f"is too easy to guess (about {bits:.0f} bits of entropy, "
                    f"at least {MIN_SECRET_KEY_BITS} needed)"
                )
            else:
                continue
            problems.append(f"{name} {problem}: {remedy}")
        return problems

    def production_problems(self, *, workers: int | None = None) -> list[str]:
        """What stops these settings from being safe in production, one line each.

        `workers` is the number of worker processes when the server knows it (gunicorn's
        `--workers`); otherwise WEB_CONCURRENCY says.
        """
        if self.environment is not Environment.PRODUCTION:
            return []
        problems = self._signing_key_problems()
        if self.uses_sqlite:
            problems.append(
                "DATABASE_URL is unset, so SQLite would be used: "
                "set DATABASE_URL=postgresql+asyncpg://..."
            )
        if self.redis_url is None and (workers or self.web_concurrency) > 1:
            problems.append(
                "REDIS_URL is unset while more than one worker runs, so caches and rate limits "
                "would not be shared between workers: set REDIS_URL=redis://..."
            )
        return problems

    def check_production(self, *, workers: int | None = None) -> None:
        problems = self.production_problems(workers=workers)
        if problems:
            raise InsecureConfigurationError("; ".join(problems))


@lru_cache
def get_settings() -> Settings:
    return Settings()


def describe_invalid(error: ValidationError) -> str:
    """One line naming each invalid setting as its variable: `DB_POOL_SIZE: Input should be
    a valid integer`. Never the value itself, which may be a secret."""
    return "; ".join(
        f"{'.'.join(map(str, problem['loc'])).upper()}: {problem['msg']}"
        if problem["loc"]
        else problem["msg"]
        for problem in error.errors()
    )


def settings_or_exit(*, check_production: bool = True, workers: int | None = None) -> Settings:
    """The settings for an entry point (the server, the worker, the commands): a bad value,
    or a configuration production refuses, stops the process with one line for the operator
    instead of a traceback."""
    try:
        settings = get_settings()
    except ValidationError as error:
        problems = describe_invalid(error)
        raise SystemExit(f"refusing to start: invalid settings: {problems}") from None
    if check_production:
        try:
            settings.check_production(workers=workers)
        except InsecureConfigurationError as error:
            raise SystemExit(f"refusing to start in production: {error}") from None
    return settings
