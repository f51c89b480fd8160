from app.core.redis import RedisBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_skips_redis_for_the_cooldown_after_a_failure() -> None:
    clock = Clock()
    breaker = RedisBreaker("test", cooldown_seconds=5, clock=clock)
    assert breaker.closed
    breaker.failed(ConnectionError("refused"))
    assert not breaker.closed
    clock.now += 4.9
    assert not breaker.closed
    clock.now += 0.2
    assert breaker.closed
    breaker.succeeded()
    assert breaker.closed


def test_another_failure_restarts_the_cooldown() -> None:
    clock = Clock()
    breaker = RedisBreaker("test", cooldown_seconds=5, clock=clock)
    breaker.failed(ConnectionError("refused"))
    clock.now += 5
    breaker.failed(TimeoutError())
    assert not breaker.closed
