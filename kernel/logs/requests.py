"""The request id: taken from ``X-Request-ID`` when it is sane, made otherwise, bound
to the log context for the whole request and returned on the response."""

import re
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core.signals import request_finished
from django.dispatch import receiver

from kernel.logs import context

if TYPE_CHECKING:  # imported by sergas.celery while the settings load
    from django.http import HttpRequest, HttpResponse

REQUEST_ID_HEADER = "X-Request-ID"
# What proxies and clients send (UUIDs, nginx's 32 hex digits, Heroku's up to 200
# base64-ish characters): bounded, and nothing that could break a log line, a header or
# the JSON of a task message.
_SANE = re.compile(r"[A-Za-z0-9+/=._:-]{8,200}")
# URL parameters that name what a request is about (the API's and the dashboard's).
_ID_PARAMETERS = ("session_id", "review_id", "execution_id", "batch_id")
_STAFF_NAMESPACES = frozenset({"admin", "dashboard"})


def sane_request_id(value: str | None) -> str | None:
    return value if value is not None and _SANE.fullmatch(value) else None


def new_request_id() -> str:
    """32 hex digits, random (as a UUID4's 122 bits, at a third of its cost)."""
    return secrets.token_hex(16)


class RequestContextMiddleware:
    """First in ``MIDDLEWARE``: every line logged for a request carries its id.

    The context is replaced at the start of each request and cleared when the response
    is closed (``request_finished``), after the server's access line, so Django's
    ``Not Found`` warnings and gunicorn's access log still carry the id."""

    def __init__(self, get_response: Callable[["HttpRequest"], "HttpResponse"]) -> None:
        self.get_response = get_response

    def __call__(self, request: "HttpRequest") -> "HttpResponse":
        request_id = sane_request_id(request.META.get("HTTP_X_REQUEST_ID")) or new_request_id()
        context.replace({"request_id": request_id})
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response

    def process_view(
        self,
        request: "HttpRequest",
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> None:
        ids = {name: view_kwargs[name] for name in _ID_PARAMETERS if name in view_kwargs}
        match = request.resolver_match
        # Staff pages load the user anyway (one lookup, cached on the request); a login
        # page has no actor yet and must stay cheap under a flood of attempts.
        if match is not None and match.app_name in _STAFF_NAMESPACES and match.url_name != "login":
            user = request.user
            if user.is_authenticated:
                ids["actor"] = f"staff:{user.get_username()}"
        context.bind(**ids)


@receiver(request_finished, dispatch_uid="kernel.logs.requests.clear_context")
def _clear_context(**kwargs: Any) -> None:
    context.clear()
