"""Demo reviews for ``manage.py seed_demo``: one of each schedule type, one paused, a
two-minute interval review so a fresh ``make run`` shows runs happening, and one done by
agents on the ``demo-agents`` work queue (``make run`` starts docs/agent_worker.py with a
demo token)."""

import os
from datetime import time, timedelta
from pathlib import Path

from django.utils import timezone

from access.selectors import agent_tokens_list
from access.services import agent_token_create, agent_token_revoke
from scheduling import services
from scheduling.models import ScheduledReview

DEMO_ACTOR = "command:seed_demo"
DEMO_QUEUE = "demo-agents"
DEMO_AGENT = "demo-agent"


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
            "name": "Demo: agents every three minutes",
            "schedule_type": "interval",
            "interval_minutes": 3,
            "owner_id": "owner_09",
            "executor": f"queue:{DEMO_QUEUE}",
            "account_filter": {"segment": "agents", "count": 20},
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


def demo_agent_token_issue(path: Path) -> str:
    """A fresh work token for the demo agent, written to ``path`` (owner-only); the
    demo agent's previous tokens are revoked. Returns the token's prefix."""
    for token in agent_tokens_list(include_revoked=False):
        if token.name == DEMO_AGENT:
            agent_token_revoke(token.prefix, actor=DEMO_ACTOR)
    issued = agent_token_create(
        name=DEMO_AGENT, scopes=["work"], queues=[DEMO_QUEUE], actor=DEMO_ACTOR
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(issued.secret)
    return issued.token.prefix
