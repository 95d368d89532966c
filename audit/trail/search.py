"""The audit search policy, one for the API and the dashboard: a search without a start
covers the last week (a bounded range keeps the query on a few monthly partitions), a
page holds ``AUDIT_SEARCH_PAGE_LIMIT`` events unless asked for more, up to
``AUDIT_SEARCH_PAGE_LIMIT_MAX``, and the "recorded late" filter is bounded."""

from datetime import datetime, timedelta

from django.utils import timezone

AUDIT_SEARCH_DEFAULT_WINDOW = timedelta(days=7)
AUDIT_SEARCH_PAGE_LIMIT = 100
AUDIT_SEARCH_PAGE_LIMIT_MAX = 500
# Longer than any retention; bounds the interval the search adds to a timestamp.
AUDIT_SEARCH_RECORDED_LATE_MAX_SECONDS = 100 * 365 * 86400


def audit_search_since(since: datetime | None, *, now: datetime | None = None) -> datetime:
    """Where a search starts: ``since``, or the default window before ``now``."""
    return since or (now or timezone.now()) - AUDIT_SEARCH_DEFAULT_WINDOW
