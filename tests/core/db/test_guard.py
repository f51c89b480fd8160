"""The heartbeat's own connection: closed however the heartbeat ends, a stop in the middle of
a ping included (a worker stops its heartbeat on every graceful shutdown)."""

import asyncio
from typing import Any

import asyncpg
import pytest

from app.core.db import guard as guard_module
from app.core.db.engine import driver_dsn
from app.core.db.guard import Guard


async def test_a_heartbeat_stopped_during_its_first_ping_closes_its_connection(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[asyncpg.Connection] = []
    pinging = asyncio.Event()
    real_connect = asyncpg.connect

    class Stalling:
        """A real connection whose ping never gets its answer."""

        def __init__(self, connection: asyncpg.Connection) -> None:
            self.is_closed = connection.is_closed
            self.terminate = connection.terminate

        async def execute(self, *_args: Any, **_kwargs: Any) -> str:
            pinging.set()
            await asyncio.Event().wait()
            return ""

    async def connect_then_stall(*args: Any, **kwargs: Any) -> Stalling:
        connection = await real_connect(*args, **kwargs)
        opened.append(connection)
        return Stalling(connection)

    monkeypatch.setattr(asyncpg, "connect", connect_then_stall)
    monkeypatch.setattr(guard_module, "HEARTBEAT_SECONDS", 0.0)
    heartbeat = asyncio.create_task(Guard(5.0).heartbeat(driver_dsn(postgres_url)))
    await asyncio.wait_for(pinging.wait(), 5)
    heartbeat.cancel()
    with pytest.raises(asyncio.CancelledError):
        await heartbeat
    assert len(opened) == 1
    assert opened[0].is_closed()
