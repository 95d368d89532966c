"""Staff logins in the audit trail: successes and failures (connected in
``AccessConfig.ready``). API refusals are recorded by ``access.auth``.

Failures are counted per client address like wrong bearer tokens
(``access.services.staff_login_failure_record``): the first of a window is an event,
the rest go into the window's summary. django-axes's receiver runs before these (axes is
installed first), so ``request.axes_locked_out`` already says whether this attempt was
refused by a lockout, or caused one.
"""

from typing import Any

from django.http import HttpRequest

from access.addresses import client_address
from access.services import staff_access_record, staff_login_failure_record


def _address(request: HttpRequest | None) -> str | None:
    return client_address(request) if request is not None else None


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
    staff_login_failure_record(
        username=str(credentials.get("username", "")),
        locked_out=bool(getattr(request, "axes_locked_out", False)),
        remote_addr=_address(request),
        path=request.path if request is not None else "",
    )
