"""The staff member behind a request (a dashboard view, an admin action) as the audit
actor of what they change."""

import functools
from collections.abc import Callable

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from access.addresses import client_address
from access.services import staff_actor
from kernel.admin import apply_each


def staff_actor_of(request: HttpRequest, permission: str) -> str:
    """``staff:<username>`` once the user behind ``request`` holds ``permission``;
    otherwise the refusal is recorded with the request's path and client address and
    ``StaffPermissionDenied`` raised (403)."""
    return staff_actor(
        request.user, permission, path=request.path, remote_addr=client_address(request)
    )


def apply_as_staff(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    verb: str,
    action: Callable[..., object],
    *,
    permission: str,
    noun: str,
) -> None:
    """An admin action through a service, as the staff member holding ``permission``
    (``kernel.admin.apply_each``); the success message is "<verb> <n> <noun>."."""
    actor = functools.partial(staff_actor_of, request, permission)
    apply_each(modeladmin, request, queryset, action, actor=actor, done=f"{verb} {{}} {noun}.")
