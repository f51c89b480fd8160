"""docs/configuration.md, generated from the Settings class: every setting as its
environment variable, its default and its description, grouped by what it configures.

    python -m scripts.settings_docs          print the page
    python -m scripts.settings_docs write    write docs/configuration.md (`make docs`)
    python -m scripts.settings_docs check    fail when the committed page differs

A setting added to `Settings` without a description, or without a section here, stops the
generation, so the page cannot fall behind the code."""

import sys
from enum import Enum
from pathlib import Path

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from app.core.config import Settings

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "configuration.md"

# Defaults that are not worth printing as values: a key that must never be used, and the
# release's own version.
DEFAULT_LABELS = {
    "secret_key": "a public development key",
    "version": "the release (`app.__version__`)",
}

SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Environment, tokens and accounts",
        (
            "environment",
            "secret_key",
            "previous_secret_keys",
            "jwt_algorithm",
            "jwt_issuer",
            "jwt_audience",
            "access_token_expire_minutes",
            "refresh_token_expire_days",
            "max_api_keys_per_user",
            "password_hash_memory_kib",
            "password_hash_iterations",
            "password_hash_concurrency",
            "password_hash_bcrypt_rounds",
            "first_admin_email",
            "first_admin_password",
            "public_base_url",
            "password_reset_expire_minutes",
            "email_verification_expire_hours",
            "require_verified_email",
        ),
    ),
    (
        "Database",
        (
            "database_url",
            "database_read_url",
            "read_replica_max_lag_seconds",
            "sqlite_path",
            "db_pool_size",
            "db_max_overflow",
            "db_read_pool_size",
            "db_call_pool_size",
            "db_pool_timeout",
            "db_pool_recycle",
            "db_connect_timeout",
            "db_command_timeout",
            "db_echo",
            "db_pgbouncer",
            "migration_lock_timeout_seconds",
            "outbox_listen_url",
        ),
    ),
    (
        "Redis and workers",
        (
            "redis_url",
            "redis_cluster",
            "web_concurrency",
            "redis_key_prefix",
            "redis_failure_cooldown_seconds",
            "redis_timeout",
        ),
    ),
    (
        "Caching",
        (
            "cache_enabled",
            "cache_ttl_seconds",
            "cache_stale_seconds",
            "cache_lock_seconds",
            "cache_lock_wait_seconds",
            "cache_local_max_entries",
            "cache_near_enabled",
            "cache_near_lease_ms",
            "cache_near_max_entries",
        ),
    ),
    (
        "Rate limits",
        (
            "rate_limit_enabled",
            "rate_limit_default",
            "rate_limit_login",
            "rate_limit_register",
            "rate_limit_orders",
            "rate_limit_password_reset",
            "rate_limit_verify_email",
            "rate_limit_mfa",
            "rate_limit_export",
            "trusted_proxies",
        ),
    ),
    (
        "The service",
        (
            "docs_enabled",
            "log_level",
            "log_format",
            "health_check_timeout",
            "project_name",
            "version",
        ),
    ),
    (
        "Email",
        (
            "smtp_host",
            "smtp_port",
            "smtp_username",
            "smtp_password",
            "smtp_security",
            "smtp_timeout",
            "email_from",
        ),
    ),
    (
        "The job log and webhooks",
        (
            "outbox_enabled",
            "outbox_poll_interval",
            "outbox_batch_size",
            "outbox_max_attempts",
            "outbox_lease_seconds",
            "outbox_retry_base_seconds",
            "outbox_retry_max_seconds",
            "outbox_retention_days",
            "webhook_timeout_seconds",
            "webhook_allow_private_targets",
            "webhook_secret_overlap_seconds",
            "webhook_disable_after_dead",
        ),
    ),
    (
        "Live events",
        ("events_heartbeat_seconds", "events_retention_hours", "events_max_streams_per_user"),
    ),
    (
        "Observability",
        (
            "otel_exporter_otlp_endpoint",
            "otel_enabled",
            "otel_service_name",
            "otel_sample_ratio",
            "metrics_enabled",
            "worker_metrics_port",
            "worker_unhealthy_after_seconds",
        ),
    ),
    (
        "HTTP",
        (
            "cors_origins",
            "cors_allow_credentials",
            "allowed_hosts",
            "max_request_body_bytes",
            "max_request_header_bytes",
            "request_head_timeout_seconds",
            "request_body_timeout_seconds",
            "keep_alive_timeout_seconds",
            "gzip_minimum_size",
            "hsts_seconds",
            "max_concurrent_requests",
            "request_queue_timeout_ms",
        ),
    ),
)

INTRO = """\
# Configuration

<!-- Generated from app/core/config.py by `make docs` (python -m scripts.settings_docs
write): edit the descriptions there, not here. -->

Settings come from environment variables or `.env` (see `.env.example`, which lists every
one). Each setting's description lives beside it in `app/core/config.py`; this page is
generated from there, and a test fails when the two differ.
"""

OUTRO = """\
## Checked at start-up

Settings are checked at start-up, by the server, the worker (`python -m app.worker`) and
every command (`python -m app.cli`) alike: a value that is not valid (a rate limit that is
not one limit such as `5/minute` or `10 per hour`, a pool size that is not a number) stops
the process with one line naming each variable, never its value:
`refusing to start: invalid settings: DB_POOL_SIZE: Input should be a valid integer, ...`.

In production (`ENVIRONMENT=production`) the service refuses to start, with one line saying
what to set, when `SECRET_KEY` is weak, the default or any other key printed in the
repository (`.env.example`, the Kubernetes Secret example), when no `DATABASE_URL` is set, or
when `REDIS_URL` is unset while more than one worker runs.
"""


class UndocumentedSetting(Exception):
    """A setting without a description or a section: the page would be incomplete."""


def default_of(name: str, field: FieldInfo) -> str:
    if name in DEFAULT_LABELS:
        return DEFAULT_LABELS[name]
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, Enum):
        text = str(value.value)
    elif isinstance(value, SecretStr):
        return "set"
    elif isinstance(value, list | tuple):
        if not value:
            return "none"
        text = ",".join(str(item) for item in value)
    else:
        text = str(value)
    return f"`{text}`"


def render() -> str:
    fields = Settings.model_fields
    placed = [name for _, names in SECTIONS for name in names]
    problems = [f"{name}: in no section" for name in fields if name not in placed]
    problems += [f"{name}: not a setting" for name in placed if name not in fields]
    problems += [f"{name}: in two sections" for name in set(placed) if placed.count(name) > 1]
    problems += [
        f"{name}: no description" for name, field in fields.items() if not field.description
    ]
    problems += [f"{name}: not a setting" for name in DEFAULT_LABELS if name not in fields]
    if problems:
        raise UndocumentedSetting("; ".join(sorted(problems)))
    parts = [INTRO]
    for title, names in SECTIONS:
        rows = [f"## {title}\n", "| variable | default | meaning |", "|---|---|---|"]
        for name in names:
            field = fields[name]
            description = str(field.description).replace("|", "\\|")
            rows.append(f"| `{name.upper()}` | {default_of(name, field)} | {description} |")
        parts.append("\n".join(rows) + "\n")
    parts.append(OUTRO)
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "print"
    if command not in ("print", "write", "check"):
        print("usage: python -m scripts.settings_docs [print|write|check]", file=sys.stderr)
        return 2
    try:
        page = render()
    except UndocumentedSetting as error:
        print(f"settings without documentation: {error}", file=sys.stderr)
        return 1
    if command == "print":
        sys.stdout.write(page)
    elif command == "write":
        PAGE.write_text(page)
    elif not PAGE.exists() or PAGE.read_text() != page:
        print("docs/configuration.md is out of date: run `make docs` and commit it.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
