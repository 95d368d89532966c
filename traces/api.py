"""``POST /api/v1/otlp/v1/traces``: OTLP/HTTP trace export (docs/api.md, "OpenTelemetry
traces"). Point an exporter at ``<server>/api/v1/otlp`` (the SDK appends ``/v1/traces``).

The operation speaks OTLP, not the API's JSON: it reads its own body (protobuf or JSON,
gzip or not; the API's guard checks only its size) and every answer, errors included, is
in the request's encoding (a ``google.rpc.Status`` for errors), yet authentication
(a token with the write scope), throttling and the error mapping are the API's.
"""

import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router

from access.auth import caller, write_access
from access.inputs import answers_errors_with, reads_raw_body
from traces import otlp
from traces.services import spans_ingest

router = Router(tags=["traces"])


def _speaks_otlp(view: Callable[..., Any]) -> Callable[..., Any]:
    """Before the guard and authentication: errors take OTLP's form, and the body is
    left to the operation."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        encoding = otlp.answer_encoding(request.content_type or "")
        answers_errors_with(
            request, lambda status, _code, detail: otlp.error_answer(encoding, status, detail)
        )
        reads_raw_body(request)
        return view(request, *args, **kwargs)

    return wrapped


router.add_decorator(_speaks_otlp, mode="view")


@router.post("/v1/traces", auth=write_access, include_in_schema=False)
def export_traces(request: HttpRequest) -> HttpResponse:
    """Store the spans; refused ones are counted in ``partial_success`` with the reasons."""
    export, encoding = otlp.request_decode(
        request.body,
        content_type=request.META.get("CONTENT_TYPE", ""),
        content_encoding=request.headers.get("Content-Encoding", ""),
    )
    principal = caller(request)
    result = spans_ingest(
        export,
        agent_name=principal.name,
        actor=principal.actor,
        sessions_created_by=principal.sessions_owner,
    )
    return otlp.success_answer(encoding, rejected=result.rejected, message=result.message)
