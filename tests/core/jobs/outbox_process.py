"""A dispatcher in a process of its own, for the tests of several replicas sharing the job log:
`python -m tests.core.jobs.outbox_process --mode deliver|hang [--enqueue N] ...`.

It reads DATABASE_URL like the service and prints one line per event to stdout: `delivered
<n> <attempt>` or `claimed <n>` for test notes, `email <to>` for emails, `order-email <to>
<order id>` for order confirmations, and its log lines (the listener says when it listens).
"""

import argparse
import asyncio
import logging
import signal
import sys

from app.core.config import Settings
from app.core.db.engine import create_engine, create_sessionmaker, driver_dsn
from app.core.jobs import Delivery, OutboxDispatcher
from app.core.jobs.email import EMAIL, EmailMessage
from app.domains.orders.events import ORDER_CONFIRMED, OrderConfirmation
from tests.core.jobs.outbox_helpers import NOTE, Note, commit_messages


def say(line: str) -> None:
    print(line, flush=True)


async def main(arguments: argparse.Namespace) -> None:
    settings = Settings()
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    outbox = OutboxDispatcher(
        sessionmaker,
        batch_size=arguments.batch,
        max_attempts=5,
        poll_interval=arguments.poll,
        lease_seconds=arguments.lease,
        backoff_base=0.1,
        backoff_max=0.1,
        listen_dsn=driver_dsn(settings.sqlalchemy_url),
    )

    async def deliver(note: Note, delivery: Delivery) -> None:
        # Long enough for the other process's claims to interleave with this one's.
        await asyncio.sleep(0.005)
        say(f"delivered {note.n} {delivery.attempt}")

    async def hang(note: Note, _: Delivery) -> None:
        say(f"claimed {note.n}")
        await asyncio.Event().wait()

    async def email(message: EmailMessage, _: Delivery) -> None:
        say(f"email {message.to}")

    async def order_email(confirmation: OrderConfirmation, _: Delivery) -> None:
        say(f"order-email {confirmation.to} {confirmation.order_id}")

    outbox.register(NOTE, deliver if arguments.mode == "deliver" else hang)
    outbox.register(EMAIL, email)
    outbox.register(ORDER_CONFIRMED, order_email)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    if arguments.enqueue:
        await commit_messages(sessionmaker, *({"n": n} for n in range(arguments.enqueue)))
        say("committed")
    outbox.start()
    await outbox.announce()
    try:
        await stopping.wait()
    finally:
        await outbox.stop(grace_seconds=1)
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["deliver", "hang"], default="deliver")
    parser.add_argument("--enqueue", type=int, default=0)
    parser.add_argument("--poll", type=float, default=3600.0)
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--batch", type=int, default=7)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(name)s %(message)s")
    asyncio.run(main(parser.parse_args()))
