from datetime import time
from typing import Any

from scheduling import services
from scheduling.models import ScheduledReview


def make_review(**fields: Any) -> ScheduledReview:
    fields.setdefault("name", "Nightly review")
    fields.setdefault("owner_id", "owner_1")
    fields.setdefault("schedule_type", "daily")
    if fields["schedule_type"] in {"daily", "weekly", "biweekly", "monthly"}:
        fields.setdefault("time_of_day", time(9, 0))
    if fields["schedule_type"] in {"weekly", "biweekly"}:
        fields.setdefault("weekday", 0)
    if fields["schedule_type"] == "monthly":
        fields.setdefault("day_of_month", 1)
    fields.setdefault("account_filter", {"count": 3})
    return services.review_create(**fields)
