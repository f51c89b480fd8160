"""Deliver outbox messages without serving the API: `python -m app.worker`.

For deployments that run the API with `OUTBOX_ENABLED=false` and deliver from dedicated
processes instead. Reads the same settings as the API, so the same environment serves both:
it delivers whatever `OUTBOX_ENABLED` says, since delivering is all it is for. Stops cleanly
on SIGTERM or SIGINT, leaving any unfinished delivery to be retried once its lease expires.

It serves no API, so its job log metrics (delivered, retried, dead, backlog age, pending
messages) would be scraped nowhere: with METRICS_ENABLED they are served at
WORKER_METRICS_PORT instead, beside `/health`, its liveness: 200 while it can work, 503 once
its database work has been failing for WORKER_UNHEALTHY_AFTER_SECONDS (or its loop ended),
so an orchestrator restarts a worker that only looks alive.
"""

import asyncio
import json
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from app.core.config import Settings, settings_or_exit
from app.core.db.engine import create_engine, create_sessionmaker
from app.core.jobs import OutboxDispatcher
from app.core.observability.logging import configure_logging
from app.core.resources import SHUTDOWN_GRACE_SECONDS, create_outbox
from app.jobs import register_handlers

logger = logging.getLogger("app.worker")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes and scrapes every few seconds are not news."""


def health_and_metrics(outbox: OutboxDispatcher, settings: Settings) -> WSGIApp:
    """`/health` for the liveness probe; `/metrics` for Prometheus when METRICS_ENABLED."""
    metrics = make_wsgi_app() if settings.metrics_enabled else None

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/health":
            healthy = outbox.can_work(unhealthy_after=settings.worker_unhealthy_after_seconds)
            body = json.dumps(
                {
                    "status": "healthy" if healthy else "unhealthy",
                    "failing_for_seconds": round(outbox.failing_for, 1),
                }
            ).encode()
            status = "200 OK" if healthy else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json")])
            return [body]
        if path == "/metrics" and metrics is not None:
            scrape: Iterable[bytes] = metrics(environ, start_response)
            return scrape
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return app


def serve_in_thread(app: WSGIApp, port: int) -> _Server:
    # Every interface: the probe and the scrape come from outside the container.
    server = make_server("0.0.0.0", port, app, _Server, handler_class=_QuietHandler)  # noqa: S104
    threading.Thread(target=server.serve_forever, name="worker-http", daemon=True).start()
    return server


async def run_worker() -> None:
    settings = settings_or_exit()
    configure_logging(level=settings.log_level, json_lines=settings.json_logs)
    engine = create_engine(settings)
    outbox = create_outbox(settings, create_sessionmaker(engine), register_handlers)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    http = serve_in_thread(health_and_metrics(outbox, settings), settings.worker_metrics_port)
    outbox.start()
    logger.info("outbox worker started; /health and /metrics on port %d", http.server_port)
    try:
        await stopping.wait()
    finally:
        await outbox.stop(grace_seconds=SHUTDOWN_GRACE_SECONDS)
        await engine.dispose()
        http.shutdown()
    logger.info("outbox worker stopped")


if __name__ == "__main__":
    asyncio.run(run_worker())
