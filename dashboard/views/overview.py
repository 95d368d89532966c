from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from dashboard import conf
from dashboard.access import VIEW_SESSIONS, staff_view
from dashboard.overview import active_sessions, overview_build
from dashboard.views.approvals import open_approvals_context
from sessions.models import SessionStatus


@staff_view(VIEW_SESSIONS)
def overview(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    return render(
        request,
        "dashboard/overview.html",
        {
            "section": "overview",
            "now": now,
            "overview": overview_build(now),
            "statuses": SessionStatus.values,
            "active": active_sessions(),
            "refresh_seconds": conf.refresh_seconds(),
            **open_approvals_context(request),
        },
    )


@staff_view(VIEW_SESSIONS)
def active_sessions_fragment(request: HttpRequest) -> HttpResponse:
    """The live table of the overview, polled by htmx."""
    return render(
        request,
        "dashboard/_active_sessions.html",
        {"active": active_sessions(), "refresh_seconds": conf.refresh_seconds()},
    )
