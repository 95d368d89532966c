from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from access.services import staff_actor
from kernel.admin import ReadOnlyModelAdmin
from kernel.errors import DomainError
from scheduling import services
from scheduling.forms import ScheduledReviewForm
from scheduling.models import AccountReview, RunBatch, ScheduledReview, ScheduleExecution


def _actor(request: HttpRequest, permission: str = "scheduling.change_scheduledreview") -> str:
    return staff_actor(
        request.user, permission, path=request.path, remote_addr=request.META.get("REMOTE_ADDR")
    )


def _each(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet, verb: str, action: Any
) -> None:
    done = 0
    try:
        actor = _actor(request)
    except DomainError as exc:
        modeladmin.message_user(request, exc.detail, messages.ERROR)
        return
    for review_id in queryset.values_list("pk", flat=True):
        try:
            action(review_id, actor=actor)
            done += 1
        except DomainError as exc:
            modeladmin.message_user(request, exc.detail, messages.WARNING)
    if done:
        modeladmin.message_user(request, f"{verb} {done} review(s).", messages.SUCCESS)


@admin.action(description="Run selected reviews now", permissions=["change"])
def trigger_reviews(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    _each(modeladmin, request, queryset, "Triggered", services.review_trigger_on_demand)


@admin.action(description="Pause selected reviews", permissions=["change"])
def pause_reviews(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    _each(
        modeladmin,
        request,
        queryset,
        "Paused",
        lambda pk, actor: services.review_pause(pk, note="paused from the admin", actor=actor),
    )


@admin.action(description="Resume selected reviews", permissions=["change"])
def resume_reviews(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    _each(modeladmin, request, queryset, "Resumed", services.review_resume)


@admin.register(ScheduledReview)
class ScheduledReviewAdmin(admin.ModelAdmin):
    form = ScheduledReviewForm
    list_display = [
        "name",
        "owner_id",
        "schedule_type",
        "timezone",
        "priority",
        "executor",
        "enabled",
        "next_run_at",
        "last_run_at",
    ]
    list_filter = ["enabled", "schedule_type", "priority", "executor"]
    search_fields = ["name", "=owner_id"]
    actions = [trigger_reviews, pause_reviews, resume_reviews]

    def save_model(
        self, request: HttpRequest, obj: ScheduledReview, form: ScheduledReviewForm, change: bool
    ) -> None:
        if change:
            saved = services.review_update(obj.pk, changes=form.changes(), actor=_actor(request))
        else:
            saved = services.review_create(
                actor=_actor(request, "scheduling.add_scheduledreview"), **form.fields_to_create()
            )
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: ScheduledReview) -> None:
        services.review_delete(obj.pk, actor=_actor(request, "scheduling.delete_scheduledreview"))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        actor = _actor(request, "scheduling.delete_scheduledreview")
        for review_id in queryset.values_list("pk", flat=True):
            services.review_delete(review_id, actor=actor)


@admin.register(ScheduleExecution)
class ScheduleExecutionAdmin(ReadOnlyModelAdmin):
    """Run history, read-only."""

    list_display = [
        "review_name",
        "nominal_time",
        "attempt",
        "trigger",
        "status",
        "executor",
        "start_lag_ms",
        "duration_ms",
        "accounts_processed",
    ]
    list_filter = ["status", "trigger", "priority", "executor"]
    search_fields = ["review_name", "=session__session_id"]
    date_hierarchy = "nominal_time"


@admin.register(RunBatch)
class RunBatchAdmin(ReadOnlyModelAdmin):
    """The batches of runs (fan-out), read-only: claimed and recorded by the workers and
    the agents of work queues."""

    list_display = [
        "execution",
        "index",
        "queue",
        "status",
        "holder",
        "attempts",
        "lease_expires_at",
        "started_at",
        "finished_at",
    ]
    list_filter = ["status", "queue"]
    search_fields = ["=execution__id", "=holder"]
    list_select_related = ["execution"]


@admin.register(AccountReview)
class AccountReviewAdmin(ReadOnlyModelAdmin):
    """What runs found per account, read-only: written with their batch."""

    list_display = [
        "account_id",
        "execution",
        "outcome",
        "recommendations_count",
        "duration_ms",
        "agent",
        "recorded_at",
    ]
    list_filter = ["outcome", "agent"]
    search_fields = ["=account_id", "=execution__id", "=session_id"]
    list_select_related = ["execution"]
    date_hierarchy = "recorded_at"
