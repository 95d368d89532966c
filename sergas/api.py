"""The JSON API: one ``NinjaAPI``, the apps' routers under ``/api/v1``, one error mapping.

Every error answers ``{"code": ..., "detail": ..., <context>}``: domain errors map by
their base class (``kernel.errors``), ninja's own validation, parsing, auth and throttle
errors are reshaped to the same form. Anything else is a bug: a logged 500.
"""

from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Router
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from access import conf as agents_conf
from access.auth import ApiAuth, admin_access, read_access, work_access, write_access
from access.exceptions import CallerThrottled
from access.inputs import ERROR_FORM, GuardedParser, request_guard
from access.throttling import CallerRateThrottle
from kernel.availability import DatabaseUnavailable, log_outage
from kernel.encoding import PreciseJSONRenderer
from kernel.errors import (
    Conflict,
    DomainError,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from sergas.openapi import document_errors

# (prefix, router, auth): each app owns its router; the scope a router's operations need
# is attached here, where it is mounted, so no app imports the access layer for it (an
# operation may still ask for more, e.g. ``write_access`` on a session's writes).
V1_ROUTERS: list[tuple[str, str, ApiAuth]] = [
    ("", "access.api.router", read_access),
    ("/sessions", "sessions.api.router", read_access),
    ("/events", "sessions.api.events_router", read_access),
    ("/approvals", "sessions.api.approvals_router", read_access),
    ("/schedules", "scheduling.api.router", read_access),
    ("/accounts", "scheduling.api.accounts_router", read_access),
    ("/work", "scheduling.work_api.router", work_access),
    ("/audit", "audit.api.router", admin_access),
    # OTLP/HTTP trace export: writes spans, so the write scope for the whole router.
    ("/otlp", "traces.api.router", write_access),
]

# The base classes of kernel.errors and their statuses; any other DomainError is a 400.
STATUS_OF: list[tuple[type[DomainError], int]] = [
    (NotAuthenticated, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (PayloadTooLarge, 413),
    (UnsupportedMediaType, 415),
    (ValidationFailed, 422),
    (RateLimited, 429),
    (ServiceUnavailable, 503),
]
_CODE_OF_STATUS = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    429: "throttled",
}


class SergasAPI(NinjaAPI):
    def get_openapi_schema(self, **kwargs: Any) -> Any:
        return document_errors(super().get_openapi_schema(**kwargs))


api = SergasAPI(
    title="Sergas control plane",
    version="1",
    description=(
        "Agents create and drive sessions, checkpoint and recover, and report tool and "
        "task events. Authenticate with `Authorization: Bearer <token>` "
        "(`manage.py create_agent_token`). Errors are `{code, detail}`: see docs/api.md."
    ),
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
    auth=read_access,
    throttle=[CallerRateThrottle()],
    renderer=PreciseJSONRenderer(),
    parser=GuardedParser(),
)

v1 = Router()
for prefix, router, auth in V1_ROUTERS:
    v1.add_router(prefix, router, auth=auth)
api.add_router("/v1", v1)


def error_response(
    request: HttpRequest, http_status: int, code: str, detail: str, /, **context: Any
) -> HttpResponse:
    """The one error shape: ``{"code", "detail"}`` plus the error's context (``field``,
    ``status``, ``limit``, ...)."""
    render = getattr(request, ERROR_FORM, None)
    if render is not None:
        response = render(http_status, code, detail)
    else:
        body = {"code": code, "detail": detail}
        body.update({key: value for key, value in context.items() if key not in body})
        response = api.create_response(request, body, status=http_status)
    if http_status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="sergas"'
    return response


@api.exception_handler(DomainError)
def _domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    http_status = next((status for base, status in STATUS_OF if isinstance(exc, base)), 400)
    response = error_response(request, http_status, exc.code, exc.detail, **exc.context)
    if isinstance(exc, RateLimited | ServiceUnavailable):
        response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def _database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    """PostgreSQL is unreachable: a fast 503 the client may retry (kernel.availability)."""
    log_outage(request, exc)
    return _domain_error(request, DatabaseUnavailable())


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [
        {"field": _field(error["loc"]), "message": error["msg"], "type": error["type"]}
        for error in exc.errors
    ]
    first = errors[0]
    detail = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    return error_response(
        request, 422, "validation_error", detail, field=first["field"], errors=errors
    )


def _field(loc: tuple | list) -> str:
    """``("body", "payload", "events", 3, "timestamp")`` -> ``"events.3.timestamp"``:
    the field as the client wrote it, without ninja's source and parameter names."""
    parts = [str(part) for part in loc]
    if parts[:1] == ["body"]:
        # Drop the parameter name ninja wraps a body schema in; a missing body is "body".
        return ".".join(parts[2:]) or "body"
    if parts[:1] in (["query"], ["header"], ["path"], ["cookie"]):
        parts = parts[1:]
    return ".".join(parts)


@api.exception_handler(Throttled)
def _throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
    """ninja's throttle check raises its own error; answer with ours."""
    return _domain_error(request, CallerThrottled(agents_conf.throttle_rate(), int(exc.wait or 1)))


@api.exception_handler(AuthenticationError)
def _not_authenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(request, 401, "not_authenticated", str(exc))


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    code = _CODE_OF_STATUS.get(exc.status_code, "error")
    return error_response(request, exc.status_code, code, str(exc))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(request, 404, "not_found", "Not found.")


api.add_decorator(request_guard(api.on_exception), mode="view")
