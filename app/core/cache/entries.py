"""The stored form of a cached value: when it stops being fresh, then the codec's bytes."""

import logging
import struct
from dataclasses import dataclass
from typing import TypeVar

from app.core.cache.codecs import Codec

logger = logging.getLogger(__package__)

T = TypeVar("T")

# Every stored value starts with the wall-clock time it stays fresh until, so a replica can
# tell a stale value (still servable while another replica recomputes) from a fresh one.
FRESH_UNTIL = struct.Struct(">d")


@dataclass(frozen=True, slots=True)
class Entry:
    data: bytes
    fresh: bool


def decode(codec: Codec[T], entry: Entry, full_key: str) -> tuple[T] | None:
    """The decoded value in a 1-tuple (a cached value may itself be falsy), or None."""
    try:
        return (codec.loads(entry.data),)
    except ValueError as error:
        # Written by an older release with another shape, or corrupted: load it afresh.
        logger.warning("cache: ignoring undecodable value at %s: %s", full_key, error)
        return None
