"""Approvals: the table of moves, the services with their audit events, expiry with the
default decision, the cascade from an ending session, and the stale check's patience."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent, AuditEventType
from sessions import selectors, services
from sessions.exceptions import (
    ApprovalNotFound,
    ApprovalNotPending,
    InvalidApproval,
    SessionNotRunning,
)
from sessions.models import AgentSession, ApprovalStatus, SessionApproval, SessionStatus
from sessions.tasks import expire_approvals
from sessions.transitions import (
    APPROVAL_TRANSITIONS,
    approval_transition_target,
)
from tests.factories import make_session

pytestmark = pytest.mark.django_db

OPTIONS = ["send", "hold"]


def _ask(session: AgentSession, **kwargs) -> SessionApproval:
    kwargs = {"question": "Send this email to ACME?", "options": OPTIONS, **kwargs}
    return services.approval_request(session.session_id, actor="agent:test", **kwargs)


def _events(approval: SessionApproval) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(resource=f"approval:{approval.pk}").order_by("timestamp"))


def test_every_move_leaves_pending_and_nothing_leaves_an_outcome():
    for action, transition in APPROVAL_TRANSITIONS.items():
        assert transition.sources == {ApprovalStatus.PENDING}
        assert approval_transition_target("a", "pending", action) == transition.target
        for status in ApprovalStatus.values:
            if status != "pending":
                with pytest.raises(ApprovalNotPending):
                    approval_transition_target("a", status, action)


def test_a_request_opens_a_pending_approval_with_its_audit_event_and_leaves_the_session_running():
    session = make_session("running")
    version = session.version
    approval = _ask(session, payload={"draft": "Dear ACME"})

    assert approval.status == ApprovalStatus.PENDING
    assert approval.payload == {"draft": "Dear ACME"}
    assert approval.requested_by == "agent:test"
    session.refresh_from_db()
    assert session.status == SessionStatus.RUNNING
    assert session.version == version  # no session state changed
    [event] = _events(approval)
    assert event.event_type == AuditEventType.SESSION_APPROVAL
    assert event.action == "request_approval"
    assert event.session_id == session.session_id
    assert event.metadata["options"] == OPTIONS
    assert "version" not in event.metadata


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"options": ["only"]}, "options"),
        ({"options": ["same", "same"]}, "options"),
        ({"options": ["ok", " "]}, "options"),
        ({"question": "  "}, "question"),
        ({"deadline": "soon"}, "default_decision"),
        ({"default_decision": "maybe"}, "default_decision"),
    ],
)
def test_a_request_that_does_not_fit_is_refused_naming_the_field(kwargs, field):
    session = make_session("running")
    if kwargs.get("deadline") == "soon":
        kwargs["deadline"] = timezone.now() + timedelta(minutes=5)
    with pytest.raises(InvalidApproval) as refused:
        _ask(session, **kwargs)
    assert refused.value.field == field
    assert not SessionApproval.objects.exists()


def test_a_deadline_in_the_past_is_refused():
    session = make_session("running")
    with pytest.raises(InvalidApproval) as refused:
        _ask(session, deadline=timezone.now() - timedelta(seconds=1), default_decision="hold")
    assert refused.value.field == "deadline"


@pytest.mark.parametrize("status", ["pending", "paused", "completed", "cancelled"])
def test_only_a_running_session_may_ask(status):
    session = make_session(status)
    with pytest.raises(SessionNotRunning):
        _ask(session)


def test_an_operator_approves_with_one_of_the_options_and_a_comment():
    approval = _ask(make_session("running"))
    decided = services.approval_approve(
        approval.pk, decision="hold", comment="Wait for the renewal", actor="staff:olga"
    )
    assert decided.status == ApprovalStatus.APPROVED
    assert decided.decision == "hold"
    assert decided.comment == "Wait for the renewal"
    assert decided.decided_by == "staff:olga"
    assert decided.decided_at is not None
    event = _events(approval)[-1]
    assert event.action == "approve_approval"
    assert event.actor == "staff:olga"
    assert event.metadata | {"decision": "hold", "from": "pending", "to": "approved"} == (
        event.metadata
    )


def test_a_decision_that_is_not_an_option_is_refused():
    approval = _ask(make_session("running"))
    with pytest.raises(InvalidApproval) as refused:
        services.approval_approve(approval.pk, decision="maybe", actor="staff:olga")
    assert refused.value.field == "decision"
    assert SessionApproval.objects.get(pk=approval.pk).status == ApprovalStatus.PENDING


def test_a_rejection_carries_no_decision_and_an_outcome_is_final():
    approval = _ask(make_session("running"))
    rejected = services.approval_reject(approval.pk, comment="Not this quarter", actor="staff:o")
    assert (rejected.status, rejected.decision) == (ApprovalStatus.REJECTED, None)
    with pytest.raises(ApprovalNotPending) as refused:
        services.approval_approve(approval.pk, decision="send", actor="staff:p")
    assert refused.value.status == "rejected"
    assert [e.action for e in _events(approval)] == ["request_approval", "reject_approval"]


def test_an_unknown_approval_is_not_found():
    with pytest.raises(ApprovalNotFound):
        services.approval_reject("00000000-0000-0000-0000-000000000000", actor="staff:o")


def test_an_overdue_approval_expires_with_its_default_decision_audited():
    session = make_session("running")
    overdue = _ask(session, deadline=timezone.now() + timedelta(minutes=1), default_decision="hold")
    later = _ask(session, deadline=timezone.now() + timedelta(hours=1), default_decision="send")
    SessionApproval.objects.filter(pk=overdue.pk).update(
        deadline=timezone.now() - timedelta(seconds=1)
    )

    assert expire_approvals() == [str(overdue.pk)]

    expired = SessionApproval.objects.get(pk=overdue.pk)
    assert (expired.status, expired.decision) == (ApprovalStatus.EXPIRED, "hold")
    assert SessionApproval.objects.get(pk=later.pk).status == ApprovalStatus.PENDING
    event = _events(overdue)[-1]
    assert (event.action, event.actor) == ("expire_approval", "task:expire_approvals")
    assert event.metadata["decision"] == "hold"
    assert expire_approvals() == []  # once


def test_a_cancelled_session_cancels_its_open_approvals_in_the_same_transaction():
    session = make_session("running")
    open_one = _ask(session)
    decided = _ask(session)
    services.approval_approve(decided.pk, decision="send", actor="staff:o")

    services.session_cancel(session.session_id, actor="staff:o", reason="wrong owner")

    assert SessionApproval.objects.get(pk=open_one.pk).status == ApprovalStatus.CANCELLED
    assert SessionApproval.objects.get(pk=decided.pk).status == ApprovalStatus.APPROVED
    event = _events(open_one)[-1]
    assert (event.action, event.actor) == ("cancel_approval", "staff:o")
    assert event.metadata["reason"] == "session cancelled"


@pytest.mark.parametrize("end", ["complete", "fail"])
def test_a_session_that_ends_otherwise_cancels_its_open_approvals_too(end):
    session = make_session("running")
    approval = _ask(session)
    if end == "complete":
        services.session_complete(session.session_id)
    else:
        services.session_fail(session.session_id, error="boom")
    assert SessionApproval.objects.get(pk=approval.pk).status == ApprovalStatus.CANCELLED


def _silence(session: AgentSession, seconds: int) -> None:
    AgentSession.objects.filter(pk=session.pk).update(
        last_heartbeat_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_the_heartbeat_timeout_spares_a_session_waiting_on_an_open_approval():
    waiting = make_session("running")
    silent = make_session("running")
    approval = _ask(waiting)
    _silence(waiting, 3600)
    _silence(silent, 3600)

    assert services.sessions_interrupt_stale(timeout_seconds=300) == [silent.session_id]
    assert AgentSession.objects.get(pk=waiting.pk).status == SessionStatus.RUNNING

    # Decided: the agent gets a whole timeout to come back, then it is stale again.
    services.approval_approve(approval.pk, decision="send", actor="staff:o")
    assert services.sessions_interrupt_stale(timeout_seconds=300) == []
    SessionApproval.objects.filter(pk=approval.pk).update(
        decided_at=timezone.now() - timedelta(seconds=600)
    )
    assert services.sessions_interrupt_stale(timeout_seconds=300) == [waiting.session_id]


def test_the_heartbeat_list_tells_open_approvals_and_unread_outcomes_until_read():
    session = make_session("running")
    first = _ask(session)
    second = _ask(session)
    services.approval_reject(first.pk, comment="no", actor="staff:o")

    told = selectors.approvals_to_tell(session.session_id)
    assert [(t["approval_id"], t["status"]) for t in told] == [
        (first.pk, "rejected"),
        (second.pk, "pending"),
    ]
    assert services.approval_mark_delivered(first.pk, actor="agent:test")
    assert not services.approval_mark_delivered(first.pk, actor="agent:test")
    assert not services.approval_mark_delivered(second.pk, actor="agent:test")  # still open
    told = selectors.approvals_to_tell(session.session_id)
    assert [t["approval_id"] for t in told] == [second.pk]
    assert _events(first)[-1].action == "deliver_approval"


def test_the_session_trail_stays_complete_by_version_with_approval_events_beside_it():
    session = make_session("running")
    approval = _ask(session)
    services.approval_approve(approval.pk, decision="send", actor="staff:o")
    services.session_complete(session.session_id)
    session.refresh_from_db()
    versions = sorted(
        e.metadata["version"]
        for e in AuditEvent.objects.filter(session_id=session.session_id)
        if "version" in e.metadata
    )
    assert versions == list(range(1, session.version + 1))


@pytest.mark.django_db(transaction=True)
def test_racing_decisions_and_a_cancel_leave_one_outcome_each_without_deadlock(
    run_concurrently,
):
    sessions = [make_session("running") for _ in range(4)]
    approvals = [_ask(session) for session in sessions for _ in range(2)]
    calls = []
    for approval in approvals:
        calls.append(
            lambda a=approval: services.approval_approve(a.pk, decision="send", actor="staff:a")
        )
        calls.append(lambda a=approval: services.approval_reject(a.pk, actor="staff:b"))
    for session in sessions:
        calls.append(lambda s=session: services.session_cancel(s.session_id, actor="staff:c"))

    results = run_concurrently(calls)

    unexpected = [
        r for r in results if isinstance(r, Exception) and not isinstance(r, ApprovalNotPending)
    ]
    assert unexpected == []
    for approval in approvals:
        final = SessionApproval.objects.get(pk=approval.pk)
        assert final.status != ApprovalStatus.PENDING
        outcomes = AuditEvent.objects.filter(resource=f"approval:{approval.pk}").exclude(
            action="request_approval"
        )
        assert [e.metadata["to"] for e in outcomes] == [final.status]
    assert all(
        s.status == SessionStatus.CANCELLED
        for s in AgentSession.objects.filter(pk__in=[s.pk for s in sessions])
    )


def test_the_dashboard_and_heartbeat_reads_cost_the_same_queries_for_few_or_many(
    django_assert_max_num_queries,
):
    session = make_session("running")
    for _ in range(30):
        _ask(session)
    with django_assert_max_num_queries(1):
        selectors.approvals_to_tell(session.session_id)
    with django_assert_max_num_queries(1):
        shown, total = selectors.approvals_open(limit=10)
    assert (len(shown), total) == (10, 30)
