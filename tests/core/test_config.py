import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core.config import DEFAULT_SECRET_KEY, Environment, InsecureConfigurationError, Settings
from app.main import create_app

ROOT = Path(__file__).resolve().parents[2]
SAFE = {
    "environment": Environment.PRODUCTION,
    "secret_key": secrets.token_urlsafe(48),
    "database_url": "postgresql+asyncpg://app@db/app",
    "redis_url": "redis://redis:6379/0",
    "web_concurrency": 4,
}


def production(**overrides: object) -> Settings:
    return Settings(_env_file=None, **(SAFE | overrides))  # type: ignore[arg-type]


def test_safe_production_settings_start() -> None:
    assert production().production_problems() == []
    create_app(production())


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"secret_key": DEFAULT_SECRET_KEY}, "SECRET_KEY"),
        ({"database_url": None}, "DATABASE_URL"),
        ({"redis_url": None}, "REDIS_URL"),
    ],
)
def test_production_refuses_each_insecure_setting(override: dict[str, object], named: str) -> None:
    with pytest.raises(InsecureConfigurationError, match=named):
        create_app(production(**override))


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"secret_key": "x"}, "SECRET_KEY is too easy to guess"),
        ({"secret_key": "k" * 30 + "!"}, "SECRET_KEY is too easy to guess"),
        ({"secret_key": "x" * 64}, "SECRET_KEY is too easy to guess"),
        ({"secret_key": "abcd" * 16}, "SECRET_KEY is too easy to guess"),
        # Long, with ten distinct characters, and still a pattern.
        ({"secret_key": "0123456789" * 4}, r"SECRET_KEY is too easy to guess \(about 23 bits"),
        ({"secret_key": "abcdefghijklmnopqrstuvwxyz0123456789"}, "SECRET_KEY is too easy"),
        ({"secret_key": "Passw0rd!" * 8}, "SECRET_KEY is too easy to guess"),
        (
            {"previous_secret_keys": [DEFAULT_SECRET_KEY]},
            r"PREVIOUS_SECRET_KEYS\[0\] is the public",
        ),
        (
            {"previous_secret_keys": [secrets.token_urlsafe(32), "short"]},
            r"PREVIOUS_SECRET_KEYS\[1\] is too easy to guess",
        ),
    ],
)
def test_production_refuses_weak_signing_keys(override: dict[str, object], named: str) -> None:
    with pytest.raises(InsecureConfigurationError, match=named):
        create_app(production(**override))


# A SECRET_KEY given a value in any syntax the repository uses: .env lines, YAML, JSON,
# shell flags; in code, only a literal counts (an expression is not a key anyone copies).
KEY_ASSIGNMENT = re.compile(r"""secret_keys?\w*["']?\s*[:=]\s*["']?([^\s"',)\]]+)""", re.IGNORECASE)
KEY_LITERAL = re.compile(r"""secret_keys?\w*["']?\s*[:=]\s*["']([^\s"']+)["']""", re.IGNORECASE)


def repository_secret_keys() -> dict[str, set[str]]:
    """Every value a file in the repository gives a SECRET_KEY, by file."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"],  # noqa: S607 - git from PATH, as any checkout has it
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    found: dict[str, set[str]] = {}
    for name in filter(None, listed.split("\0")):
        path = ROOT / name
        if not path.is_file() or path.stat().st_size > 1_000_000:
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        pattern = KEY_LITERAL if path.suffix == ".py" else KEY_ASSIGNMENT
        if values := set(pattern.findall(text)):
            found[name] = values
    return found


def test_production_refuses_every_key_the_repository_prints() -> None:
    found = repository_secret_keys()
    # The examples an operator copies are among what was found ...
    assert found[".env.example"] & {DEFAULT_SECRET_KEY}
    assert found["deploy/k8s/base/secret.example.yaml"]
    # ... and none of the values, there or anywhere else, would start a production service.
    for name, values in found.items():
        for value in values:
            for settings in (
                production(secret_key=value),
                production(previous_secret_keys=[SAFE["secret_key"], value]),
            ):
                problems = settings.production_problems()
                assert any("SECRET_KEY" in problem for problem in problems), (name, value)


def test_a_random_key_and_random_previous_keys_are_accepted() -> None:
    strong = production(
        secret_key=secrets.token_urlsafe(24), previous_secret_keys=[secrets.token_hex(16)]
    )
    assert strong.production_problems() == []


def test_random_keys_of_128_bits_are_accepted_in_every_form() -> None:
    # Many draws: a random key happens to contain short runs ("abc") and repeats now and
    # then, and must not be refused for it.
    for _ in range(100):
        for key in (secrets.token_urlsafe(16), secrets.token_hex(16), secrets.token_urlsafe(48)):
            assert production(secret_key=key).production_problems() == [], key


def test_more_than_one_worker_counted_by_the_server_needs_redis() -> None:
    single = production(redis_url=None, web_concurrency=1)
    assert single.production_problems() == []
    assert "REDIS_URL" in single.production_problems(workers=2)[0]


def test_in_process_substitutes_are_fine_for_a_single_worker() -> None:
    assert production(redis_url=None, web_concurrency=1).production_problems() == []


def test_local_environment_accepts_development_defaults() -> None:
    assert Settings(_env_file=None).production_problems() == []


def test_docs_are_off_in_production_unless_enabled() -> None:
    assert production().show_docs is False
    assert production(docs_enabled=True).show_docs is True
    assert Settings(_env_file=None).show_docs is True


def test_entry_point_names_invalid_settings_in_one_line(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DB_POOL_SIZE": "-",
        "RATE_LIMIT_LOGIN": "often",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import app.main"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("refusing to start: invalid settings: DB_POOL_SIZE: Input should")
    assert "; RATE_LIMIT_LOGIN: Value error, 'often' is not one rate limit" in line


def test_entry_point_refuses_to_start_with_one_line_per_problem(tmp_path: Path) -> None:
    env = {"ENVIRONMENT": "production", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", "import app.main"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("refusing to start in production:")
    assert "set a long random SECRET_KEY" in result.stderr
    assert "set DATABASE_URL=postgresql+asyncpg://" in result.stderr


@pytest.mark.parametrize("rounds", [1, 3, 32, -1])
def test_bcrypt_rounds_are_zero_or_what_bcrypt_allows(rounds: int) -> None:
    with pytest.raises(ValidationError, match=r"password_hash_bcrypt_rounds|BCRYPT_ROUNDS"):
        Settings(_env_file=None, password_hash_bcrypt_rounds=rounds)
