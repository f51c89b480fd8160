"""The types of the settings that need more than pydantic's own: each reads its value from
the environment and refuses, at start-up, what would only fail later on a request."""

from ipaddress import IPv4Network, IPv6Network
from typing import Annotated
from urllib.parse import urlsplit

from limits import parse_many
from pydantic import AfterValidator, BeforeValidator
from pydantic_settings import NoDecode


def check_rate_limit(value: str) -> str:
    """Accept one limit such as '100/minute' or '10 per hour'; anything else is an error."""
    # Checked at start-up so a typo stops the service instead of surfacing on a request.
    try:
        items = parse_many(value)
    except ValueError:
        items = []
    if len(items) != 1 or items[0].amount < 1:
        raise ValueError(f"{value!r} is not one rate limit such as '100/minute' or '10 per hour'")
    return value


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _http_base_url(value: str) -> str:
    url = urlsplit(value)
    if url.scheme not in ("http", "https") or not url.netloc or url.query or url.fragment:
        raise ValueError("must be an http(s) URL such as https://host.example.com:8443")
    return value.rstrip("/")


def _exact_origins(origins: list[str]) -> list[str]:
    for origin in origins:
        if origin == "*":
            continue
        url = urlsplit(origin)
        extra = url.path or url.query or url.fragment
        if url.scheme not in ("http", "https") or not url.netloc or extra:
            raise ValueError(f"{origin!r} is not an origin: use scheme://host[:port] with no path")
    return origins


def _host_patterns(hosts: list[str]) -> list[str]:
    if not hosts:
        raise ValueError("list at least one host, or * for any")
    for host in hosts:
        if host != "*" and ("*" in host.removeprefix("*.") or "/" in host):
            raise ValueError(f"{host!r} is not a host name, *.domain or *")
    return hosts


RateLimitString = Annotated[str, AfterValidator(check_rate_limit)]
# Environment variables hold these lists as comma-separated values, not JSON.
CommaSeparated = Annotated[list[str], NoDecode, BeforeValidator(_split_commas)]
# "10.0.0.0/8, 192.168.1.7"
Networks = Annotated[
    tuple[IPv4Network | IPv6Network, ...], NoDecode, BeforeValidator(_split_commas)
]
# Exact origins, scheme://host[:port], or *.
Origins = Annotated[CommaSeparated, AfterValidator(_exact_origins)]
# Host names, *.domain for any subdomain, or *.
HostPatterns = Annotated[CommaSeparated, AfterValidator(_host_patterns)]
# A base URL that paths are joined to: no query or fragment, no trailing slash.
HttpBaseUrl = Annotated[str, AfterValidator(_http_base_url)]
