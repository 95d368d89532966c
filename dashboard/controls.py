"""Running a control: one service call with the staff user as the audit actor, its
outcome shown as a message. The one place where the dashboard maps domain errors (for
controls, and for downloads that may be refused)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from access.services import staff_actor as agents_staff_actor
from kernel.errors import Conflict, DomainError, NotFound
from sessions import services as session_services
from sessions.transitions import SessionAction, allowed_actions

T = TypeVar("T")


def staff_actor(request: HttpRequest, permission: str) -> str:
    """The audit actor of the staff member behind ``request``, once they hold
    ``permission`` (``access.services.staff_actor`` records a refusal and raises 403)."""
    return agents_staff_actor(
        request.user, permission, path=request.path, remote_addr=request.META.get("REMOTE_ADDR")
    )


def perform(request: HttpRequest, call: Callable[[], T], *, success: str) -> tuple[bool, T | None]:
    """Run ``call``; returns (done, its result). A missing object is a 404; any other
    domain error (an invalid transition, a validation failure) becomes an error message
    naming the reason, and the page shows it."""
    try:
        result = call()
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    except DomainError as exc:
        messages.error(request, exc.detail)
        return False, None
    messages.success(request, success)
    return True, result


def answer(
    request: HttpRequest, call: Callable[[], HttpResponse], *, back_url: str
) -> HttpResponse:
    """``call()``'s response (a download); a missing object is a 404, any other domain
    error a page naming the reason (409 for a conflict: not possible yet, 400 otherwise),
    with a link back to ``back_url``."""
    try:
        return call()
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    except DomainError as exc:
        return render(
            request,
            "dashboard/refused.html",
            {"exception": exc.detail, "back_url": back_url},
            status=409 if isinstance(exc, Conflict) else 400,
        )


@dataclass(frozen=True)
class SessionControl:
    action: SessionAction
    label: str
    done: str  # the outcome message: "paused"
    explanation: str
    takes_reason: bool = False
    danger: bool = False

    def run(self, session_id: str, *, actor: str, reason: str) -> object:
        service = getattr(session_services, f"session_{self.action.value}")
        if self.takes_reason:
            return service(session_id, actor=actor, reason=reason)
        return service(session_id, actor=actor)


SESSION_CONTROLS: dict[str, SessionControl] = {
    control.action.value: control
    for control in (
        SessionControl(
            SessionAction.PAUSE,
            "Pause",
            "paused",
            "The agent stops after the batch in flight and keeps its checkpoint; "
            "resume it later to continue where it stopped.",
            takes_reason=True,
        ),
        SessionControl(
            SessionAction.RESUME,
            "Resume",
            "resumed",
            "The session runs again from where it was paused.",
        ),
        SessionControl(
            SessionAction.RECOVER,
            "Recover",
            "recovered from its newest checkpoint",
            "The session's newest checkpoint is restored and the session runs again.",
        ),
        SessionControl(
            SessionAction.CANCEL,
            "Cancel",
            "cancelled",
            "The session ends for good: it cannot be resumed or recovered afterwards.",
            takes_reason=True,
            danger=True,
        ),
    )
}


def session_controls_for(status: str) -> list[SessionControl]:
    """The controls the lifecycle table allows from ``status``, in table order."""
    return [
        SESSION_CONTROLS[action.value]
        for action in allowed_actions(status)
        if action.value in SESSION_CONTROLS
    ]


@dataclass(frozen=True)
class ReviewControl:
    name: str
    label: str
    explanation: str
    danger: bool = False
    takes_note: bool = False

    def allowed(self, enabled: bool) -> bool:
        return {"pause": enabled, "resume": not enabled}.get(self.name, True)


REVIEW_CONTROLS: dict[str, ReviewControl] = {
    control.name: control
    for control in (
        ReviewControl(
            "trigger",
            "Run now",
            "A run starts now, outside the schedule (paused or not); the schedule is unchanged.",
        ),
        ReviewControl(
            "pause",
            "Pause",
            "No runs are scheduled until it is resumed; runs already started continue.",
            takes_note=True,
        ),
        ReviewControl(
            "resume",
            "Resume",
            "Runs are scheduled again; a run missed inside the catch-up window runs at once.",
        ),
        ReviewControl(
            "delete",
            "Delete",
            "The review and its beat entry are deleted; its run history stays.",
            danger=True,
        ),
    )
}
