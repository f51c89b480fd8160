"""The types of the settings that need more than pydantic's own: each reads its value from
the environment and refuses, at start-up, what would only fail later on a request."""

import math
import string
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


# The characters a key draws each of its characters from, by the classes it uses.
_CHARACTER_CLASSES = (
    (frozenset(string.ascii_lowercase), 26),
    (frozenset(string.ascii_uppercase), 26),
    (frozenset(string.digits), 10),
    (frozenset(string.punctuation), len(string.punctuation)),
)
_OTHER_CHARACTERS = 100
# A stretch this long that repeats what came before or steps through the alphabet ("abcd",
# "9876", "xxxx") is one guess, not one per character. Shorter ones turn up by chance in
# random keys, and counting them would refuse some of those.
_MIN_PATTERN = 4
# Enough to judge any key: a longer one is at least as strong as its beginning.
_JUDGED_CHARACTERS = 256


def estimated_entropy_bits(secret: str) -> float:
    """About how many bits of entropy `secret` can carry, judged by what it is made of.

    Each character counts log2 of the alphabet its character classes make up (a key of
    digits draws from 10 characters, a url-safe token from about 64), except where the key
    repeats an earlier stretch or runs through consecutive characters: such a stretch counts
    only what it takes to say where it starts and how long it is. So "0123456789" four times
    is about 23 bits however long it looks, while a random url-safe token of 43 characters
    is about 280. Words are not recognised: the estimate is an upper bound, for refusing
    what is plainly guessable.
    """
    text = secret[:_JUDGED_CHARACTERS]
    if not text:
        return 0.0
    used = set(text)
    alphabet = sum(size for members, size in _CHARACTER_CLASSES if members & used)
    if any(character not in string.printable or character.isspace() for character in used):
        alphabet += _OTHER_CHARACTERS
    per_character = math.log2(alphabet)
    per_pattern = 2 * math.log2(len(text)) + 1
    bits, position = 0.0, 0
    while position < len(text):
        length = max(_repeated_length(text, position), _run_length(text, position))
        if length >= _MIN_PATTERN:
            bits += min(per_pattern, length * per_character)
            position += length
        else:
            bits += per_character
            position += 1
    return bits


def _repeated_length(text: str, position: int) -> int:
    """The longest stretch at `position` that also starts earlier (it may overlap, as "xxxx")."""
    longest = 0
    for earlier in range(position):
        length = 0
        while position + length < len(text) and text[earlier + length] == text[position + length]:
            length += 1
        longest = max(longest, length)
    return longest


def _run_length(text: str, position: int) -> int:
    """How long the characters at `position` keep stepping by one code point the same way."""
    if position + 1 >= len(text):
        return 1
    step = ord(text[position + 1]) - ord(text[position])
    if abs(step) != 1:
        return 1
    length = 2
    while (
        position + length < len(text)
        and ord(text[position + length]) - ord(text[position + length - 1]) == step
    ):
        length += 1
    return length


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
