"""``/api/v1/me``: who the API thinks you are (check a token before a long run)."""

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema

from access.auth import any_access

router = Router(tags=["agents"])


class MeOut(Schema):
    name: str
    actor: str
    scopes: list[str]
    read_only: bool
    own_sessions_only: bool
    queues: list[str]


@router.get("/me", response=MeOut, auth=any_access)
def whoami(request: HttpRequest) -> Any:
    caller = request.auth  # type: ignore[attr-defined]
    return {
        "name": caller.name,
        "actor": caller.actor,
        "scopes": sorted(caller.scopes),
        "read_only": caller.read_only,
        "own_sessions_only": caller.sessions_owner is not None,
        "queues": list(caller.queues),
    }
