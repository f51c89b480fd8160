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

    environment: Environment = Environment.LOCAL
    project_name: str = "FastAPI Reference Service"
    version: str = __version__
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET_KEY)

    database_url: str | None = Field(
        default=None, description="postgresql+asyncpg://...; unset means embedded SQLite"
    )
    sqlite_path: Path = Path("data/app.db")
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_timeout: float = Field(default=10.0, gt=0)
    db_pool_recycle: int = Field(default=1800, ge=-1)
    db_read_pool_size: int = Field(
        default=5, ge=1, description="connections of the hot paths' reads (PostgreSQL), each worker"
    )
    db_call_pool_size: int = Field(
        default=10,
        ge=1,
        description="connections of the writes that are one database call, such as placing an "
        "order (PostgreSQL), each worker",
    )
    db_echo: bool = False
    db_connect_timeout: float = Field(
        default=3.0, gt=0, description="seconds to open a connection or hear back from a ping"
    )
    db_command_timeout: float = Field(
        default=10.0, gt=0, description="seconds one statement may run before it is abandoned"
    )
    db_pgbouncer: bool = Field(
        default=False, description="DATABASE_URL is a PgBouncer in transaction mode"
    )
    database_read_url: str | None = Field(
        default=None,
        description="PostgreSQL streaming replicas for reads, comma-separated "
        "(postgresql+asyncpg://...); unset means every read on DATABASE_URL",
    )
    read_replica_max_lag_seconds: float = Field(
        default=5.0,
        gt=0,
        description="a replica further behind than this (or down) is skipped until it catches up",
    )
    migration_lock_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="how long a migration waits for a table's lock before it fails, rather "
        "than queueing every read and write of the table behind it",
    )
    outbox_listen_url: str | None = Field(
        default=None,
        description="PostgreSQL itself for the job log's LISTEN; unset means DATABASE_URL",
    )

    redis_url: str | None = None
    redis_cluster: bool = Field(
        default=False, description="REDIS_URL names one node of a Redis Cluster"
    )
    web_concurrency: int = Field(default=1, ge=1, description="worker processes per replica")
    redis_key_prefix: str = Field(
        default="app", min_length=1, description="lets several deployments share one Redis"
    )
    redis_failure_cooldown_seconds: float = Field(
        default=5.0, ge=0, description="after a Redis error, use the fallbacks this long"
    )
    redis_timeout: float = Field(
        default=0.25, gt=0, description="the most one Redis call may cost a request, in seconds"
    )

    cache_enabled: bool = Field(default=True, description="false reads everything afresh")
    cache_ttl_seconds: float = Field(default=60.0, gt=0)
    cache_stale_seconds: float = Field(
        default=30.0, ge=0, description="how long past its TTL a value may be served stale"
    )
    cache_lock_seconds: float = Field(default=5.0, gt=0, description="recompute lock lifetime")
    cache_lock_wait_seconds: float = Field(default=0.5, ge=0)
    cache_local_max_entries: int = Field(default=10_000, ge=1)
    cache_near_enabled: bool = Field(
        default=True,
        description="each worker keeps what it reads from Redis, under a lease (needs one Redis, "
        "not a cluster; every replica must have the same setting)",
    )
    cache_near_lease_ms: int = Field(
        default=25,
        ge=5,
        le=1000,
        description="how long a near copy may be served after its last proof of freshness; "
        "every write that invalidates the cache waits this long before it answers",
    )
    cache_near_max_entries: int = Field(default=10_000, ge=1)

    rate_limit_enabled: bool = True
    rate_limit_default: RateLimitString = "100/minute"
    rate_limit_login: RateLimitString = "5/minute"
    rate_limit_register: RateLimitString = "10/hour"
    rate_limit_orders: RateLimitString = "30/minute"
    rate_limit_password_reset: RateLimitString = "5/hour"  # noqa: S105 - a limit, not a secret
    rate_limit_verify_email: RateLimitString = "5/hour"
    # Two-factor codes, per address at login and per account when turning it on or off.
    rate_limit_mfa: RateLimitString = "10/minute"
    rate_limit_export: RateLimitString = "5/hour"
    trusted_proxies: Networks = ()

    # Tokens: HMAC-signed JWTs; PREVIOUS_SECRET_KEYS still verify during a key rotation.
    previous_secret_keys: list[SecretStr] = Field(default_factory=list)
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_issuer: str = "fastapi-reference-service"
    jwt_audience: str = "fastapi-reference-service-api"
    access_token_expire_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_expire_days: int = Field(default=14, ge=1, le=365)
    max_api_keys_per_user: int = Field(
        default=50, ge=1, le=10_000, description="live (unexpired) API keys one account may hold"
    )

    # Argon2id cost; the defaults are OWASP's minimum (19 MiB, 2 passes).
    password_hash_memory_kib: int = Field(default=19456, ge=1024)
    password_hash_iterations: int = Field(default=2, ge=1)
    # Unset: one fewer than the CPU cores, leaving a core for the event loop.
    password_hash_concurrency: int | None = Field(default=None, ge=1, le=64)
    # The cost of the bcrypt hashes earlier releases stored (bcrypt's rounds, 4-31). While
    # they are accepted every login also pays one bcrypt check at this cost, so that timing
    # cannot tell which accounts still have one; 0 once none remain: bcrypt hashes no
    # longer verify, and a login costs one Argon2id check.
    password_hash_bcrypt_rounds: int = Field(default=12, ge=0, le=31)

    # Account links: where the emailed links point, and how long their tokens stay valid.
    public_base_url: HttpBaseUrl = "http://127.0.0.1:8000"
    password_reset_expire_minutes: int = Field(default=30, ge=1, le=24 * 60)
    email_verification_expire_hours: int = Field(default=48, ge=1, le=30 * 24)
    require_verified_email: bool = False

    first_admin_email: str | None = None
    first_admin_password: SecretStr | None = None

    docs_enabled: bool | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] | None = None
    health_check_timeout: float = Field(default=2.0, gt=0)

    smtp_host: str | None = Field(default=None, description="unset means emails are only logged")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_timeout: float = Field(default=10.0, gt=0)
    email_from: NameEmail = NameEmail("FastAPI Reference Service", "no-reply@example.com")

    outbox_enabled: bool = Field(default=True, description="run the delivery loop in this process")
    outbox_poll_interval: float = Field(default=5.0, gt=0)
    outbox_batch_size: int = Field(
        default=20, ge=1, le=1000, description="deliveries each dispatcher keeps in flight"
    )
    outbox_max_attempts: int = Field(default=10, ge=1, le=100)
    outbox_lease_seconds: float = Field(default=60.0, gt=0)
    outbox_retry_base_seconds: float = Field(
        default=10.0, gt=0, description="delay before the first retry; doubles after each"
    )
    outbox_retry_max_seconds: float = Field(default=3600.0, gt=0)
    outbox_retention_days: int = Field(
        default=7, ge=1, description="delivered messages older than this are purged"
    )

    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    webhook_allow_private_targets: bool = Field(
        default=False, description="allow webhook URLs on loopback, private, link-local hosts"
    )
    webhook_secret_overlap_seconds: int = Field(
        default=86400,
        ge=0,
        le=30 * 86400,
        description="after a secret rotation, how long deliveries also carry the old signature",
    )
    webhook_disable_after_dead: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="dead deliveries in a row after which a webhook is turned off",
    )
    events_heartbeat_seconds: float = Field(
        default=15.0,
        gt=0,
        le=300,
        description="how often a live event stream sends a comment line when idle",
    )
    events_retention_hours: int = Field(
        default=24,
        ge=1,
        description="how far back Last-Event-ID can replay; within OUTBOX_RETENTION_DAYS",
    )
    events_max_streams_per_user: int = Field(
        default=5, ge=1, le=1000, description="live event streams one user may hold open"
    )
    otel_enabled: bool | None = Field(
        default=None, description="trace with OpenTelemetry; unset means on when an endpoint is set"
    )
    otel_exporter_otlp_endpoint: HttpBaseUrl | None = Field(
        default=None, description="OTLP/HTTP collector base URL, e.g. http://collector:4318"
    )
    otel_service_name: str = Field(default="fastapi-reference-service", min_length=1)
    otel_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)

    metrics_enabled: bool = True
    worker_metrics_port: int = Field(
        default=9100,
        ge=0,
        le=65535,
        description="`python -m app.worker` serves /metrics and its liveness, /health, here",
    )
    worker_unhealthy_after_seconds: float = Field(
        default=60.0,
        gt=0,
        description="the worker's /health answers 503 once its database work has been "
        "failing this long",
    )

    cors_origins: Origins = Field(default_factory=list)
    cors_allow_credentials: bool = False
    allowed_hosts: HostPatterns = Field(default_factory=lambda: ["*"])
    max_request_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    max_request_header_bytes: int = Field(
        default=16 * 1024, ge=1024, le=1024 * 1024, description="all header lines together"
    )
    # The HTTP server's patience with slow clients (app.core.http.server), so a client that
    # connects and sends nothing, or sends a request a byte at a time, cannot hold a
    # connection open for ever.
    request_head_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="seconds to send a whole request line and headers, from connecting or "
        "from the first byte of a request on a kept-alive connection",
    )
    request_body_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=600,
        description="most seconds between two pieces of a request body",
    )
    keep_alive_timeout_seconds: int = Field(
        default=5,
        ge=1,
        le=600,
        description="seconds an idle connection stays open after a response",
    )
    gzip_minimum_size: int = Field(default=1024, ge=0, le=1024 * 1024)
    hsts_seconds: int = Field(default=0, ge=0, le=2 * 365 * 24 * 3600)
    max_concurrent_requests: int = Field(
        default=128, ge=1, le=10_000, description="requests one worker runs at once; more wait"
    )
    request_queue_timeout_ms: int = Field(
        default=1000,
        ge=10,
        le=60_000,
        description="the longest a request waits for a worker or a database connection "
        "before it is answered 503 overloaded",
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
