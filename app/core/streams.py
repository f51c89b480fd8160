"""How many long-lived responses (live event streams) each caller holds open in this process.

A stream costs a connection and a task for as long as its client listens, and none of it
passes admission control (app.core.http.edge), so each caller's are bounded here instead.
"""

from collections import Counter
from collections.abc import Callable, Hashable


class StreamSlots:
    """Open streams per caller, at most `limit` each."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[Hashable] = Counter()

    def take(self, caller: Hashable) -> Callable[[], None] | None:
        """A slot for one more of `caller`'s streams and what gives it back (once), or None
        when the caller already holds `limit`."""
        if self._open[caller] >= self.limit:
            return None
        self._open[caller] += 1
        taken = True

        def give_back() -> None:
            nonlocal taken
            if taken:
                taken = False
                self._open[caller] -= 1
                if not self._open[caller]:
                    del self._open[caller]

        return give_back
