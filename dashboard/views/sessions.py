from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from access.staff import staff_actor_of
from audit.models import AuditEventType
from audit.selectors import audit_events_search
from dashboard import conf
from dashboard.access import CONTROL_SESSIONS, VIEW_SESSIONS, staff_view
from dashboard.controls import SESSION_CONTROLS, perform, session_controls_for
from dashboard.forms import ReasonForm, SessionFilterForm
from dashboard.paging import cursor_page, filtered_page, has_filters
from dashboard.waterfall import waterfalls
from scheduling.selectors import execution_of_session
from sessions.models import ACTIVE_STATUSES, AgentSession
from sessions.selectors import (
    approvals_of_session,
    session_checkpoints,
    session_get,
    session_progress,
    sessions_list,
)
from sessions.state import SessionContext, SessionMetrics
from traces import conf as traces_conf
from traces.models import Span
from traces.selectors import session_span_count, session_spans, session_usage_by_model, span_get

CHECKPOINTS_SHOWN = 20
APPROVALS_SHOWN = 50
ACCOUNTS_SHOWN = 60
WATERFALL_SPANS = 500  # drawn on the page; the count says how many more there are


@staff_view(VIEW_SESSIONS)
def session_list(request: HttpRequest) -> HttpResponse:
    form = SessionFilterForm(request.GET)
    page = filtered_page(request, form, sessions_list)
    return render(
        request,
        "dashboard/sessions.html",
        {"section": "sessions", "form": form, "page": page, "filtered": has_filters(form.data)},
    )


def _session_or_404(session_id: str) -> AgentSession:
    session = session_get(session_id)
    if session is None:
        raise Http404(f"Session {session_id} does not exist.")
    return session


class TimelineFilterForm(forms.Form):
    event_type = forms.ChoiceField(
        label="Events",
        required=False,
        choices=[("", "All events"), *AuditEventType.choices],
    )


@staff_view(VIEW_SESSIONS)
def session_detail(request: HttpRequest, session_id: str) -> HttpResponse:
    session = _session_or_404(session_id)
    context = SessionContext.load(session.context)
    metrics = SessionMetrics.load(session.metrics)
    timeline_form = TimelineFilterForm(request.GET)
    event_type = timeline_form.cleaned_data["event_type"] if timeline_form.is_valid() else ""
    timeline = cursor_page(
        request,
        lambda cursor: audit_events_search(
            since=session.created_at,
            session_id=session.session_id,
            event_type=event_type or None,
            cursor=cursor,
            limit=conf.page_size(),
        ),
    )
    can_control = request.user.has_perm(CONTROL_SESSIONS)
    spans = session_spans(session.session_id, since=session.created_at, limit=WATERFALL_SPANS)
    return render(
        request,
        "dashboard/session_detail.html",
        {
            "section": "sessions",
            "session": session,
            "context": context,
            "metadata": context.metadata,
            "accounts_shown": context.account_ids[:ACCOUNTS_SHOWN],
            "failed_shown": sorted(context.failed_accounts)[:ACCOUNTS_SHOWN],
            "metrics": metrics,
            "processing": processing_stats(metrics.account_processing_times_ms),
            "checkpoints": list(
                session_checkpoints(session.session_id, with_state=False)[:CHECKPOINTS_SHOWN]
            ),
            "execution": execution_of_session(session.session_id),
            "timeline": timeline,
            "timeline_form": timeline_form,
            "controls": session_controls_for(session.status) if can_control else [],
            "approvals": list(approvals_of_session(session.session_id)[:APPROVALS_SHOWN]),
            "can_decide": can_control,
            "progress": session_progress(session.session_id),
            "live": session.status in ACTIVE_STATUSES,
            "refresh_seconds": conf.refresh_seconds(),
            **_trace(request, session, spans),
        },
    )


def _trace(request: HttpRequest, session: AgentSession, spans: list[Span]) -> dict:
    """The trace section: its waterfalls, the span chosen by ``?span=<trace>-<span>``
    (the page without JavaScript; htmx loads ``session_span_fragment`` instead), usage."""
    selected_key = request.GET.get("span", "")
    trace_id, _, span_id = selected_key.partition("-")
    selected = (
        span_get(session.session_id, trace_id, span_id, since=session.created_at)
        if trace_id and span_id
        else None
    )
    return {
        "waterfalls": waterfalls(spans),
        "waterfall_spans": WATERFALL_SPANS,
        "span_count": (
            len(spans)
            if len(spans) < WATERFALL_SPANS
            else session_span_count(session.session_id, since=session.created_at)
        ),
        "selected_span": selected,
        "selected_key": selected_key if selected else "",
        # A session without spans has no usage to sum: no query for it.
        "usage": (
            session_usage_by_model(session.session_id, since=session.created_at) if spans else []
        ),
        "retention_days": traces_conf.retention_days(),
    }


@staff_view(VIEW_SESSIONS)
def session_span_fragment(
    request: HttpRequest, session_id: str, trace_id: str, span_id: str
) -> HttpResponse:
    """One span's attributes (htmx, on a click in the waterfall)."""
    session = _session_or_404(session_id)
    span = span_get(session_id, trace_id, span_id, since=session.created_at)
    if span is None:
        raise Http404(f"Span {trace_id}/{span_id} of {session_id} does not exist.")
    return render(request, "dashboard/_span_detail.html", {"span": span})


@staff_view(VIEW_SESSIONS)
def session_progress_fragment(request: HttpRequest, session_id: str) -> HttpResponse:
    """The live status and progress of one session; polling stops once it is not active
    (the page is reloaded then, so its controls match the new status)."""
    progress = session_progress(session_id)
    if progress is None:
        raise Http404(f"Session {session_id} does not exist.")
    response = render(
        request,
        "dashboard/_session_progress.html",
        {"progress": progress, "live": True, "refresh_seconds": conf.refresh_seconds()},
    )
    if progress.status not in ACTIVE_STATUSES:
        response["HX-Refresh"] = "true"
    return response


def processing_stats(times_ms: list[int]) -> dict[str, float] | None:
    """Count, mean, median, p95 and max of per-account processing times."""
    if not times_ms:
        return None
    ordered = sorted(times_ms)
    last = len(ordered) - 1
    return {
        "count": len(ordered),
        "mean": sum(ordered) / len(ordered),
        "p50": ordered[round(0.5 * last)],
        "p95": ordered[round(0.95 * last)],
        "max": ordered[-1],
    }


@staff_view(CONTROL_SESSIONS)
def session_control(request: HttpRequest, session_id: str, action: str) -> HttpResponse:
    """GET: the confirmation; POST: the control through its service, then the outcome."""
    control = SESSION_CONTROLS.get(action)
    if control is None:
        raise Http404(f"There is no '{action}' control.")
    session = _session_or_404(session_id)
    form = ReasonForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        perform(
            request,
            lambda: control.run(
                session_id,
                actor=staff_actor_of(request, control.permission),
                text=form.cleaned_data["reason"],
            ),
            success=control.done.format(name=session_id),
        )
        return redirect("dashboard:session", session_id=session_id)
    return render(
        request,
        "dashboard/confirm.html",
        {
            "section": "sessions",
            "title": f"{control.label} session {session.session_id}?",
            "explanation": control.explanation,
            "current": f"It is {session.status}.",
            "form": form if control.text else None,
            "confirm_label": f"{control.label} session",
            "danger": control.danger,
            "cancel_url": session_url(session.session_id),
        },
    )


def session_url(session_id: str) -> str:
    return reverse("dashboard:session", kwargs={"session_id": session_id})
