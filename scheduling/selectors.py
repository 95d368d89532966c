"""Reads of the scheduling domain."""

from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from scheduling.models import ScheduledReview, ScheduleExecution
from scheduling.recurrence import Recurrence


def review_get(review_id: int) -> ScheduledReview | None:
    return ScheduledReview.objects.filter(pk=review_id).first()


def reviews_list(*, owner_id: str | None = None, enabled: bool | None = None) -> QuerySet:
    queryset = ScheduledReview.objects.all()
    if owner_id:
        queryset = queryset.filter(owner_id=owner_id)
    if enabled is not None:
        queryset = queryset.filter(enabled=enabled)
    return queryset.order_by("name", "pk")


def review_next_runs(
    review: ScheduledReview, *, count: int = 5, after: datetime | None = None
) -> list[datetime]:
    """The next ``count`` run times (UTC), computed from the review, paused or not."""
    return Recurrence.of(review).preview(after or timezone.now(), count)


def review_executions(review_id: int) -> QuerySet[ScheduleExecution]:
    """The review's run history, newest first."""
    return ScheduleExecution.objects.filter(review_id=review_id).order_by(
        "-nominal_time", "-attempt"
    )
