"""Running a control: one service call with the staff user as the audit actor, its
outcome shown as a message. The one place where the dashboard maps domain errors (for
controls, and for downloads that may be refused)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from dashboard.access import CONTROL_REVIEWS, CONTROL_SESSIONS, DELETE_REVIEWS
from kernel.errors import Conflict, DomainError, NotFound
from scheduling import services as review_services
from sessions import services as session_services
from sessions.transitions import SessionAction, allowed_actions

T = TypeVar("T")


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
class Control:
    """A button on a detail page: the service it calls, explicitly, and what it says.

    ``run`` calls ``service(subject_id, actor=...)``, adding the free text the
    confirmation asks for under ``text`` (the service's keyword: ``reason``, ``note``)
    when there is one. ``done`` is the outcome message, formatted with ``{name}`` (what
    the page calls the subject)."""

    name: str
    label: str
    explanation: str
    service: Callable[..., object]
    done: str
    permission: str
    text: str | None = None
    danger: bool = False

    def run(self, subject_id: object, *, actor: str, text: str = "") -> object:
        if self.text is None:
            return self.service(subject_id, actor=actor)
        return self.service(subject_id, actor=actor, **{self.text: text})


SESSION_CONTROLS: dict[str, Control] = {
    control.name: control
    for control in (
        Control(
            SessionAction.PAUSE.value,
            "Pause",
            "The agent stops after the batch in flight and keeps its checkpoint; "
            "resume it later to continue where it stopped.",
            session_services.session_pause,
            "Session {name}: paused.",
            CONTROL_SESSIONS,
            text="reason",
        ),
        Control(
            SessionAction.RESUME.value,
            "Resume",
            "The session runs again from where it was paused.",
            session_services.session_resume,
            "Session {name}: resumed.",
            CONTROL_SESSIONS,
        ),
        Control(
            SessionAction.RECOVER.value,
            "Recover",
            "The session's newest checkpoint is restored and the session runs again.",
            session_services.session_recover,
            "Session {name}: recovered from its newest checkpoint.",
            CONTROL_SESSIONS,
        ),
        Control(
            SessionAction.CANCEL.value,
            "Cancel",
            "The session ends for good: it cannot be resumed or recovered afterwards.",
            session_services.session_cancel,
            "Session {name}: cancelled.",
            CONTROL_SESSIONS,
            text="reason",
            danger=True,
        ),
    )
}


def session_controls_for(status: str) -> list[Control]:
    """The controls the lifecycle table allows from ``status``, in table order."""
    return [
        SESSION_CONTROLS[action.value]
        for action in allowed_actions(status)
        if action.value in SESSION_CONTROLS
    ]


REVIEW_CONTROLS: dict[str, Control] = {
    control.name: control
    for control in (
        Control(
            "trigger",
            "Run now",
            "A run starts now, outside the schedule (paused or not); the schedule is unchanged.",
            review_services.review_trigger_on_demand,
            "Run queued for “{name}”: it appears in the run history below.",
            CONTROL_REVIEWS,
        ),
        Control(
            "pause",
            "Pause",
            "No runs are scheduled until it is resumed; runs already started continue.",
            review_services.review_pause,
            "“{name}” is paused.",
            CONTROL_REVIEWS,
            text="note",
        ),
        Control(
            "resume",
            "Resume",
            "Runs are scheduled again; a run missed inside the catch-up window runs at once.",
            review_services.review_resume,
            "“{name}” is resumed.",
            CONTROL_REVIEWS,
        ),
        Control(
            "delete",
            "Delete",
            "The review and its beat entry are deleted; its run history stays.",
            review_services.review_delete,
            "“{name}” is deleted; its run history stays in the audit trail.",
            DELETE_REVIEWS,
            danger=True,
        ),
    )
}


def review_controls_for(user: Any, enabled: bool) -> list[Control]:
    """The controls ``user`` may use on a review that is ``enabled`` (or paused)."""
    allowed = {"pause": enabled, "resume": not enabled}
    return [
        control
        for control in REVIEW_CONTROLS.values()
        if allowed.get(control.name, True) and user.has_perm(control.permission)
    ]
