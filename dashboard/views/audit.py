from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from audit.selectors import audit_events_search
from dashboard import conf
from dashboard.access import VIEW_AUDIT, staff_view
from dashboard.controls import staff_actor
from dashboard.exports import FORMATS, audit_export_lines, audit_export_record, export_filename
from dashboard.forms import AuditFilterForm
from dashboard.paging import cursor_page


@staff_view(VIEW_AUDIT)
def audit_explorer(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    page = filters = None
    if form.is_valid():
        filters = form.selector_filters(timezone.now())
        page = cursor_page(
            request,
            lambda cursor: audit_events_search(**filters, cursor=cursor, limit=conf.page_size()),
        )
    query = request.GET.copy()
    query.pop("cursor", None)
    return render(
        request,
        "dashboard/audit.html",
        {
            "section": "audit",
            "form": form,
            "page": page,
            "since": filters["since"] if filters else None,
            "export_query": query.urlencode(),
        },
    )


@staff_view(VIEW_AUDIT)
def audit_export(request: HttpRequest, fmt: str) -> HttpResponse:
    """Every event the explorer's filters match (not only one page), streamed."""
    if fmt not in FORMATS:
        raise Http404(f"There is no '{fmt}' export.")
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        return render(
            request,
            "dashboard/audit.html",
            {"section": "audit", "form": form, "page": None, "export_query": ""},
            status=400,
        )
    filters = form.selector_filters(timezone.now())
    audit_export_record(fmt, filters, actor=staff_actor(request, VIEW_AUDIT))
    response = StreamingHttpResponse(audit_export_lines(fmt, filters), content_type=FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{export_filename(fmt, filters)}"'
    return response
