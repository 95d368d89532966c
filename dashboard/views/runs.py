import uuid
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render

from access.staff import staff_actor_of
from dashboard import conf
from dashboard.access import VIEW_REVIEWS, staff_view
from dashboard.exports import (
    CSV_CONTENT_TYPE,
    run_results_csv,
    run_results_filename,
)
from dashboard.forms import ResultFilterForm
from dashboard.paging import filtered_page, has_filters
from scheduling.models import (
    ACTIVE_EXECUTION_STATUSES,
    BatchStatus,
    ResultOutcome,
    ScheduleExecution,
)
from scheduling.selectors import (
    account_reviews_page,
    execution_get,
    execution_progress,
    execution_status,
)
from scheduling.services import run_results_export_record


def _run_or_404(execution_id: uuid.UUID) -> ScheduleExecution:
    execution = execution_get(execution_id)
    if execution is None:
        raise Http404(f"Run {execution_id} does not exist.")
    return execution


def _progress_context(execution_id: uuid.UUID, status: str) -> dict[str, Any]:
    return {
        "execution_id": execution_id,
        "status": status,
        "progress": execution_progress(execution_id),
        "batch_statuses": BatchStatus.values,
        "outcomes": ResultOutcome.values,
        "live": status in ACTIVE_EXECUTION_STATUSES,
        "refresh_seconds": conf.refresh_seconds(),
    }


def _run_page(
    request: HttpRequest, execution: ScheduleExecution, form: ResultFilterForm, *, status: int
) -> HttpResponse:
    results = filtered_page(request, form, account_reviews_page, execution.pk)
    query = request.GET.copy()
    query.pop("cursor", None)
    return render(
        request,
        "dashboard/run_detail.html",
        {
            "section": "schedules",
            "execution": execution,
            "form": form,
            "results": results,
            "filtered": has_filters(form.data),
            "export_query": query.urlencode(),
            **_progress_context(execution.pk, execution.status),
        },
        status=status,
    )


@staff_view(VIEW_REVIEWS)
def run_detail(request: HttpRequest, execution_id: uuid.UUID) -> HttpResponse:
    execution = _run_or_404(execution_id)
    return _run_page(request, execution, ResultFilterForm(request.GET), status=200)


@staff_view(VIEW_REVIEWS)
def run_progress_fragment(request: HttpRequest, execution_id: uuid.UUID) -> HttpResponse:
    """The live progress of a run; once it ends, the page is reloaded (with its results)."""
    status = execution_status(execution_id)
    if status is None:
        raise Http404(f"Run {execution_id} does not exist.")
    response = render(
        request, "dashboard/_run_progress.html", _progress_context(execution_id, status)
    )
    if status not in ACTIVE_EXECUTION_STATUSES:
        response["HX-Refresh"] = "true"
    return response


@staff_view(VIEW_REVIEWS)
def run_results_export(request: HttpRequest, execution_id: uuid.UUID) -> HttpResponse:
    """Every result of the run the outcome filter matches (not only one page), streamed."""
    execution = _run_or_404(execution_id)
    form = ResultFilterForm(request.GET)
    if not form.is_valid():
        return _run_page(request, execution, form, status=400)
    outcome = form.selector_filters()["outcome"]
    run_results_export_record(
        execution, outcome=outcome, actor=staff_actor_of(request, VIEW_REVIEWS)
    )
    response = StreamingHttpResponse(
        run_results_csv(execution.pk, outcome=outcome), content_type=CSV_CONTENT_TYPE
    )
    filename = run_results_filename(execution, outcome=outcome)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
