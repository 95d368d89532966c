"""gunicorn's own lines in the project's format (``logger_class`` in gunicorn.conf.py)."""

import logging
from typing import Any

from gunicorn.glogging import Logger


class GunicornLogger(Logger):
    """gunicorn's error log, and its access log when asked for with ``--access-logfile -``,
    go to the root logger's handler (``LOGGING``) instead of handlers of their own: JSON in
    production, with the request id on access lines. A log file named on the command line
    keeps gunicorn's own format. Settings that cannot load leave gunicorn's handlers in
    place, so ``on_starting`` can say what is wrong."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured
        from django.utils.log import configure_logging

        try:
            configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
        except ImproperlyConfigured:
            return
        for log in (self.error_log, self.access_log):
            consoles = [
                handler
                for handler in log.handlers
                if type(handler) is logging.StreamHandler and getattr(handler, "_gunicorn", False)
            ]
            for handler in consoles:
                log.removeHandler(handler)
            if consoles:
                log.propagate = True
