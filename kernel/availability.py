"""What a request gets while PostgreSQL is unreachable: a fast 503, never a hang or a 500.

Connections fail fast (``connect_timeout``, TCP keepalives) and are health-checked at the
start of each request (``CONN_HEALTH_CHECKS``), so once PostgreSQL is back the next
request reconnects by itself. In between, every page answers 503 with the one error form,
``{"code": "database_unavailable", "detail": ...}`` and ``Retry-After``:

- the API maps the errors in its own handler (``sergas.api``);
- ``DatabaseUnavailableMiddleware`` answers for the other views (admin, ``/healthz``
  reports itself);
- ``server_error`` (``handler500``) answers for what fails outside a view, such as a
  middleware saving the login session, and keeps the ordinary 500 page for real bugs.
"""

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from kernel.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "The database is unavailable; retry in a few seconds."
RETRY_AFTER_SECONDS = 5

# Connection refused or lost, server shutting down or starting, statement or lock timeout.
OUTAGE_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError)


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"

    def __init__(self) -> None:
        super().__init__(DATABASE_UNAVAILABLE, retry_after=RETRY_AFTER_SECONDS)


def log_outage(request: HttpRequest, exc: BaseException) -> None:
    """One line per refused request, not a traceback: the cause is outside the code."""
    logger.warning(
        "%s %s answered 503: database unavailable (%s: %s)",
        request.method,
        request.path,
        type(exc).__name__,
        str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "",
    )


def outage_response(request: HttpRequest, exc: BaseException) -> JsonResponse:
    log_outage(request, exc)
    error = DatabaseUnavailable()
    response = JsonResponse({"code": error.code, "detail": error.detail}, status=503)
    response["Retry-After"] = str(error.retry_after)
    return response


class DatabaseUnavailableMiddleware:
    """Turns a view's lost database into a 503 (placed after the session and auth
    middleware, whose lazy database reads happen inside the view)."""

    def __init__(self, get_response: object) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)  # type: ignore[operator]

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OUTAGE_ERRORS):
            return outage_response(request, exception)
        return None


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: Django calls it inside the ``except`` of the uncaught error."""
    exc = sys.exc_info()[1]
    if isinstance(exc, OUTAGE_ERRORS):
        return outage_response(request, exc)
    return defaults.server_error(request)
