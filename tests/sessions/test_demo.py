import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from audit.models import AuditEvent
from sessions.models import AgentSession, SessionStatus

pytestmark = pytest.mark.django_db


def test_seed_demo_covers_every_status_and_is_idempotent(capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "Demo staff user (created): demo / sergas-demo" in out
    statuses = set(AgentSession.objects.values_list("status", flat=True))
    assert statuses == set(SessionStatus.values)
    sessions, events = AgentSession.objects.count(), AuditEvent.objects.count()
    assert events > sessions

    call_command("seed_demo")
    assert "Demo sessions: 0 created." in capsys.readouterr().out
    assert (AgentSession.objects.count(), AuditEvent.objects.count()) == (sessions, events)
    user = get_user_model().objects.get(username="demo")
    assert user.is_staff
    assert user.check_password("sergas-demo")
