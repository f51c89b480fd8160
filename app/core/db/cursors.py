"""The cursor's wire form: a page's position, packed compactly and signed.

A cursor travels back as a query parameter of at most `MAX_CURSOR_LENGTH` characters, so
its size must be bounded by the schema, never by what a row happens to hold. The position
is packed in binary rather than JSON (which spends six to twelve characters on each
character outside ASCII): integers as varints, and text as UTF-8 or, when that is longer,
as three bytes per code point, the most any character then takes. A 200-character sort key
in any script, with the largest id and offset, stays well under the limit
(tests/core/db/test_keyset.py checks every sort column's worst case).

The list, its filters and its sort are not carried at all: they are part of what the
signature covers, so a cursor presented to another query simply fails to verify.
"""

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from app.core.errors import BusinessRuleViolation

Key = tuple[Any, ...]

# Room for the longest position this service signs (a 200-character name in any script),
# not for abuse.
MAX_CURSOR_LENGTH = 1024

_VERSION = 1
_INT, _UTF8, _CODE_POINTS = b"i", b"u", b"c"
_CODE_POINT_BYTES = 3  # U+10FFFF, the largest code point, takes 21 bits


class InvalidCursor(BusinessRuleViolation):
    type = "urn:problem-type:invalid-cursor"
    title = "Invalid cursor"
    detail = (
        "The cursor is malformed or altered, or belongs to another list, filter or sort; "
        "start again from the first page."
    )


@dataclass(frozen=True, slots=True)
class Position:
    """Where a cursor points: after the row with `key`, `offset` rows into the list."""

    key: Key
    offset: int


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4))


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _text(value: str) -> bytes:
    # surrogatepass: whatever string the database returns round-trips, even a lone surrogate.
    utf8 = value.encode("utf-8", "surrogatepass")
    if len(utf8) <= _CODE_POINT_BYTES * len(value):
        return _UTF8 + _varint(len(utf8)) + utf8
    packed = b"".join(ord(c).to_bytes(_CODE_POINT_BYTES, "big") for c in value)
    return _CODE_POINTS + _varint(len(value)) + packed


def pack(position: Position) -> bytes:
    parts = [bytes([_VERSION]), _varint(position.offset)]
    for value in position.key:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise TypeError(f"a cursor key holds integers and text, not {value!r}")
        if isinstance(value, int):
            # Zigzag, so a negative number is as short as its magnitude.
            parts.append(_INT + _varint(value * 2 if value >= 0 else -value * 2 - 1))
        else:
            parts.append(_text(value))
    return b"".join(parts)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, count: int) -> bytes:
        if count < 0 or self.at + count > len(self.data):
            raise ValueError("truncated")
        chunk = self.data[self.at : self.at + count]
        self.at += count
        return chunk

    def varint(self) -> int:
        number = shift = 0
        while True:
            byte = self.take(1)[0]
            number |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return number
            if shift > 70:
                raise ValueError("varint too long")


def unpack(data: bytes) -> Position:
    reader = _Reader(data)
    if reader.take(1)[0] != _VERSION:
        raise ValueError("unknown cursor version")
    offset = reader.varint()
    key: list[Any] = []
    while reader.at < len(data):
        kind = reader.take(1)
        if kind == _INT:
            zigzag = reader.varint()
            key.append(zigzag // 2 if zigzag % 2 == 0 else -(zigzag + 1) // 2)
        elif kind == _UTF8:
            key.append(reader.take(reader.varint()).decode("utf-8", "surrogatepass"))
        elif kind == _CODE_POINTS:
            raw = reader.take(reader.varint() * _CODE_POINT_BYTES)
            key.append(
                "".join(
                    chr(int.from_bytes(raw[i : i + _CODE_POINT_BYTES], "big"))
                    for i in range(0, len(raw), _CODE_POINT_BYTES)
                )
            )
        else:
            raise ValueError("unknown value kind")
    return Position(key=tuple(key), offset=offset)


class CursorCodec:
    """Signs and verifies cursors; opaque to clients, readable only to this service."""

    def __init__(self, secret: str) -> None:
        # A key of its own: a cursor signature is never also valid as anything else's.
        self._key = hmac.new(secret.encode(), b"keyset-cursor", hashlib.sha256).digest()

    def _sign(self, scope: str, body: bytes) -> bytes:
        return hmac.new(self._key, scope.encode() + b"\x00" + body, hashlib.sha256).digest()

    def encode(self, scope: str, key: Key, *, offset: int) -> str:
        body = pack(Position(key=key, offset=offset))
        return f"{_b64encode(body)}.{_b64encode(self._sign(scope, body))}"

    def decode(self, token: str, scope: str) -> Position:
        body_text, _, signature_text = token.partition(".")
        try:
            body, signature = _b64decode(body_text), _b64decode(signature_text)
        except (binascii.Error, ValueError):
            # Not base64, or not ASCII at all (UnicodeEncodeError is a ValueError).
            raise InvalidCursor from None
        # Only the canonical text: base64 ignores stray characters and a last character's
        # spare bits, and an altered cursor must not pass for the one that was issued.
        canonical = _b64encode(body) == body_text and _b64encode(signature) == signature_text
        if not (canonical and hmac.compare_digest(signature, self._sign(scope, body))):
            raise InvalidCursor
        try:
            return unpack(body)
        except (ValueError, IndexError):
            # Signed by this service, so only a cursor of another release gets here.
            raise InvalidCursor from None


@lru_cache(maxsize=4)
def cursor_codec(secret: str) -> CursorCodec:
    return CursorCodec(secret)
