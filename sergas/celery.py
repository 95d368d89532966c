"""The Celery application shared by the worker, beat and the web processes."""

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sergas.settings.base")

app = Celery("sergas")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
@signals.beat_init.connect
def _refuse_to_start_on_errors(sender: Any = None, **kwargs: Any) -> None:
    """A worker or beat with a configuration the system checks call an error exits
    (sergas.startup), as ``manage.py`` commands would."""
    from sergas.startup import refuse_to_start_on_errors

    refuse_to_start_on_errors("celery")
