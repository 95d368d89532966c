from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from dashboard.access import role_of


def staff_role(request: HttpRequest) -> dict[str, Any]:
    """``staff_role`` for the header: Administrator, Operator or Viewer (lazily)."""
    return {"staff_role": SimpleLazyObject(lambda: role_of(request.user))}
