"""gunicorn's processes signalled and killed under load: shutdowns drain, crashes stay small."""

import asyncio
import contextlib
import os
import signal
import time

import asyncpg
import httpx

from support.ledger import Ledger, customer, stocked_item
from tests.conftest import RUNS_WITH_POSTGRES
from tests.faults.conftest import Service

pytestmark = RUNS_WITH_POSTGRES


async def test_sigterm_lets_in_flight_requests_finish_and_exits_0(
    service: Service, database_url: str
) -> None:
    ledger = Ledger()
    async with service(workers=2, DB_COMMAND_TIMEOUT="10") as (app, http):
        headers = await customer(http, ledger)
        item_id = await stocked_item(http, ledger, headers)
        # Orders wait on a row lock another client holds, so they are surely in flight,
        # inside the workers, when the signal arrives.
        holder = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("SELECT stock FROM items WHERE id = $1 FOR UPDATE", item_id)
        in_flight = [asyncio.create_task(ledger.order(http, headers, item_id)) for _ in range(6)]
        # Long enough for every request to reach a worker even on a busy machine: one still
        # on its way when the listening socket closes was never in flight.
        await asyncio.sleep(2)
        assert app.popen is not None
        app.popen.send_signal(signal.SIGTERM)  # to the master, as an orchestrator does
        await asyncio.sleep(0.5)
        await transaction.rollback()
        await holder.close()
        for order in await asyncio.gather(*in_flight):
            assert order.status_code == 201, order.text
        assert app.stop(timeout=30) == 0, app.output()[-3000:]
    assert await ledger.problems(database_url) == []


async def test_a_killed_worker_is_replaced_and_costs_only_its_own_requests(
    service: Service, database_url: str
) -> None:
    ledger = Ledger()
    clients = 8
    async with service(workers=2) as (app, http):
        headers = await customer(http, ledger)
        item_id = await stocked_item(http, ledger, headers, stock=100_000)
        workers = app.worker_pids()
        assert len(workers) == 2
        stop = asyncio.Event()

        async def shopper(number: int) -> None:
            # A connection per client, so a request's fate is tied to the worker it reached.
            async with httpx.AsyncClient(base_url=app.base_url, timeout=30) as own:
                while not stop.is_set():
                    try:
                        if number % 2:
                            response = await ledger.order(own, headers, item_id)
                        else:
                            response = await own.get(f"/api/v1/items/{item_id}")
                    except httpx.TransportError:
                        ledger.saw(None)
                        continue
                    ledger.saw(response)

        load = [asyncio.create_task(shopper(number)) for number in range(clients)]
        await asyncio.sleep(1.0)
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            current = app.worker_pids()
            if len(current) == 2 and workers[0] not in current:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"the master did not replace the killed worker: {current}")
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*load)

        assert workers[1] in app.worker_pids(), "the other worker kept serving"
        # At most the requests the killed worker had in flight: one per client.
        assert ledger.unanswered <= clients, ledger.statuses
        assert not any(status.startswith("5") for status in ledger.statuses), ledger.statuses
        assert ledger.statuses["200"] > 0
        assert ledger.statuses["201"] > 0
        with contextlib.suppress(httpx.TransportError):
            assert (await http.get("/health/ready")).status_code == 200
    assert await ledger.problems(database_url) == []
