"""Refusing to start with a configuration the system checks call an error.

``manage.py`` commands run Django's system checks themselves; gunicorn and Celery do
not (Celery's Django fixup runs them but ignores what they find). ``gunicorn.conf.py``
and ``sergas.celery`` call ``refuse_to_start_on_errors`` as their processes start, so a
production web or worker process with, say, the simulated review runner
(``scheduling.E001``) exits with the check's message instead of serving.
"""

import logging

logger = logging.getLogger(__name__)


def refuse_to_start_on_errors(process: str) -> None:
    """Raise ``SystemExit`` with the messages of every serious system check."""
    import django
    from django.apps import apps
    from django.core import checks

    if not apps.ready:
        # Only when not set up yet: setup() configures logging again, which would take
        # the handlers Celery installed away from its process.
        django.setup()
    errors = [message for message in checks.run_checks() if message.is_serious()]
    if errors:
        text = "\n".join(f"{message}\n  HINT: {message.hint}" for message in errors)
        logger.critical("%s refuses to start:\n%s", process, text)
        raise SystemExit(f"{process} refuses to start:\n{text}")
