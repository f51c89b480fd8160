"""Gunicorn settings that the Dockerfile's command line does not carry.

The master checks the settings before it starts any worker: a configuration production
refuses would otherwise make every worker exit at boot and gunicorn start new ones forever.
The check counts the workers gunicorn really runs (`--workers` or WEB_CONCURRENCY).

Prometheus multiprocess mode: every worker writes its metrics to files in
PROMETHEUS_MULTIPROC_DIR and a scrape merges them. prometheus_client picks the mode when it
is first imported, and workers are forked from this master after `on_starting`, so the
variable is set there, before anything imports prometheus_client. Files left by an earlier
run would be merged into the new one's totals, so the directory is emptied at start.

A reload (SIGHUP) reads this file again but runs no `on_starting`: the master, its
environment and the directory live on, and the new workers add to the same totals. So the
directory a start created is named in the environment, not in a global of this file, which
the reload would reset: the real exit still finds it and removes it.
"""

import gc
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

# Log lines in the project's format (JSON in production), gunicorn's own included.
logger_class = "app.core.http.server.GunicornLogger"
# The control socket would live in $HOME, which the image's user cannot write to; nothing
# here uses gunicornc.
control_socket_disable = True

# Names the directory this start created, removed at exit; an operator-chosen one is kept.
CREATED_METRICS_DIR = "GUNICORN_CREATED_PROMETHEUS_MULTIPROC_DIR"


def on_starting(server: Any) -> None:
    refuse_unsafe_settings(workers=server.cfg.workers)
    # Inherited from some other master, it names nothing this one made.
    os.environ.pop(CREATED_METRICS_DIR, None)
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True, exist_ok=True)
    else:
        created = tempfile.mkdtemp(prefix="prometheus-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ[CREATED_METRICS_DIR] = created


def refuse_unsafe_settings(*, workers: int) -> None:
    """Exit with one line, as `import app.main` does, instead of booting refusing workers."""
    from app.core.config import settings_or_exit

    settings_or_exit(workers=workers)


def child_exit(server: Any, worker: Any) -> None:
    # Imported here, not above: the master must not fix prometheus_client's mode early.
    from prometheus_client import multiprocess

    # A dead worker's in-flight and pool gauges must stop counting towards the totals.
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    if CREATED_METRICS_DIR in os.environ:
        shutil.rmtree(os.environ[CREATED_METRICS_DIR], ignore_errors=True)


def post_worker_init(worker: Any) -> None:
    # The app is imported: its modules, routes and schemas live as long as the worker does.
    # Frozen, the collector never walks them again. Otherwise each full collection walks the
    # whole heap (about 60 ms for this app, about once a second under load, since objects of
    # the requests in flight keep reaching the oldest generation), and every request that
    # arrives meanwhile waits for it: it was most of the p99.
    gc.collect()
    gc.freeze()
