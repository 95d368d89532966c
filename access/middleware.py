"""Failed staff logins, throttled per client address before the login view runs."""

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from access import conf, failures
from access.addresses import client_address
from access.exceptions import AuthenticationThrottled
from access.views import authentication_throttled


class StaffLoginThrottleMiddleware:
    """A POST to a staff login view (``STAFF_LOGIN_VIEWS``) from an address that failed
    ``AUTH_FAILURE_LIMIT`` logins in this window is answered 429 at once: no session,
    no user, no axes lookup, one Redis call. django-axes still locks out a username at one
    address after ``LOGIN_FAILURE_LIMIT`` failures; this bounds an address trying many
    usernames. The failures themselves are counted by ``access.receivers.login_failed``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        match = request.resolver_match
        if request.method != "POST" or match is None:
            return None
        if match.view_name not in conf.staff_login_views():
            return None
        username = str(request.POST.get("username", ""))[:150]
        try:
            failures.throttle(
                failures.FailureKind.STAFF_LOGIN, client_address(request), tried=username
            )
        except AuthenticationThrottled as exc:
            return authentication_throttled(request, exc)
        return None
