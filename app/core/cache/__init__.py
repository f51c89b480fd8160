"""Cache-aside over Redis, with a bounded in-process store when REDIS_URL is unset.

Services read through `get_or_set` and invalidate after their transaction commits: `delete`
for one object, `bump(namespace)` for every list of a namespace at once. The cache only
accelerates: when Redis fails or times out, a read is a miss, a write is skipped, a warning
is logged, and the caller loads from the database as if nothing were cached.
"""

from app.core.cache.cache import Cache
from app.core.cache.codecs import JSON, RAW, Codec

__all__ = ["JSON", "RAW", "Cache", "Codec"]
