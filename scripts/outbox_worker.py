"""Deliver outbox messages without serving HTTP: `python -m scripts.outbox_worker`.

For deployments that run the API with `OUTBOX_ENABLED=false` and deliver from dedicated
processes instead. Reads the same settings as the API; stops cleanly on SIGTERM or SIGINT,
leaving any unfinished delivery to be retried once its lease expires.
"""

import asyncio
import logging
import signal

from app.core.config import get_settings
from app.core.db import create_engine, create_sessionmaker
from app.core.logging import configure_logging
from app.core.resources import create_outbox

logger = logging.getLogger("app.outbox_worker")


async def run_worker() -> None:
    settings = get_settings()
    configure_logging(level=settings.log_level, json_lines=settings.json_logs)
    engine = create_engine(settings)
    outbox = create_outbox(settings, create_sessionmaker(engine))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    outbox.start()
    logger.info("outbox worker started")
    try:
        await stopping.wait()
    finally:
        await outbox.stop()
        await engine.dispose()
    logger.info("outbox worker stopped")


if __name__ == "__main__":
    asyncio.run(run_worker())
