"""Gunicorn settings that the Dockerfile's command line does not carry.

Prometheus multiprocess mode: every worker writes its metrics to files in
PROMETHEUS_MULTIPROC_DIR and a scrape merges them. prometheus_client picks the mode when it
is first imported, and workers are forked from this master, so the variable is set here
before anything imports prometheus_client. Files left by an earlier run would be merged into
the new one's totals, so the directory is emptied at start.
"""

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

# An operator-chosen directory is kept (and emptied); otherwise each start gets a fresh one.
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prometheus-")
metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def on_starting(server: Any) -> None:
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    # Imported here, not above: the master must not fix prometheus_client's mode early.
    from prometheus_client import multiprocess

    # A dead worker's in-flight and pool gauges must stop counting towards the totals.
    multiprocess.mark_process_dead(worker.pid)
