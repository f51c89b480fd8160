"""How cached values become bytes and back: raw bytes, JSON, or any pydantic-validated type."""

import json
from typing import Any, Generic, Protocol, TypeVar

from pydantic import TypeAdapter

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


class ModelCodec(Generic[T]):
    """Stores any type pydantic can validate (a model, `Page[ItemRead]`) as JSON."""

    def __init__(self, type_: type[T]) -> None:
        self._adapter = TypeAdapter(type_)

    def dumps(self, value: T) -> bytes:
        return self._adapter.dump_json(value)

    def loads(self, data: bytes) -> T:
        return self._adapter.validate_json(data)
