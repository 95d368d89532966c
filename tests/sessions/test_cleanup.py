from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit.models import AuditEvent
from sessions import services
from sessions.models import AgentSession, SessionCheckpoint
from sessions.selectors import session_get
from tests.factories import make_session

pytestmark = pytest.mark.django_db


def _finished_days_ago(days: int, checkpoints: int = 3) -> AgentSession:
    session = make_session("running")
    for batch in range(checkpoints):
        services.session_checkpoint(session.session_id, context_changes={"current_batch": batch})
    services.session_complete(session.session_id)
    AgentSession.objects.filter(pk=session.pk).update(
        finished_at=timezone.now() - timedelta(days=days)
    )
    return session


def test_old_finished_sessions_keep_their_final_checkpoint_and_their_audit_trail():
    old = _finished_days_ago(40)
    recent = _finished_days_ago(2)
    running = make_session("running")
    events_before = AuditEvent.objects.filter(session_id=old.session_id).count()

    result = services.sessions_cleanup_old(older_than_days=30, actor="test")

    assert result.session_ids == [old.session_id]
    assert result.checkpoints_pruned == 2
    archived = AgentSession.objects.get(pk=old.pk)
    assert archived.archived_at is not None
    assert list(archived.checkpoints.values_list("sequence", flat=True)) == [3]
    assert AuditEvent.objects.filter(session_id=old.session_id).count() == events_before + 1
    assert AuditEvent.objects.filter(session_id=old.session_id, action="archive").exists()
    assert AgentSession.objects.get(pk=recent.pk).archived_at is None
    assert AgentSession.objects.get(pk=running.pk).archived_at is None
    assert SessionCheckpoint.objects.filter(session_id=recent.session_id).count() == 3


def test_cleanup_is_idempotent():
    _finished_days_ago(40)
    services.sessions_cleanup_old(older_than_days=30)
    again = services.sessions_cleanup_old(older_than_days=30)
    assert again.session_ids == []


@pytest.mark.django_db(transaction=True)
def test_archiving_drops_the_cached_copy():
    old = _finished_days_ago(40)
    assert session_get(old.session_id).archived_at is None
    services.sessions_cleanup_old(older_than_days=30)
    assert session_get(old.session_id).archived_at is not None


def test_the_dry_run_lists_and_changes_nothing(capsys):
    old = _finished_days_ago(40)
    call_command("cleanup_sessions", "--older-than-days", "30", "--dry-run")
    out = capsys.readouterr().out
    assert f"Would archive {old.session_id}" in out
    assert "1 session(s) would be archived" in out
    assert AgentSession.objects.get(pk=old.pk).archived_at is None
    assert SessionCheckpoint.objects.filter(session_id=old.session_id).count() == 3


def test_the_command_archives_and_reports(capsys):
    _finished_days_ago(40)
    call_command("cleanup_sessions", "--older-than-days", "30")
    assert "Archived 1 session(s); pruned 2 checkpoint(s)." in capsys.readouterr().out


def test_the_command_refuses_a_negative_age():
    with pytest.raises(CommandError, match="zero or more"):
        call_command("cleanup_sessions", "--older-than-days", "-1")
