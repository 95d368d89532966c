"""Staff security: production settings, login throttling, refusals in the audit trail."""

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from access.exceptions import StaffPermissionDenied
from access.services import auth_failure_summaries_flush, staff_actor
from audit.integrity.heads import key_pair_write
from audit.models import AuditEvent

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-Horse-battery-9"


def _production(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"
    }
    environment.update(DJANGO_SETTINGS_MODULE="sergas.settings.production", **env)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def _production_audit_keys() -> dict[str, str]:
    """A signing key and a witness file, as production must have (audit.E001/E002)."""
    directory = Path(tempfile.mkdtemp(prefix="sergas-production-"))
    key_pair_write(directory / "audit-signing-key.pem")
    return {
        "AUDIT_SIGNING_KEY_FILE": str(directory / "audit-signing-key.pem"),
        "AUDIT_WITNESS_FILES": str(directory / "witness.jsonl"),
    }


REAL = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "sergas.example.com,testserver",
    # The checks refuse the simulated runner and accounts (tests/scheduling/test_checks.py).
    "SCHEDULING_ALLOW_SIMULATION": "true",
    **_production_audit_keys(),
}


class TestProductionSettings:
    def test_check_deploy_is_clean(self):
        result = _production("manage.py", "check", "--deploy", "--fail-level", "WARNING", **REAL)
        assert result.returncode == 0, result.stderr
        assert "System check identified no issues" in result.stdout

    @pytest.mark.parametrize(
        "secret_key",
        ["", "short", "django-insecure-local-development-only" + "x" * 20, "a" * 60],
    )
    def test_they_refuse_to_start_without_a_real_secret_key(self, secret_key):
        result = _production("manage.py", "check", **{**REAL, "SECRET_KEY": secret_key})
        assert result.returncode != 0
        assert "Production settings need a real SECRET_KEY" in result.stderr

    def test_they_refuse_to_start_without_allowed_hosts(self):
        result = _production("manage.py", "check", **{**REAL, "ALLOWED_HOSTS": ""})
        assert result.returncode != 0
        assert "ALLOWED_HOSTS" in result.stderr

    def test_pages_carry_the_security_headers_and_secure_cookies(self):
        script = (
            "import django, json; django.setup();"
            "from django.test import Client; c = Client();"
            "r = c.get('/admin/login/', secure=True);"
            "plain = c.get('/admin/login/');"
            "probes = [c.get(p).status_code for p in ('/healthz', '/livez', '/readyz')];"
            "print(json.dumps({'status': r.status_code, 'headers': dict(r.headers),"
            " 'cookie': r.cookies['csrftoken'].output(), 'plain': plain.status_code,"
            " 'location': plain.headers.get('Location'), 'probes': probes}))"
        )
        result = _production("-c", script, **REAL)
        assert result.returncode == 0, result.stderr
        answer = json.loads(result.stdout.strip().splitlines()[-1])
        headers = answer["headers"]
        assert answer["status"] == 200
        assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert "Secure" in answer["cookie"]
        assert "HttpOnly" in answer["cookie"]
        assert answer["plain"] == 301
        assert answer["location"].startswith("https://")
        # Health probes are not redirected.
        assert all(status in (200, 503) for status in answer["probes"]), answer["probes"]


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user(
        "ana", password=PASSWORD, is_staff=True, email="ana@example.com"
    )


def _login(client: Client, password: str):
    return client.post("/admin/login/", {"username": "ana", "password": password})


@pytest.mark.django_db
class TestLoginThrottling:
    @pytest.fixture(autouse=True)
    def _throttling_on(self, settings):
        settings.AXES_ENABLED = True
        settings.AXES_FAILURE_LIMIT = 3

    def test_a_login_and_a_failed_one_are_in_the_audit_trail(self, staff):
        client = Client()
        assert _login(client, PASSWORD).status_code == 302
        assert _login(Client(), "wrong").status_code == 200
        events = list(
            AuditEvent.objects.filter(event_type="auth")
            .order_by("timestamp")
            .values_list("action", "actor", "resource")
        )
        assert events == [
            ("login", "staff:ana", "user:ana"),
            ("login_failed", "anonymous", "user:ana"),
        ]
        assert AuditEvent.objects.get(action="login_failed").metadata["remote_addr"] == (
            "127.0.0.1"
        )

    def test_too_many_failures_lock_the_account_out_even_with_the_right_password(self, staff):
        client = Client()
        statuses = [_login(client, f"wrong-{i}").status_code for i in range(3)]
        assert statuses == [200, 200, 429]  # the third failure reaches the limit
        locked = _login(client, PASSWORD)
        assert locked.status_code == 429
        assert "_auth_user_id" not in client.session
        # The first failure of the address's window is an event, the rest its summary.
        events = AuditEvent.objects.filter(event_type="auth")
        assert list(events.values_list("action", flat=True)) == ["login_failed"]
        assert auth_failure_summaries_flush(now=time.time() + 3600) == 1
        summary = events.get(action="authentication_failures_summarized")
        assert summary.metadata["kind"] == "staff_login"
        assert summary.metadata["count"] == 3
        assert summary.metadata["codes"] == {"login_failed": 1, "login_locked_out": 2}
        assert summary.metadata["usernames"] == ["ana"]
        assert not events.filter(action="login").exists()

    def test_failures_of_one_username_do_not_lock_out_another(self, staff):
        get_user_model().objects.create_user("bo", password=PASSWORD, is_staff=True)
        client = Client()
        for i in range(3):
            _login(client, f"wrong-{i}")
        response = client.post("/admin/login/", {"username": "bo", "password": PASSWORD})
        assert response.status_code == 302


@pytest.mark.django_db
def test_a_refused_staff_page_is_403_and_recorded(staff):
    client = Client()
    client.force_login(staff)  # staff, but without any model permission
    response = client.get("/admin/agents/agenttoken/")
    assert response.status_code == 403
    event = AuditEvent.objects.get(action="permission_denied")
    assert (event.event_type, event.actor) == ("auth", "staff:ana")
    assert event.metadata["path"] == "/admin/agents/agenttoken/"


@pytest.mark.django_db
class TestStaffActor:
    def test_a_staff_member_holding_the_permission_gets_their_actor(self, staff):
        staff.user_permissions.add(Permission.objects.get(codename="change_agentsession"))
        staff = get_user_model().objects.get(pk=staff.pk)  # permissions are cached
        assert staff_actor(staff, "agent_sessions.change_agentsession") == "staff:ana"

    def test_without_it_the_refusal_is_recorded_and_raised(self, staff):
        with pytest.raises(StaffPermissionDenied, match=r"agent_sessions\.change_agentsession"):
            staff_actor(staff, "agent_sessions.change_agentsession", path="/admin/x/")
        event = AuditEvent.objects.get(action="permission_denied")
        assert event.actor == "staff:ana"
        assert event.metadata["path"] == "/admin/x/"

    def test_an_admin_action_without_the_permission_changes_nothing(self, staff):
        from tests.factories import make_session

        session = make_session("running")
        # May see sessions (view), may not change them: the action is not offered.
        staff.user_permissions.add(Permission.objects.get(codename="view_agentsession"))
        client = Client()
        client.force_login(staff)
        response = client.post(
            "/admin/agent_sessions/agentsession/",
            {"action": "pause_sessions", "_selected_action": [session.session_id]},
        )
        assert response.status_code == 200
        session.refresh_from_db()
        assert session.status == "running"
