import json
import uuid

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from access.staff import staff_actor_of
from audit.selectors import audit_event_proof, audit_events_search, audit_witnesses_health
from audit.services import audit_export_record
from dashboard import conf
from dashboard.access import VIEW_AUDIT, staff_view
from dashboard.controls import answer
from dashboard.exports import FORMATS, audit_export_lines, export_filename
from dashboard.forms import AuditFilterForm
from dashboard.paging import cursor_page

PROOF_CONTENT_TYPE = "application/json"


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
            "proofs": True,
            "witnesses": audit_witnesses_health(),
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
            {
                "section": "audit",
                "form": form,
                "page": None,
                "export_query": "",
                "witnesses": audit_witnesses_health(),
            },
            status=400,
        )
    filters = form.selector_filters(timezone.now())
    audit_export_record(fmt=fmt, filters=filters, actor=staff_actor_of(request, VIEW_AUDIT))
    response = StreamingHttpResponse(audit_export_lines(fmt, filters), content_type=FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{export_filename(fmt, filters)}"'
    return response


@staff_view(VIEW_AUDIT)
def audit_event_proof_download(request: HttpRequest, event_id: uuid.UUID) -> HttpResponse:
    """The event's inclusion proof as a file, checked offline with ``python -m audit.proof``;
    an event not sealed yet is refused with the reason."""

    def attachment() -> HttpResponse:
        proof = audit_event_proof(event_id)
        response = HttpResponse(
            json.dumps(proof, indent=2, sort_keys=True) + "\n", content_type=PROOF_CONTENT_TYPE
        )
        response["Content-Disposition"] = f'attachment; filename="audit-proof-{event_id}.json"'
        return response

    return answer(request, attachment, back_url=reverse("dashboard:audit"))
