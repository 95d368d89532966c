import functools

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from access.staff import apply_as_staff, staff_actor_of
from kernel.admin import ReadOnlyModelAdmin
from scheduling import services
from scheduling.forms import ScheduledReviewForm
from scheduling.models import AccountReview, RunBatch, ScheduledReview, ScheduleExecution

ADD_REVIEWS = "scheduling.add_scheduledreview"
CHANGE_REVIEWS = "scheduling.change_scheduledreview"
DELETE_REVIEWS = "scheduling.delete_scheduledreview"


# Each action runs its service per selected row as the staff member (access.staff).
_each = functools.partial(apply_as_staff, permission=CHANGE_REVIEWS, noun="review(s)")


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
            saved = services.review_update(
                obj.pk, changes=form.changes(), actor=staff_actor_of(request, CHANGE_REVIEWS)
            )
        else:
            saved = services.review_create(
                actor=staff_actor_of(request, ADD_REVIEWS), **form.fields_to_create()
            )
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: ScheduledReview) -> None:
        services.review_delete(obj.pk, actor=staff_actor_of(request, DELETE_REVIEWS))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        actor = staff_actor_of(request, DELETE_REVIEWS)
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
