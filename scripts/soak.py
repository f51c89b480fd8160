"""Soak: mixed traffic against gunicorn on private servers, through a PostgreSQL restart and a
Redis outage, then the data checked. `python -m scripts.soak --seconds 300` (`make soak`).

Reads, logins, registrations, orders and cancellations run from many clients at once. A third
of the way in PostgreSQL is restarted; two thirds in, Redis is stopped for a while. At the end
every order answered 201 must exist, stock must equal the initial stock minus what live orders
took, and every account must have exactly one welcome email queued. Prints what was served
and exits non-zero on any 500 or any inconsistency.
"""

import argparse
import asyncio
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from support.ledger import PASSWORD, Ledger
from support.servers import (
    OUTAGE_SETTINGS,
    Gunicorn,
    PostgresServer,
    RedisServer,
    migrate,
    wait_until_ready,
)

ITEMS = 5
INITIAL_STOCK = 1_000_000


@dataclass
class Traffic:
    ledger: Ledger = field(default_factory=Ledger)
    fault: str | None = None
    during_faults: Counter[str] = field(default_factory=Counter)
    served: int = 0

    def record(self, response: httpx.Response | None) -> None:
        self.served += 1
        self.ledger.saw(response)
        if self.fault is not None:
            status = "no answer" if response is None else str(response.status_code)
            self.during_faults[f"{self.fault}: {status}"] += 1


async def sign_in(http: httpx.AsyncClient, email: str) -> dict[str, str] | None:
    response = await http.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    if response.status_code != 200:
        return None
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def client_loop(
    base_url: str, traffic: Traffic, items: list[int], stop: asyncio.Event, seed: int
) -> None:
    rng = random.Random(seed)  # noqa: S311 - seeded traffic mix, repeatable, not a secret
    ledger = traffic.ledger
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        headers: dict[str, str] | None = None
        mine: list[int] = []
        while not stop.is_set():
            item_id = rng.choice(items)
            try:
                if headers is None:
                    registered = await ledger.register(http, prefix="soak")
                    traffic.record(registered)
                    if registered.status_code == 201:
                        headers = await sign_in(http, registered.json()["email"])
                    else:
                        await asyncio.sleep(0.2)
                    continue
                roll = rng.random()
                if roll < 0.35:
                    response = await http.get(f"/api/v1/items/{item_id}")
                elif roll < 0.5:
                    response = await http.get("/api/v1/items", params={"sort": "price"})
                elif roll < 0.6:
                    response = await http.get("/api/v1/users/me", headers=headers)
                elif roll < 0.85:
                    response = await ledger.order(http, headers, item_id, rng.randint(1, 3))
                    if response.status_code == 201:
                        mine.append(response.json()["id"])
                elif roll < 0.92 and mine:
                    response = await ledger.cancel(http, headers, mine.pop())
                elif roll < 0.97:
                    response = await http.get("/api/v1/orders", headers=headers)
                else:
                    response = await ledger.register(http, prefix="soak")
            except httpx.TransportError:
                traffic.record(None)
                await asyncio.sleep(0.1)
                continue
            traffic.record(response)
            if response.status_code >= 500:
                # Honour Retry-After loosely: a client backing off, not hammering.
                await asyncio.sleep(0.2)


async def soak(seconds: float, clients: int, workers: int) -> int:
    postgres, redis = PostgresServer(), RedisServer()
    postgres.start()
    redis.start()
    database_url = postgres.create_database("soak")
    migrate(database_url)
    environment = OUTAGE_SETTINGS | {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis.url,
        "DB_CONNECT_TIMEOUT": "2",
        "DB_COMMAND_TIMEOUT": "10",
    }
    app = Gunicorn(environment, workers=workers)
    app.start()
    traffic = Traffic()
    faults: list[str] = []
    try:
        async with httpx.AsyncClient(base_url=app.base_url, timeout=30) as http:
            await wait_until_ready(http)
            seller = await traffic.ledger.register(http, prefix="seller")
            headers = await sign_in(http, seller.json()["email"])
            items = []
            for number in range(ITEMS):
                body = {"name": f"Item {number}", "price": "3.50", "stock": INITIAL_STOCK}
                created = await http.post("/api/v1/items", json=body, headers=headers)
                items.append(created.json()["id"])
                traffic.ledger.initial_stock[items[-1]] = INITIAL_STOCK

            stop = asyncio.Event()
            load = [
                asyncio.create_task(client_loop(app.base_url, traffic, items, stop, seed))
                for seed in range(clients)
            ]
            started = time.monotonic()
            await asyncio.sleep(seconds / 3)

            traffic.fault = "postgres restart"
            postgres.stop()
            await asyncio.sleep(min(3.0, seconds / 10))
            postgres.start()
            await wait_until_ready(http)
            traffic.fault = None
            faults.append("PostgreSQL restarted (fast shutdown, same port)")

            await asyncio.sleep(max(0.0, started + 2 * seconds / 3 - time.monotonic()))
            traffic.fault = "redis stopped"
            redis.stop()
            await asyncio.sleep(min(10.0, seconds / 6))
            redis.start()
            traffic.fault = None
            faults.append("Redis stopped, then started again")

            await asyncio.sleep(max(0.0, started + seconds - time.monotonic()))
            stop.set()
            await asyncio.gather(*load)
        problems = await traffic.ledger.problems(database_url)
    finally:
        server_log = app.output() if app.log.exists() else ""
        app.destroy()
        redis.destroy()
        postgres.destroy()

    statuses = traffic.ledger.statuses
    print(f"soak: {seconds:g}s, {clients} clients, {workers} workers")
    print(f"faults injected: {'; '.join(faults)}")
    print(f"requests served: {traffic.served}")
    print("responses by status: " + ", ".join(f"{k} x{v}" for k, v in sorted(statuses.items())))
    during = ", ".join(f"{k} x{v}" for k, v in sorted(traffic.during_faults.items()))
    print(f"requests during faults: {sum(traffic.during_faults.values())} ({during})")
    print(
        f"orders placed: {len(traffic.ledger.orders)}, cancelled: {len(traffic.ledger.cancelled)}"
    )
    print(f"accounts registered: {len(traffic.ledger.registered)}")
    print(f"data lost: {len(problems)}")
    for problem in problems:
        print(f"  {problem}")
    crashes = statuses["500"]
    if crashes:
        print(f"FAIL: {crashes} responses were 500; what the service logged at ERROR:")
        for record in errors_logged(server_log):
            print(record)
    return 1 if problems or crashes else 0


def errors_logged(log: str) -> list[str]:
    """The ERROR records of the service's log, each with its traceback: what a 500 was."""
    records: list[str] = []
    for line in log.splitlines():
        if " ERROR " in line or '"level": "ERROR"' in line:
            records.append(line)
        elif records and (line.startswith((" ", "Traceback")) or not line[:1].isdigit()):
            records[-1] += "\n" + line
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 300)))
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    arguments = parser.parse_args()
    raise SystemExit(asyncio.run(soak(arguments.seconds, arguments.clients, arguments.workers)))


if __name__ == "__main__":
    main()
