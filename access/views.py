"""Staff-facing answers of API access: ``handler403`` (a refused staff request is
recorded in the audit trail, then answered with Django's own 403 page) and the 429 of a
throttled staff login."""

from django.http import HttpRequest, HttpResponse
from django.views import defaults

from access.addresses import client_address
from access.exceptions import AuthenticationThrottled
from access.services import staff_access_record


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    user = getattr(request, "user", None)
    staff_access_record(
        action="permission_denied",
        username=user.get_username() if user is not None and user.is_authenticated else "",
        remote_addr=client_address(request),
        path=request.path,
        method=request.method or "",
    )
    return defaults.permission_denied(request, exception)


def authentication_throttled(request: HttpRequest, exc: AuthenticationThrottled) -> HttpResponse:
    """Too many failed logins from the address: 429 with ``Retry-After``, and nothing read
    from the database (the middleware answers before the login view)."""
    response = HttpResponse(exc.detail, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(exc.retry_after)
    return response
