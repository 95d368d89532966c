import itertools

import pytest

from audit.models import AuditEvent
from sessions import services
from sessions.exceptions import InvalidTransition
from sessions.models import AgentSession, SessionStatus
from sessions.transitions import TRANSITIONS, SessionAction, allowed_actions
from tests.factories import make_session

pytestmark = pytest.mark.django_db

ACTIONS = {
    SessionAction.START: lambda sid: services.session_start(sid),
    SessionAction.PAUSE: lambda sid: services.session_pause(sid),
    SessionAction.RESUME: lambda sid: services.session_resume(sid),
    SessionAction.COMPLETE: lambda sid: services.session_complete(sid),
    SessionAction.FAIL: lambda sid: services.session_fail(sid, error="x"),
    SessionAction.CANCEL: lambda sid: services.session_cancel(sid),
    SessionAction.INTERRUPT: lambda sid: services.session_interrupt(sid),
    SessionAction.RECOVER: lambda sid: services.session_recover(sid),
}

EXPECTED = {
    # action: {source: target}
    "start": {"pending": "running"},
    "pause": {"running": "paused"},
    "resume": {"paused": "running"},
    "complete": {"running": "completed"},
    "fail": dict.fromkeys(("pending", "running", "paused", "interrupted"), "failed"),
    "cancel": dict.fromkeys(("pending", "running", "paused", "interrupted"), "cancelled"),
    "interrupt": {"running": "interrupted"},
    "recover": {"interrupted": "running", "paused": "running"},
}

CASES = list(itertools.product(SessionAction, SessionStatus))


def test_the_table_is_the_documented_lifecycle():
    table = {
        action.value: {source.value: t.target.value for source in t.sources}
        for action, t in TRANSITIONS.items()
    }
    assert table == EXPECTED


@pytest.mark.parametrize(("action", "status"), CASES, ids=[f"{a}-from-{s}" for a, s in CASES])
def test_every_action_from_every_status(action, status):
    session = make_session(status)
    events_before = AuditEvent.objects.filter(session_id=session.session_id).count()
    target = EXPECTED[action.value].get(status.value)

    if target is None:
        with pytest.raises(InvalidTransition) as excinfo:
            ACTIONS[action](session.session_id)
        assert excinfo.value.status == status.value
        assert excinfo.value.action == action.value
        assert f"it is {status.value}" in excinfo.value.detail
        assert f"Cannot {action.value} session" in excinfo.value.detail
        reloaded = AgentSession.objects.get(pk=session.session_id)
        assert reloaded.status == status
        assert reloaded.version == session.version
        assert AuditEvent.objects.filter(session_id=session.session_id).count() == events_before
    else:
        ACTIONS[action](session.session_id)
        reloaded = AgentSession.objects.get(pk=session.session_id)
        assert reloaded.status == target
        assert reloaded.version == session.version + 1
        event = AuditEvent.objects.filter(session_id=session.session_id).latest("timestamp")
        assert event.action == action.value
        assert event.metadata["from"] == status.value
        assert event.metadata["to"] == target
        assert event.metadata["version"] == reloaded.version


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_recovering_a_terminal_session_is_refused(status):
    session = make_session(status)
    with pytest.raises(InvalidTransition, match=f"it is {status}"):
        services.session_recover(session.session_id)
    assert AgentSession.objects.get(pk=session.session_id).status == status


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_terminal_statuses_allow_no_action(status):
    assert allowed_actions(status) == []


def test_lifecycle_timestamps_follow_the_transitions():
    session = make_session("pending")
    sid = session.session_id
    assert session.started_at is None
    started = services.session_start(sid)
    assert started.started_at is not None
    assert started.last_heartbeat_at == started.started_at
    paused = services.session_pause(sid, reason="lunch")
    assert paused.paused_at is not None
    resumed = services.session_resume(sid)
    assert resumed.paused_at is None
    failed = services.session_fail(sid, error="CRM timeout")
    assert failed.finished_at is not None
    assert failed.error_message == "CRM timeout"
    reloaded = AgentSession.objects.get(pk=sid)
    assert reloaded.error_message == "CRM timeout"
    assert reloaded.finished_at == failed.finished_at
