"""Demo reviews for ``manage.py seed_demo``: one of each schedule type, one paused, and a
two-minute interval review so a fresh ``make run`` shows runs happening."""

from datetime import time, timedelta

from django.utils import timezone

from scheduling import services
from scheduling.models import ScheduledReview

DEMO_ACTOR = "command:seed_demo"


def _demo_reviews() -> list[dict]:
    tomorrow = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    return [
        {
            "name": "Demo: EMEA daily review",
            "schedule_type": "daily",
            "time_of_day": time(9, 0),
            "timezone": "Europe/Paris",
            "priority": "high",
            "owner_id": "owner_01",
            "account_filter": {"segment": "emea", "count": 40},
        },
        {
            "name": "Demo: weekly pipeline review",
            "schedule_type": "weekly",
            "time_of_day": time(8, 30),
            "weekday": 0,
            "timezone": "America/New_York",
            "owner_id": "owner_02",
            "account_filter": {"segment": "pipeline", "count": 60},
        },
        {
            "name": "Demo: biweekly strategic accounts",
            "schedule_type": "biweekly",
            "time_of_day": time(14, 0),
            "weekday": 3,
            "timezone": "America/Los_Angeles",
            "priority": "critical",
            "owner_id": "owner_03",
            "account_filter": {"tier": "strategic", "count": 15},
        },
        {
            "name": "Demo: month-end renewals",
            "schedule_type": "monthly",
            "time_of_day": time(18, 0),
            "day_of_month": 31,
            "timezone": "Asia/Tokyo",
            "owner_id": "owner_04",
            "account_filter": {"renewal": "due", "count": 25},
        },
        {
            "name": "Demo: business-hours health check",
            "schedule_type": "cron",
            "cron_expression": "*/15 9-17 * * 1-5",
            "timezone": "Europe/London",
            "priority": "low",
            "owner_id": "owner_05",
            "account_filter": {"count": 10},
        },
        {
            "name": "Demo: every two minutes",
            "schedule_type": "interval",
            "interval_minutes": 2,
            "owner_id": "owner_06",
            "account_filter": {"count": 12},
        },
        {
            "name": "Demo: one-off audit tomorrow",
            "schedule_type": "one_time",
            "scheduled_time": tomorrow,
            "owner_id": "owner_07",
            "account_filter": {"account_ids": ["acct_10001", "acct_10002", "acct_10003"]},
        },
        {
            "name": "Demo: paused APAC review",
            "schedule_type": "daily",
            "time_of_day": time(7, 0),
            "timezone": "Australia/Sydney",
            "owner_id": "owner_08",
            "account_filter": {"segment": "apac", "count": 30},
        },
    ]


def demo_reviews_seed() -> int:
    """Create the demo reviews missing by name; returns how many were created."""
    created = 0
    for fields in _demo_reviews():
        if ScheduledReview.objects.filter(name=fields["name"]).exists():
            continue
        review = services.review_create(actor=DEMO_ACTOR, **fields)
        if "paused" in review.name:
            services.review_pause(
                review.pk, note="Waiting for the APAC CRM migration", actor=DEMO_ACTOR
            )
        created += 1
    return created
