"""Reads of the scheduling domain."""

from collections.abc import Sequence
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from scheduling.models import ScheduledReview, ScheduleExecution
from scheduling.recurrence import Recurrence
from sergas.pagination import Page, keyset_page

REVIEW_ORDERING = ("name", "id")
EXECUTION_ORDERING = ("-nominal_time", "-attempt", "-id")


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


def reviews_page(
    *,
    owner_id: str | None = None,
    enabled: bool | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[ScheduledReview]:
    return keyset_page(
        reviews_list(owner_id=owner_id, enabled=enabled),
        ordering=REVIEW_ORDERING,
        cursor=cursor,
        limit=limit,
    )


def executions_page(
    *,
    review_id: int | None = None,
    statuses: Sequence[str] = (),
    cursor: str | None = None,
    limit: int = 50,
) -> Page[ScheduleExecution]:
    """Runs newest first, one keyset page at a time."""
    queryset = ScheduleExecution.objects.all()
    if review_id is not None:
        queryset = queryset.filter(review_id=review_id)
    if statuses:
        queryset = queryset.filter(status__in=statuses)
    return keyset_page(queryset, ordering=EXECUTION_ORDERING, cursor=cursor, limit=limit)
