"""``handler403``: a refused staff request is recorded in the audit trail, then answered
with Django's own 403 page."""

from django.http import HttpRequest, HttpResponse
from django.views import defaults

from agents.services import staff_access_record


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    user = getattr(request, "user", None)
    staff_access_record(
        action="permission_denied",
        username=user.get_username() if user is not None and user.is_authenticated else "",
        remote_addr=request.META.get("REMOTE_ADDR"),
        path=request.path,
        method=request.method or "",
    )
    return defaults.permission_denied(request, exception)
