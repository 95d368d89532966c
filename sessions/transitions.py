"""The session lifecycle as an explicit table: action -> (allowed sources, target).

Nothing else decides whether a status may change. Terminal statuses (completed, failed,
cancelled) appear in no source set, so no action, recovery included, can leave them.
"""

from django.db import models

from kernel.transitions import Transition
from sessions.exceptions import ApprovalNotPending, InvalidTransition
from sessions.models import ApprovalStatus, SessionStatus

S = SessionStatus


class SessionAction(models.TextChoices):
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    COMPLETE = "complete"
    FAIL = "fail"
    CANCEL = "cancel"
    INTERRUPT = "interrupt"
    RECOVER = "recover"


TRANSITIONS: dict[SessionAction, Transition[SessionStatus]] = {
    SessionAction.START: Transition(frozenset({S.PENDING}), S.RUNNING),
    SessionAction.PAUSE: Transition(frozenset({S.RUNNING}), S.PAUSED),
    SessionAction.RESUME: Transition(frozenset({S.PAUSED}), S.RUNNING),
    SessionAction.COMPLETE: Transition(frozenset({S.RUNNING}), S.COMPLETED),
    SessionAction.FAIL: Transition(
        frozenset({S.PENDING, S.RUNNING, S.PAUSED, S.INTERRUPTED}), S.FAILED
    ),
    SessionAction.CANCEL: Transition(
        frozenset({S.PENDING, S.RUNNING, S.PAUSED, S.INTERRUPTED}), S.CANCELLED
    ),
    SessionAction.INTERRUPT: Transition(frozenset({S.RUNNING}), S.INTERRUPTED),
    SessionAction.RECOVER: Transition(frozenset({S.INTERRUPTED, S.PAUSED}), S.RUNNING),
}


def transition_target(session_id: str, status: str, action: SessionAction) -> SessionStatus:
    """The status ``action`` leads to from ``status``, or ``InvalidTransition``."""
    transition = TRANSITIONS[action]
    if status not in transition.sources:
        raise InvalidTransition(
            session_id, status=status, action=action.value, allowed=transition.sources
        )
    return transition.target


def allowed_actions(status: str) -> list[SessionAction]:
    """The actions valid from ``status``, in table order (for dashboards and APIs)."""
    return [action for action, t in TRANSITIONS.items() if status in t.sources]


# Approvals: pending until staff decide, the deadline passes, or the session ends.
A = ApprovalStatus


class ApprovalAction(models.TextChoices):
    APPROVE = "approve"  # an operator picks one of the options
    REJECT = "reject"  # an operator turns the request down (no option)
    EXPIRE = "expire"  # the deadline passed: the default decision applies
    CANCEL = "cancel"  # its session ended first


APPROVAL_TRANSITIONS: dict[ApprovalAction, Transition[ApprovalStatus]] = {
    ApprovalAction.APPROVE: Transition(frozenset({A.PENDING}), A.APPROVED),
    ApprovalAction.REJECT: Transition(frozenset({A.PENDING}), A.REJECTED),
    ApprovalAction.EXPIRE: Transition(frozenset({A.PENDING}), A.EXPIRED),
    ApprovalAction.CANCEL: Transition(frozenset({A.PENDING}), A.CANCELLED),
}


def approval_transition_target(
    approval_id: object, status: str, action: ApprovalAction
) -> ApprovalStatus:
    """The status ``action`` leads an approval to from ``status``, or
    ``ApprovalNotPending`` (every outcome is final)."""
    transition = APPROVAL_TRANSITIONS[action]
    if status not in transition.sources:
        raise ApprovalNotPending(str(approval_id), status=status, action=action.value)
    return transition.target
