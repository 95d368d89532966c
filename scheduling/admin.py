from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import QuerySet
from django.forms.models import model_to_dict
from django.http import HttpRequest

from agents.services import staff_actor
from scheduling import services
from scheduling.exceptions import InvalidSchedule
from scheduling.models import ScheduledReview, ScheduleExecution
from sergas.errors import DomainError


def _actor(request: HttpRequest, permission: str = "scheduling.change_scheduledreview") -> str:
    return staff_actor(
        request.user, permission, path=request.path, remote_addr=request.META.get("REMOTE_ADDR")
    )


class ScheduledReviewForm(forms.ModelForm):
    """Validated by the same rules as the services and the API."""

    class Meta:
        model = ScheduledReview
        fields = list(services.EDITABLE_FIELDS)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        candidate = ScheduledReview(
            **{**model_to_dict(self.instance, fields=self.Meta.fields), **cleaned}
        )
        try:
            services.review_validate(candidate)
        except InvalidSchedule as exc:
            field = exc.field if exc.field in self.fields else NON_FIELD_ERRORS
            raise ValidationError({field: exc.detail}) from None
        return cleaned


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
        "enabled",
        "next_run_at",
        "last_run_at",
    ]
    list_filter = ["enabled", "schedule_type", "priority"]
    search_fields = ["name", "=owner_id"]
    actions = [trigger_reviews, pause_reviews, resume_reviews]

    def save_model(
        self, request: HttpRequest, obj: ScheduledReview, form: forms.ModelForm, change: bool
    ) -> None:
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data}
            saved = services.review_update(obj.pk, changes=changes, actor=_actor(request))
        else:
            fields = {
                name: form.cleaned_data[name]
                for name in services.EDITABLE_FIELDS
                if name in form.cleaned_data
            }
            saved = services.review_create(
                actor=_actor(request, "scheduling.add_scheduledreview"), **fields
            )
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: ScheduledReview) -> None:
        services.review_delete(obj.pk, actor=_actor(request, "scheduling.delete_scheduledreview"))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        actor = _actor(request, "scheduling.delete_scheduledreview")
        for review_id in queryset.values_list("pk", flat=True):
            services.review_delete(review_id, actor=actor)


@admin.register(ScheduleExecution)
class ScheduleExecutionAdmin(admin.ModelAdmin):
    """Run history, read-only."""

    list_display = [
        "review_name",
        "nominal_time",
        "attempt",
        "trigger",
        "status",
        "start_lag_ms",
        "duration_ms",
        "accounts_processed",
    ]
    list_filter = ["status", "trigger", "priority"]
    search_fields = ["review_name", "=session__session_id"]
    date_hierarchy = "nominal_time"
    readonly_fields = [field.name for field in ScheduleExecution._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
