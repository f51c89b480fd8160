"""Settings read from the environment and `.env`, validated once at start-up."""

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app import __version__

# Public on purpose: production refuses to start while it is in use.
DEFAULT_SECRET_KEY = "change-me-insecure-development-key-0123456789"  # noqa: S105


class Environment(StrEnum):
    LOCAL = "local"
    TEST = "test"
    PRODUCTION = "production"


class InsecureConfigurationError(RuntimeError):
    """Raised when production settings would leave the service unsafe or unscalable."""


# Environment variables hold these lists as comma-separated values, not JSON.
CommaSeparated = Annotated[list[str], NoDecode]


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


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
    db_echo: bool = False

    redis_url: str | None = None
    web_concurrency: int = Field(default=1, ge=1, description="worker processes per replica")

    docs_enabled: bool | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] | None = None
    health_check_timeout: float = Field(default=2.0, gt=0)

    otel_enabled: bool | None = Field(
        default=None, description="trace with OpenTelemetry; unset means on when an endpoint is set"
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP collector base URL, e.g. http://collector:4318"
    )
    otel_service_name: str = Field(default="fastapi-reference-service", min_length=1)
    otel_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)

    metrics_enabled: bool = True

    cors_origins: CommaSeparated = Field(default_factory=list)
    cors_allow_credentials: bool = False
    allowed_hosts: CommaSeparated = Field(default_factory=lambda: ["*"])
    max_request_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    gzip_minimum_size: int = Field(default=1024, ge=0, le=1024 * 1024)
    hsts_seconds: int = Field(default=0, ge=0, le=2 * 365 * 24 * 3600)

    _split_lists = field_validator("cors_origins", "allowed_hosts", mode="before")(_split_commas)

    @field_validator("otel_exporter_otlp_endpoint")
    @classmethod
    def _endpoint_is_http_url(cls, value: str | None) -> str | None:
        if value is not None:
            url = urlsplit(value)
            if url.scheme not in ("http", "https") or not url.netloc:
                raise ValueError("must be an http(s) URL such as http://collector:4318")
            value = value.rstrip("/")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins_are_exact(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin == "*":
                continue
            url = urlsplit(origin)
            if (
                url.scheme not in ("http", "https")
                or not url.netloc
                or url.path
                or url.query
                or url.fragment
            ):
                raise ValueError(
                    f"{origin!r} is not an origin: use scheme://host[:port] with no path"
                )
        return origins

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts_are_patterns(cls, hosts: list[str]) -> list[str]:
        if not hosts:
            raise ValueError("list at least one host, or * for any")
        for host in hosts:
            if host != "*" and ("*" in host.removeprefix("*.") or "/" in host):
                raise ValueError(f"{host!r} is not a host name, *.domain or *")
        return hosts

    @model_validator(mode="after")
    def _credentials_need_explicit_origins(self) -> Self:
        # Browsers refuse credentials with a wildcard origin; echoing any origin back
        # instead would let every site act with the user's credentials.
        if self.cors_allow_credentials and "*" in self.cors_origins:
            raise ValueError("CORS_ALLOW_CREDENTIALS=true needs explicit CORS_ORIGINS, not *")
        return self

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.sqlite_path}"

    @property
    def uses_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

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

    def production_problems(self) -> list[str]:
        """What stops these settings from being safe in production, one line each."""
        if self.environment is not Environment.PRODUCTION:
            return []
        problems = []
        if self.secret_key.get_secret_value() == DEFAULT_SECRET_KEY:
            problems.append("SECRET_KEY is the development default: set a long random SECRET_KEY")
        if self.uses_sqlite:
            problems.append(
                "DATABASE_URL is unset, so SQLite would be used: "
                "set DATABASE_URL=postgresql+asyncpg://..."
            )
        if self.redis_url is None and self.web_concurrency > 1:
            problems.append(
                "REDIS_URL is unset while WEB_CONCURRENCY > 1, so caches and rate limits "
                "would not be shared between workers: set REDIS_URL=redis://..."
            )
        return problems

    def check_production(self) -> None:
        problems = self.production_problems()
        if problems:
            raise InsecureConfigurationError("; ".join(problems))


@lru_cache
def get_settings() -> Settings:
    return Settings()
