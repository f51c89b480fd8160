"""How cached values become bytes and back: raw bytes (a rendered body) or JSON."""

import json
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Codec(Protocol[T]):
    def dumps(self, value: T) -> bytes: ...
    def loads(self, data: bytes) -> T: ...


class _RawCodec:
    def dumps(self, value: bytes) -> bytes:
        return value

    def loads(self, data: bytes) -> bytes:
        return data


class _JsonCodec:
    def dumps(self, value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


RAW: Codec[bytes] = _RawCodec()
JSON: Codec[Any] = _JsonCodec()
