"""gunicorn reads this file from the working directory: ``gunicorn sergas.wsgi``.

Only what metrics need under several workers, the refusal to start with a configuration
the system checks call an error, and gunicorn's own lines in the project's log format are
set here; bind, workers and timeouts stay on the command line. See docs/operations.md,
"Metrics under several processes" and "Logs".
"""

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sergas.settings.base")

logger_class = "kernel.logs.gunicorn.GunicornLogger"


def on_starting(server: Any) -> None:
    """Refuse to serve a configuration the system checks call an error (sergas.startup)."""
    from sergas.startup import refuse_to_start_on_errors

    refuse_to_start_on_errors("gunicorn")


def child_exit(server: Any, worker: Any) -> None:
    """A worker that exits leaves its counter and histogram files (their totals must
    not drop), but its live gauges must no longer be reported."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
