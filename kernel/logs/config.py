"""The ``LOGGING`` setting, built from ``LOG_FORMAT`` and ``LOG_LEVEL``.

Imported by the settings modules, so it needs nothing of Django's set up.
"""

import logging
import logging.config
from typing import Any

from django.core.exceptions import ImproperlyConfigured

LOG_FORMATS = ("json", "text")

# python-json-logger writes the record's standard fields named here, then every extra
# attribute (the context's ids among them); ``time`` is reserved first by ``defaults``
# and filled with the record's time in UTC (ISO 8601) by ``timestamp``.
_JSON_FORMATTER = {
    "()": "pythonjsonlogger.json.JsonFormatter",
    "fmt": "%(levelname)s %(name)s %(message)s",
    "rename_fields": {"levelname": "level", "name": "logger"},
    "defaults": {"time": None},
    "timestamp": "time",
}
_TEXT_FORMATTER = {"format": "%(asctime)s %(levelname)s %(name)s %(message)s%(log_context)s"}


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """One handler on the root logger (stderr) that every logger reaches: the project's,
    Django's, Celery's (``sergas.celery`` keeps Celery from installing its own) and
    gunicorn's (``kernel.logs.gunicorn``)."""
    if log_format not in LOG_FORMATS:
        raise ImproperlyConfigured(
            f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}"
        )
    text = log_format == "text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "kernel.logs.context.ContextFilter", "text": text}},
        "formatters": {log_format: _TEXT_FORMATTER if text else _JSON_FORMATTER},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["context"],
            },
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's defaults give these handlers of their own (a second, plain copy of
            # each line under DEBUG; runserver's request lines): one handler for all.
            "django": {"handlers": [], "level": level, "propagate": True},
            "django.server": {"handlers": [], "level": level, "propagate": True},
        },
    }


def configure(config: dict[str, Any]) -> None:
    """``LOGGING_CONFIG``: the configuration, and Python's warnings as records of the
    ``py.warnings`` logger, so they come out in the same format instead of as raw text."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)
