"""Keeping each review's django-celery-beat ``PeriodicTask`` in step with the review.

The ``PeriodicTask`` is the review's entry in beat's table: it names the schedule in
beat's own terms (crontab in the review's timezone, interval, or clocked one-off) so
operators and tools that read django-celery-beat see every review, and so even a stock
``DatabaseScheduler`` would run reviews (its task, ``fire_review``, dispatches whatever
is due through the same idempotent path). The review's ``next_run_at`` stays the truth:
biweekly and month-end schedules have no exact crontab.
"""

import json
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
)

from scheduling.models import ScheduledReview, ScheduleType
from scheduling.recurrence import Recurrence

FIRE_TASK = "scheduling.tasks.fire_review"


def periodic_task_name(review_id: int) -> str:
    return f"review:{review_id}"


def _expected(review: ScheduledReview) -> dict[str, Any]:
    """The PeriodicTask fields this review implies."""
    recurrence = Recurrence.of(review)
    values: dict[str, Any] = {
        "name": periodic_task_name(review.pk),
        "task": FIRE_TASK,
        "args": json.dumps([review.pk]),
        "kwargs": "{}",
        "enabled": review.enabled,
        "one_off": review.schedule_type == ScheduleType.ONE_TIME,
        "description": f"Scheduled review '{review.name}' (managed by scheduling; do not edit)",
        "crontab": None,
        "interval": None,
        "clocked": None,
    }
    if review.schedule_type == ScheduleType.INTERVAL:
        values["interval"], _ = IntervalSchedule.objects.get_or_create(
            every=review.interval_minutes, period=IntervalSchedule.MINUTES
        )
    elif review.schedule_type == ScheduleType.ONE_TIME:
        values["clocked"], _ = ClockedSchedule.objects.get_or_create(
            clocked_time=review.scheduled_time
        )
    else:
        minute, hour, day_of_month, month, day_of_week = recurrence.cron_equivalent().split()
        values["crontab"], _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month,
            day_of_week=day_of_week,
            timezone=review.timezone,
        )
    return values


def periodic_task_sync(review: ScheduledReview) -> list[str]:
    """Create or correct the review's PeriodicTask; returns the fields that changed.

    Call inside the transaction that changed the review.
    """
    expected = _expected(review)
    task = review.periodic_task
    if task is None:
        # A task left behind under the review's name (drift) is adopted, not duplicated.
        task = PeriodicTask.objects.filter(name=expected["name"]).first()
    if task is None:
        task = PeriodicTask.objects.create(**expected)
        review.periodic_task = task
        review.save(update_fields=["periodic_task"])
        return ["created"]
    changed = []
    for name, value in expected.items():
        current = getattr(task, name)
        if current != value:
            setattr(task, name, value)
            changed.append(name)
    if changed:
        task.save()  # save() also bumps PeriodicTasks.last_update so beat reloads
    if review.periodic_task_id != task.pk:
        review.periodic_task = task
        review.save(update_fields=["periodic_task"])
        changed.append("link")
    return changed


def periodic_task_delete(review: ScheduledReview) -> None:
    if review.periodic_task_id is not None:
        PeriodicTask.objects.filter(pk=review.periodic_task_id).delete()
    PeriodicTask.objects.filter(name=periodic_task_name(review.pk)).delete()


@dataclass
class ReconcileReport:
    created: list[int] = field(default_factory=list)
    updated: dict[int, list[str]] = field(default_factory=dict)
    orphans_deleted: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.orphans_deleted)


def schedules_reconcile(*, dry_run: bool = False) -> ReconcileReport:
    """Repair drift between reviews and their PeriodicTasks; report what changed.

    With ``dry_run`` the repairs are made inside a transaction that is rolled back.
    """
    report = ReconcileReport()
    with transaction.atomic():
        for review in ScheduledReview.objects.select_related("periodic_task").order_by("pk"):
            changes = periodic_task_sync(review)
            if changes == ["created"]:
                report.created.append(review.pk)
            elif changes:
                report.updated[review.pk] = changes
        linked = ScheduledReview.objects.exclude(periodic_task=None).values("periodic_task")
        orphans = PeriodicTask.objects.filter(task=FIRE_TASK).exclude(pk__in=linked)
        report.orphans_deleted = sorted(orphans.values_list("name", flat=True))
        orphans.delete()
        if dry_run:
            transaction.set_rollback(True)
    return report
