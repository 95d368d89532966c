"""A running session whose agent went silent becomes interrupted, then recoverable."""

import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEvent
from sergas.beat_schedule import beat_schedule
from sessions import services
from sessions.models import AgentSession, SessionStatus
from sessions.tasks import interrupt_stale_sessions
from tests.factories import make_session

pytestmark = pytest.mark.django_db


def _silence(session: AgentSession, seconds: int) -> None:
    AgentSession.objects.filter(pk=session.pk).update(
        last_heartbeat_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_a_silent_running_session_is_interrupted_and_a_live_one_is_not():
    silent = make_session("running")
    alive = make_session("running")
    paused = make_session("paused")
    _silence(silent, 600)
    _silence(paused, 600)

    interrupted = services.sessions_interrupt_stale(timeout_seconds=300, actor="test")

    assert interrupted == [silent.session_id]
    assert AgentSession.objects.get(pk=silent.pk).status == SessionStatus.INTERRUPTED
    assert AgentSession.objects.get(pk=alive.pk).status == SessionStatus.RUNNING
    assert AgentSession.objects.get(pk=paused.pk).status == SessionStatus.PAUSED
    event = AuditEvent.objects.get(session_id=silent.session_id, action="interrupt")
    assert event.metadata["reason"] == "heartbeat timeout"


def test_the_default_timeout_comes_from_settings(settings):
    settings.SERGAS_SESSIONS = {**settings.SERGAS_SESSIONS, "HEARTBEAT_TIMEOUT_SECONDS": 30}
    session = make_session("running")
    _silence(session, 40)
    assert services.sessions_interrupt_stale() == [session.session_id]


def test_an_interrupted_session_can_then_be_recovered():
    session = make_session("running")
    services.session_checkpoint(session.session_id, context_changes={"current_batch": 3})
    _silence(session, 3600)
    services.sessions_interrupt_stale(timeout_seconds=60)
    recovered = services.session_recover(session.session_id)
    assert recovered.status == SessionStatus.RUNNING
    assert recovered.context["current_batch"] == 3


def test_the_command_reports_what_it_interrupted(capsys):
    session = make_session("running")
    _silence(session, 120)
    call_command("interrupt_stale_sessions", "--timeout-seconds", "60")
    out = capsys.readouterr().out
    assert f"Interrupted {session.session_id}" in out
    assert "1 stale session(s)" in out


@pytest.mark.django_db(transaction=True)
def test_the_periodic_task_runs_on_a_real_worker(celery_worker_thread, settings):
    settings.SERGAS_SESSIONS = {**settings.SERGAS_SESSIONS, "HEARTBEAT_TIMEOUT_SECONDS": 60}
    session = make_session("running")
    _silence(session, 120)
    result = interrupt_stale_sessions.delay()
    deadline = timezone.now() + timedelta(seconds=30)
    while AgentSession.objects.get(pk=session.pk).status != SessionStatus.INTERRUPTED:
        assert timezone.now() < deadline, f"task {result.id} did not interrupt the session"
        time.sleep(0.05)
    event = AuditEvent.objects.get(session_id=session.session_id, action="interrupt")
    assert event.actor == "task:interrupt_stale_sessions"


def test_beat_runs_stale_detection_every_minute():
    entry = beat_schedule()["sessions-interrupt-stale"]
    assert entry["task"] == interrupt_stale_sessions.name
    assert entry["schedule"] == 60.0
