"""The Celery application shared by the worker, beat and the web processes."""

import os
from typing import Any

from celery import Celery, signals

# Its receivers carry the request id into the tasks a request enqueues, and the task's
# ids into the task's lines.
import kernel.logs.tasks  # noqa: F401

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sergas.settings.base")

app = Celery("sergas")
# The apps reach it as ``celery.current_app`` (they may not import the wiring): current in
# every thread, not only the one that made it.
app.set_default()
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _install_beat_schedule(sender: Celery, source: Any, **kwargs: Any) -> None:
    """The periodic tasks, built from the apps' settings once Django's are loaded."""
    from sergas.beat_schedule import beat_schedule

    source.beat_schedule = beat_schedule()


@signals.setup_logging.connect
def _log_as_configured(**kwargs: Any) -> None:
    """Workers and beat log through ``LOGGING`` (LOG_FORMAT, LOG_LEVEL) like every other
    process, instead of Celery's own handlers and ``--loglevel``."""
    from django.conf import settings
    from django.utils.log import configure_logging

    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)


@signals.worker_init.connect
@signals.beat_init.connect
def _refuse_to_start_on_errors(sender: Any = None, **kwargs: Any) -> None:
    """A worker or beat with a configuration the system checks call an error exits
    (sergas.startup), as ``manage.py`` commands would."""
    from sergas.startup import refuse_to_start_on_errors

    refuse_to_start_on_errors("celery")
