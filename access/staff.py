"""The staff member behind a request (a dashboard view, an admin action) as the audit
actor of what they change."""

from django.http import HttpRequest

from access.addresses import client_address
from access.services import staff_actor


def staff_actor_of(request: HttpRequest, permission: str) -> str:
    """``staff:<username>`` once the user behind ``request`` holds ``permission``;
    otherwise the refusal is recorded with the request's path and client address and
    ``StaffPermissionDenied`` raised (403)."""
    return staff_actor(
        request.user, permission, path=request.path, remote_addr=client_address(request)
    )
