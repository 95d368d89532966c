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


def test_seed_demo_gives_the_demo_agent_a_work_token_for_its_queue(tmp_path):
    from access.models import AgentToken
    from access.services import agent_token_authenticate
    from scheduling.models import ScheduledReview

    path = tmp_path / "demo-agent.token"
    call_command("seed_demo", "--no-user", "--agent-token-file", str(path))
    first = path.read_text()
    token = agent_token_authenticate(first)
    assert (token.name, token.scopes, token.queues) == ("demo-agent", ["work"], ["demo-agents"])
    assert path.stat().st_mode & 0o777 == 0o600
    assert ScheduledReview.objects.filter(executor="queue:demo-agents").count() == 1

    call_command("seed_demo", "--no-user", "--agent-token-file", str(path))
    assert path.read_text() != first  # a fresh token; the old one is revoked
    assert AgentToken.objects.filter(name="demo-agent", revoked_at__isnull=True).count() == 1
