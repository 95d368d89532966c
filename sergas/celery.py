"""The Celery application shared by the worker, beat and the web processes."""

import os
from typing import Any

from celery import Celery, signals

# Its receivers carry the request id into the tasks a request enqueues, and the task's
# ids into the task's lines.
import kernel.logs.tasks  # noqa: F401

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sergas.settings.base")

app = Celery("sergas")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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
