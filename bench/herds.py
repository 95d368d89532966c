"""Reviews due together (the morning herds), created in bulk for the benchmarks.

``herd_create`` writes N daily reviews due at one moment, with the django-celery-beat
rows the review services would have made, far faster than N ``review_create`` calls:
the benchmarks measure what happens at the due time, not the set-up.
"""

import json
from datetime import datetime
from typing import Any


def crontab_at(due: datetime) -> Any:
    """The crontab of a daily run at ``due``'s minute (UTC), as the presets make it."""
    from django_celery_beat.models import CrontabSchedule

    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=str(due.minute),
        hour=str(due.hour),
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone="UTC",
    )
    return crontab


def herd_create(
    count: int,
    due: datetime,
    *,
    accounts: int = 1,
    name: str = "herd",
    first_index: int = 0,
    owners: int = 50,
) -> list[Any]:
    """``count`` daily reviews of ``accounts`` synthetic accounts each, due at ``due``
    (to the second), spread over ``owners`` owners; returns the reviews."""
    from django_celery_beat.models import PeriodicTask, PeriodicTasks

    from scheduling.models import ScheduledReview
    from scheduling.services.sync import FIRE_TASK

    crontab = crontab_at(due)
    indexes = range(first_index, first_index + count)
    reviews = ScheduledReview.objects.bulk_create(
        [
            ScheduledReview(
                name=f"{name} {index:06d}",
                owner_id=f"owner_{index % owners:03d}",
                schedule_type="daily",
                time_of_day=due.time(),
                timezone="UTC",
                account_filter={"count": accounts},
                next_run_at=due,
            )
            for index in indexes
        ],
        batch_size=2000,
    )
    tasks = PeriodicTask.objects.bulk_create(
        [
            PeriodicTask(
                name=f"review:{review.pk}",
                task=FIRE_TASK,
                crontab=crontab,
                args=json.dumps([review.pk]),
            )
            for review in reviews
        ],
        batch_size=2000,
    )
    for review, task in zip(reviews, tasks, strict=True):
        review.periodic_task = task
    ScheduledReview.objects.bulk_update(reviews, ["periodic_task"], batch_size=2000)
    PeriodicTasks.update_changed()
    return reviews
