"""Dashboard settings, read lazily from ``settings.SERGAS_DASHBOARD``."""

from typing import Any

from django.conf import settings


def _get(name: str, default: Any) -> Any:
    return getattr(settings, "SERGAS_DASHBOARD", {}).get(name, default)


def page_size() -> int:
    """Rows per page of every list (sessions, schedules, runs, audit events)."""
    return int(_get("PAGE_SIZE", 50))


def refresh_seconds() -> int:
    """How often the live parts (active sessions, a session's progress, runs) refresh."""
    return int(_get("REFRESH_SECONDS", 5))


def late_run_seconds() -> int:
    """A run that started more than this after its nominal time is shown as late."""
    return int(_get("LATE_RUN_SECONDS", 60))


def late_record_seconds() -> int:
    """An audit event the database recorded more than this after the time it claims is
    marked as recorded late (backdated, or reported late by its agent)."""
    return int(_get("LATE_RECORD_SECONDS", 10))


def overview_cache_seconds() -> float:
    """How long a process reuses the overview's counts and charts (aggregates over every
    session and a day of audit events); 0 recomputes them on every request."""
    return float(_get("OVERVIEW_CACHE_SECONDS", 5))
