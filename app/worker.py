"""Deliver outbox messages without serving HTTP: `python -m app.worker`.

For deployments that run the API with `OUTBOX_ENABLED=false` and deliver from dedicated
processes instead. Reads the same settings as the API, so the same environment serves both:
it delivers whatever `OUTBOX_ENABLED` says, since delivering is all it is for. Stops cleanly
on SIGTERM or SIGINT, leaving any unfinished delivery to be retried once its lease expires.

It serves no API, so its job log counters (delivered, retried, dead, backlog age) would be
scraped nowhere: with METRICS_ENABLED they are served at WORKER_METRICS_PORT instead.
"""

import asyncio
import logging
import signal

from prometheus_client import start_http_server

from app.core.config import settings_or_exit
from app.core.db.engine import create_engine, create_sessionmaker
from app.core.observability.logging import configure_logging
from app.core.resources import SHUTDOWN_GRACE_SECONDS, create_outbox
from app.jobs import register_handlers

logger = logging.getLogger("app.worker")


async def run_worker() -> None:
    settings = settings_or_exit()
    configure_logging(level=settings.log_level, json_lines=settings.json_logs)
    engine = create_engine(settings)
    outbox = create_outbox(settings, create_sessionmaker(engine), register_handlers)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    if settings.metrics_enabled:
        start_http_server(settings.worker_metrics_port)
    outbox.start()
    logger.info("outbox worker started")
    try:
        await stopping.wait()
    finally:
        await outbox.stop(grace_seconds=SHUTDOWN_GRACE_SECONDS)
        await engine.dispose()
    logger.info("outbox worker stopped")


if __name__ == "__main__":
    asyncio.run(run_worker())
