"""Whether a dispatcher can work: its database failures, logged once per outage, and how
long they have lasted, which the worker's liveness check reads.

A dispatcher retries a failing database every poll, so logging every failure would write a
traceback every few seconds for as long as an outage lasts. An outage is logged when it
begins, with its cause, and when it ends, with how long it lasted; the failures between are
DEBUG lines.
"""

import logging
import time
from collections.abc import Callable


class FailureWatch:
    """The start and end of a run of failures, and its length so far."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        level: int = logging.ERROR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._what = what
        self._level = level
        self._clock = clock
        self._since: float | None = None

    def failed(self, error: BaseException, *, retry_in: float) -> None:
        """Record a failure; call from the `except` block that caught `error`."""
        if self._since is None:
            self._since = self._clock()
            self._logger.log(
                self._level,
                "%s failed; trying again (next in %gs) until it works: %s",
                self._what,
                retry_in,
                _describe(error),
                exc_info=error if self._level >= logging.ERROR else None,
            )
        else:
            self._logger.debug("%s still failing: %s", self._what, _describe(error))

    def succeeded(self) -> None:
        if self._since is not None:
            lasted = self._clock() - self._since
            self._since = None
            self._logger.warning("%s works again after failing for %.0fs", self._what, lasted)

    @property
    def failing_for(self) -> float:
        """Seconds since the current run of failures began; 0 when the last attempt worked."""
        return 0.0 if self._since is None else self._clock() - self._since


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
