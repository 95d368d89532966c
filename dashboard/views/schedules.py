from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from access.staff import staff_actor_of
from dashboard import conf
from dashboard.access import (
    ADD_REVIEWS,
    CONTROL_REVIEWS,
    NO_ACCESS,
    VIEW_REVIEWS,
    staff_view,
)
from dashboard.controls import REVIEW_CONTROLS, perform, review_controls_for
from dashboard.forms import ExecutionFilterForm, PauseNoteForm, ReviewFilterForm, ReviewForm
from dashboard.paging import cursor_page, filtered_page, has_filters
from scheduling import services
from scheduling.models import ScheduledReview
from scheduling.recurrence import Recurrence, describe, zone
from scheduling.selectors import executions_page, review_get, review_next_runs, reviews_page

NEXT_RUNS_SHOWN = 10


def _review_or_404(review_id: int) -> ScheduledReview:
    review = review_get(review_id)
    if review is None:
        raise Http404(f"Scheduled review {review_id} does not exist.")
    return review


@staff_view(VIEW_REVIEWS)
def schedule_list(request: HttpRequest) -> HttpResponse:
    form = ReviewFilterForm(request.GET)
    page = filtered_page(request, form, reviews_page, with_last_run=True)
    rows = [(review, describe(Recurrence.of(review))) for review in page.items] if page else []
    return render(
        request,
        "dashboard/schedules.html",
        {
            "section": "schedules",
            "form": form,
            "page": page,
            "rows": rows,
            "filtered": has_filters(form.data),
            "can_add": request.user.has_perm(ADD_REVIEWS),
        },
    )


def _runs_context(request: HttpRequest, review: ScheduledReview) -> dict[str, Any]:
    form = ExecutionFilterForm(request.GET)
    status = form.cleaned_data["status"] if form.is_valid() else ""
    page = cursor_page(
        request,
        lambda cursor: executions_page(
            review_id=review.pk,
            statuses=[status] if status else (),
            cursor=cursor,
            limit=conf.page_size(),
        ),
    )
    return {
        "review": review,
        "runs": page,
        "runs_form": form,
        "late_ms": conf.late_run_seconds() * 1000,
        # Only the first page of the history is live; a deeper page stays put.
        "live": not request.GET.get("cursor"),
        "refresh_seconds": conf.refresh_seconds(),
    }


@staff_view(VIEW_REVIEWS)
def schedule_detail(request: HttpRequest, review_id: int) -> HttpResponse:
    review = _review_or_404(review_id)
    tz = zone(review.timezone)
    user = request.user
    can_control = user.has_perm(CONTROL_REVIEWS)
    controls = review_controls_for(user, review.enabled) if can_control else []
    next_runs = review_next_runs(review, count=NEXT_RUNS_SHOWN, after=timezone.now())
    return render(
        request,
        "dashboard/schedule_detail.html",
        {
            "section": "schedules",
            "description": describe(Recurrence.of(review)),
            # Formatted here: the template's date filter would turn them back into UTC.
            "next_runs": [
                (run, run.astimezone(tz).strftime("%a %Y-%m-%d %H:%M %Z")) for run in next_runs
            ],
            "controls": controls,
            "can_edit": can_control,
            **_runs_context(request, review),
        },
    )


@staff_view(VIEW_REVIEWS)
def schedule_runs_fragment(request: HttpRequest, review_id: int) -> HttpResponse:
    """The run history's first page, polled by htmx."""
    return render(
        request, "dashboard/_runs.html", _runs_context(request, _review_or_404(review_id))
    )


@staff_view(CONTROL_REVIEWS)
def schedule_control(request: HttpRequest, review_id: int, action: str) -> HttpResponse:
    """GET: the confirmation; POST: the control through its service, then the outcome."""
    control = REVIEW_CONTROLS.get(action)
    if control is None:
        raise Http404(f"There is no '{action}' control.")
    if not request.user.has_perm(control.permission):
        raise PermissionDenied(NO_ACCESS)
    review = _review_or_404(review_id)
    form = PauseNoteForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        done, _ = perform(
            request,
            lambda: control.run(
                review_id,
                actor=staff_actor_of(request, control.permission),
                text=form.cleaned_data["note"],
            ),
            success=control.done.format(name=review.name),
        )
        if action == "delete" and done:
            return redirect("dashboard:schedules")
        return redirect("dashboard:schedule", review_id=review_id)
    return render(
        request,
        "dashboard/confirm.html",
        {
            "section": "schedules",
            "title": f"{control.label} “{review.name}”?",
            "explanation": control.explanation,
            "current": "It is enabled."
            if review.enabled
            else f"It is paused. {review.paused_note}",
            "form": form if control.text else None,
            "confirm_label": control.label if action == "trigger" else f"{control.label} review",
            "danger": control.danger,
            "cancel_url": reverse("dashboard:schedule", kwargs={"review_id": review_id}),
        },
    )


@staff_view(ADD_REVIEWS)
def schedule_create(request: HttpRequest) -> HttpResponse:
    form = ReviewForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        done, review = perform(
            request,
            lambda: services.review_create(
                actor=staff_actor_of(request, ADD_REVIEWS), **form.fields_to_create()
            ),
            success="Review created.",
        )
        if done:
            return redirect("dashboard:schedule", review_id=review.pk)
    return render(
        request,
        "dashboard/schedule_form.html",
        {"section": "schedules", "form": form, "review": None},
    )


@staff_view(CONTROL_REVIEWS)
def schedule_edit(request: HttpRequest, review_id: int) -> HttpResponse:
    review = _review_or_404(review_id)
    form = ReviewForm(request.POST if request.method == "POST" else None, instance=review)
    if request.method == "POST" and form.is_valid():
        changes = form.changes()
        if not changes:
            return redirect("dashboard:schedule", review_id=review_id)
        done, _ = perform(
            request,
            lambda: services.review_update(
                review_id, changes=changes, actor=staff_actor_of(request, CONTROL_REVIEWS)
            ),
            success=f"Saved: {', '.join(sorted(changes))}.",
        )
        if done:
            return redirect("dashboard:schedule", review_id=review_id)
    return render(
        request,
        "dashboard/schedule_form.html",
        {"section": "schedules", "form": form, "review": review},
    )
