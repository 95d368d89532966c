"""Approvals: an agent asks staff for a decision and its session waits on the answer.

Each move of ``sessions.transitions.APPROVAL_TRANSITIONS`` is one function here, one
transaction with its audit event (type ``session_approval``, resource
``approval:<id>``, the session's id). Lock order (``kernel.locking``): the session row
first, then the approval. A request or a decision takes the session ``FOR KEY SHARE``:
it waits for a lifecycle transition of the session (``FOR UPDATE``) and makes one wait,
so an approval is never opened or decided on a session that is ending, while heartbeats
(``FOR NO KEY UPDATE``) and decisions of other approvals pass. Ending the session
cancels what is pending inside the transition's transaction
(``approvals_cancel_for_session``, called by ``apply_transition``).

Approval events carry no session ``version``: a request changes no session state, and
the session's trail stays complete as versions 1..version.
"""

import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditEventType
from audit.services import SYSTEM_ACTOR, audit_event_record
from kernel.locking import LockRank, rows_locked
from sessions.approval_wakeups import ApprovalWaiter, approval_changed_on_commit
from sessions.exceptions import (
    APPROVAL_DECISION_NOT_AN_OPTION,
    ApprovalNotFound,
    InvalidApproval,
    SessionNotFound,
    SessionNotRunning,
)
from sessions.models import ApprovalStatus, SessionApproval, SessionStatus
from sessions.transitions import ApprovalAction, approval_transition_target

OPTION_MAX_LENGTH = 200
OPTIONS_MAX = 20
QUESTION_MAX_LENGTH = 4000
COMMENT_MAX_LENGTH = 4000
_SUMMARY_LENGTH = 200


def approval_resource(approval_id: object) -> str:
    return f"approval:{approval_id}"


def _lock_session_shared(session_id: str) -> str:
    """``FOR KEY SHARE`` on the session row (Django's ORM has no such lock); its status."""
    rows_locked(LockRank.SESSION, [session_id])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status FROM agent_session WHERE session_id = %s FOR KEY SHARE", [session_id]
        )
        row = cursor.fetchone()
    if row is None:
        raise SessionNotFound(session_id)
    return str(row[0])


def _lock_approval(approval_id: uuid.UUID | str) -> SessionApproval:
    """The approval, locked after its session (call inside ``transaction.atomic``)."""
    session_id = (
        SessionApproval.objects.filter(pk=approval_id).values_list("session_id", flat=True).first()
    )
    if session_id is None:
        raise ApprovalNotFound(str(approval_id))
    _lock_session_shared(session_id)
    rows_locked(LockRank.APPROVAL, [str(approval_id)])
    return SessionApproval.objects.select_for_update().get(pk=approval_id)


def _validate_request(
    question: str,
    options: list[str],
    deadline: datetime | None,
    default_decision: str | None,
    now: datetime,
) -> tuple[str, list[str]]:
    question = (question or "").strip()
    if not question or len(question) > QUESTION_MAX_LENGTH:
        raise InvalidApproval(
            f"question must be 1-{QUESTION_MAX_LENGTH} characters", field="question"
        )
    options = [str(option) for option in options or []]
    if not 2 <= len(options) <= OPTIONS_MAX:
        raise InvalidApproval(f"give between 2 and {OPTIONS_MAX} options", field="options")
    if any(not option.strip() or len(option) > OPTION_MAX_LENGTH for option in options):
        raise InvalidApproval(
            f"each option must be 1-{OPTION_MAX_LENGTH} characters", field="options"
        )
    if len(set(options)) != len(options):
        raise InvalidApproval("options must be unique", field="options")
    if deadline is not None:
        if default_decision is None:
            raise InvalidApproval(
                "a deadline needs a default_decision, applied when it passes",
                field="default_decision",
            )
        if deadline <= now:
            raise InvalidApproval("the deadline must be in the future", field="deadline")
    if default_decision is not None and default_decision not in options:
        raise InvalidApproval(
            APPROVAL_DECISION_NOT_AN_OPTION.format(
                decision=default_decision, options=", ".join(options)
            ),
            field="default_decision",
        )
    return question, options


def approval_request(
    session_id: str,
    *,
    question: str,
    options: list[str],
    payload: dict[str, Any] | None = None,
    deadline: datetime | None = None,
    default_decision: str | None = None,
    actor: str = SYSTEM_ACTOR,
) -> SessionApproval:
    """Open an approval on a running session. The session stays running; while the
    approval is open its heartbeat timeout does not interrupt it."""
    now = timezone.now()
    question, options = _validate_request(question, options, deadline, default_decision, now)
    with transaction.atomic():
        status = _lock_session_shared(session_id)
        if status != SessionStatus.RUNNING:
            raise SessionNotRunning(session_id, status=status, operation="request_approval")
        approval = SessionApproval.objects.create(
            session_id=session_id,
            question=question,
            options=options,
            payload=payload if payload is not None else {},
            requested_by=actor,
            requested_at=now,
            deadline=deadline,
            default_decision=default_decision,
        )
        rows_locked(LockRank.APPROVAL, [str(approval.pk)], created=True)
        audit_event_record(
            event_type=AuditEventType.SESSION_APPROVAL,
            action="request_approval",
            actor=actor,
            resource=approval_resource(approval.pk),
            session_id=session_id,
            metadata={
                "approval_id": str(approval.pk),
                "to": ApprovalStatus.PENDING,
                "question": question[:_SUMMARY_LENGTH],
                "options": options,
                "deadline": deadline.isoformat() if deadline else None,
                "default_decision": default_decision,
            },
            timestamp=now,
        )
    return approval


def _apply(
    approval: SessionApproval,
    action: ApprovalAction,
    *,
    actor: str,
    decision: str | None,
    comment: str,
    metadata: dict[str, Any] | None = None,
) -> SessionApproval:
    """Move a locked approval by ``action`` and record its audit event."""
    previous = approval.status
    target = approval_transition_target(approval.pk, previous, action)
    now = timezone.now()
    approval.status = target
    approval.decision = decision
    approval.comment = comment
    approval.decided_by = actor
    approval.decided_at = now
    approval.save(update_fields=["status", "decision", "comment", "decided_by", "decided_at"])
    audit_event_record(
        event_type=AuditEventType.SESSION_APPROVAL,
        action=f"{action.value}_approval",
        actor=actor,
        resource=approval_resource(approval.pk),
        session_id=approval.session_id,
        metadata={
            "approval_id": str(approval.pk),
            "from": previous,
            "to": target,
            "decision": decision,
            **({"comment": comment[:1000]} if comment else {}),
            **(metadata or {}),
        },
        timestamp=now,
    )
    approval_changed_on_commit(approval.pk)
    return approval


def _clean_comment(comment: str) -> str:
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX_LENGTH:
        raise InvalidApproval(
            f"the comment may hold at most {COMMENT_MAX_LENGTH} characters", field="comment"
        )
    return comment


def approval_approve(
    approval_id: uuid.UUID | str, *, decision: str, comment: str = "", actor: str
) -> SessionApproval:
    """Staff answer with ``decision``, one of the options."""
    comment = _clean_comment(comment)
    with transaction.atomic():
        approval = _lock_approval(approval_id)
        approval_transition_target(approval.pk, approval.status, ApprovalAction.APPROVE)
        if decision not in approval.options:
            raise InvalidApproval(
                APPROVAL_DECISION_NOT_AN_OPTION.format(
                    decision=decision, options=", ".join(approval.options)
                ),
                field="decision",
            )
        return _apply(
            approval, ApprovalAction.APPROVE, actor=actor, decision=decision, comment=comment
        )


def approval_reject(
    approval_id: uuid.UUID | str, *, comment: str = "", actor: str
) -> SessionApproval:
    """Staff turn the request down: no option applies, the agent must not go ahead."""
    comment = _clean_comment(comment)
    with transaction.atomic():
        approval = _lock_approval(approval_id)
        return _apply(approval, ApprovalAction.REJECT, actor=actor, decision=None, comment=comment)


def approval_expire(
    approval_id: uuid.UUID | str, *, actor: str = SYSTEM_ACTOR
) -> SessionApproval | None:
    """Past its deadline, a pending approval takes its default decision. Returns None
    (and changes nothing) if, under the lock, it is no longer pending or not due."""
    with transaction.atomic():
        approval = _lock_approval(approval_id)
        if (
            approval.status != ApprovalStatus.PENDING
            or approval.deadline is None
            or approval.deadline > timezone.now()
        ):
            return None
        return _apply(
            approval,
            ApprovalAction.EXPIRE,
            actor=actor,
            decision=approval.default_decision,
            comment="",
            metadata={"deadline": approval.deadline.isoformat()},
        )


def approvals_expire_due(*, actor: str = SYSTEM_ACTOR) -> list[str]:
    """Expire every pending approval past its deadline, one transaction each."""
    due = list(
        SessionApproval.objects.filter(status=ApprovalStatus.PENDING, deadline__lte=timezone.now())
        .order_by("deadline")
        .values_list("pk", flat=True)
    )
    return [str(pk) for pk in due if approval_expire(pk, actor=actor) is not None]


def approvals_cancel_for_session(session_id: str, *, actor: str, reason: str) -> int:
    """Cancel the session's pending approvals. Called inside the transaction that ends
    the session, which holds its row lock (so no approval opens meanwhile)."""
    pending = list(
        SessionApproval.objects.filter(session_id=session_id, status=ApprovalStatus.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not pending:
        return 0
    rows_locked(LockRank.APPROVAL, [str(pk) for pk in pending])
    approvals = SessionApproval.objects.select_for_update().filter(pk__in=pending).order_by("pk")
    cancelled = 0
    for approval in approvals:
        if approval.status != ApprovalStatus.PENDING:
            continue
        _apply(
            approval,
            ApprovalAction.CANCEL,
            actor=actor,
            decision=None,
            comment="",
            metadata={"reason": reason},
        )
        cancelled += 1
    return cancelled


def approval_mark_delivered(approval_id: uuid.UUID | str, *, actor: str) -> bool:
    """Record that the agent read the outcome (its heartbeats stop mentioning it). Only
    the first read of an outcome counts; True if this was it."""
    with transaction.atomic():
        now = timezone.now()
        rows_locked(LockRank.APPROVAL, [str(approval_id)])
        updated = SessionApproval.objects.filter(
            pk=approval_id,
            status__in=[
                ApprovalStatus.APPROVED,
                ApprovalStatus.REJECTED,
                ApprovalStatus.EXPIRED,
            ],
            delivered_at__isnull=True,
        ).update(delivered_at=now)
        if not updated:
            return False
        approval = SessionApproval.objects.only("session_id", "status", "decision").get(
            pk=approval_id
        )
        audit_event_record(
            event_type=AuditEventType.SESSION_APPROVAL,
            action="deliver_approval",
            actor=actor,
            resource=approval_resource(approval_id),
            session_id=approval.session_id,
            metadata={
                "approval_id": str(approval_id),
                "status": approval.status,
                "decision": approval.decision,
            },
            timestamp=now,
        )
    return True


def approval_wait(
    approval_id: uuid.UUID | str,
    *,
    wait_seconds: float,
    still_wanted: Callable[[], bool] = lambda: True,
) -> SessionApproval:
    """The approval once it is no longer pending, or as it is after ``wait_seconds``.

    Woken by the approval's channel (``sessions.approval_wakeups``), never by polling
    the database; the database connection is given back while it waits (outside a
    transaction). A pending approval whose deadline passes during the wait is expired
    here, so the agent gets the default decision at the deadline rather than at the
    next run of the periodic expiry.
    """
    ends = time.monotonic() + max(0.0, wait_seconds)
    approval = _approval_now(approval_id)
    if approval.status != ApprovalStatus.PENDING or wait_seconds <= 0:
        return approval  # a plain read subscribes to nothing
    with ApprovalWaiter(approval_id) as waiter:
        while True:
            approval = _approval_now(approval_id)  # again: subscribed now
            left = ends - time.monotonic()
            if approval.status != ApprovalStatus.PENDING or left <= 0 or not still_wanted():
                return approval
            if approval.deadline is not None:
                until_deadline = (approval.deadline - timezone.now()).total_seconds()
                left = min(left, max(0.0, until_deadline) + 0.05)
            if not connection.in_atomic_block:
                connection.close()  # a long wait holds Redis, not a PostgreSQL backend
            waiter.wait(left)


def _approval_now(approval_id: uuid.UUID | str) -> SessionApproval:
    """The approval, expired first if its deadline has passed."""
    approval = _approval_or_404(approval_id)
    if (
        approval.status == ApprovalStatus.PENDING
        and approval.deadline is not None
        and approval.deadline <= timezone.now()
    ):
        approval_expire(approval_id)
        approval = _approval_or_404(approval_id)
    return approval


def _approval_or_404(approval_id: uuid.UUID | str) -> SessionApproval:
    approval = SessionApproval.objects.filter(pk=approval_id).first()
    if approval is None:
        raise ApprovalNotFound(str(approval_id))
    return approval
