"""Who may see and do what on the dashboard.

The dashboard defines no permissions of its own: it asks for the model permissions the
admin already checks, so a person can do the same things in both. The two groups made
by ``dashboard/migrations/0001_staff_groups.py`` bundle them: Viewers get every ``view``
permission, Operators also get the ``change`` (controls) and ``add``/``delete`` of
reviews. Superusers have everything. Non-staff users cannot log in at all.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

VIEWERS_GROUP = "Viewers"
OPERATORS_GROUP = "Operators"

VIEW_SESSIONS = "agent_sessions.view_agentsession"
CONTROL_SESSIONS = "agent_sessions.change_agentsession"
VIEW_REVIEWS = "scheduling.view_scheduledreview"
ADD_REVIEWS = "scheduling.add_scheduledreview"
CONTROL_REVIEWS = "scheduling.change_scheduledreview"
DELETE_REVIEWS = "scheduling.delete_scheduledreview"
VIEW_AUDIT = "audit.view_auditeventrecord"

NO_ACCESS = (
    "Your account has no access to this page. Ask an administrator to add you to the "
    "Viewers or Operators group."
)


def staff_view(
    permission: str,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Log-in for anonymous visitors, 403 for anyone who is not staff with ``permission``.

    Every dashboard view carries one; a control refuses a viewer with 403 even though
    its button is not shown to them.
    """

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not (user.is_active and user.is_staff and user.has_perm(permission)):
                raise PermissionDenied(NO_ACCESS)
            return view(request, *args, **kwargs)

        return guarded

    return decorate


def role_of(user: Any) -> str:
    """What the header shows next to the user name."""
    if user.is_superuser:
        return "Administrator"
    if user.has_perm(CONTROL_SESSIONS) or user.has_perm(CONTROL_REVIEWS):
        return "Operator"
    return "Viewer"
