"""Settings of the audit app, read lazily."""

from django.conf import settings


def premake_months() -> int:
    """How many months after the current one get their partition ahead of time."""
    return int(getattr(settings, "AUDIT_PREMAKE_MONTHS", 3))
