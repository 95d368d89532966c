"""Staff logins in the audit trail: successes, failures and lockouts (connected in
``AgentsConfig.ready``). API refusals are recorded by ``agents.auth``."""

from typing import Any

from django.http import HttpRequest

from agents.services import staff_access_record


def _address(request: HttpRequest | None) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


def login_succeeded(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    staff_access_record(
        action="login",
        username=user.get_username(),
        remote_addr=_address(request),
        path=request.path if request is not None else "",
    )


def login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Django has already masked the password in ``credentials``; only the name is kept.
    staff_access_record(
        action="login_failed",
        username=str(credentials.get("username", "")),
        remote_addr=_address(request),
        path=request.path if request is not None else "",
    )


def locked_out(
    sender: Any, request: HttpRequest | None, username: str, ip_address: str, **kwargs: Any
) -> None:
    staff_access_record(
        action="login_locked_out",
        username=username or "",
        remote_addr=ip_address,
        path=request.path if request is not None else "",
    )
