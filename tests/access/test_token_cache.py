"""Verified tokens kept in the process: no database lookup per request, and a revocation
reaches the other processes within the admission bound (access.token_cache)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from access import admission, failures
from access.admission import forget_tickets
from access.models import AgentToken
from access.services import agent_token_revoke
from access.token_cache import revocation_mark_key, token_cache
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def _revoked_by_another_process(token: AgentToken) -> None:
    """What this process sees of a revocation made elsewhere: the row and the mark in
    Redis change, its own token cache does not."""
    AgentToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    failures.redis_guard().client.set(revocation_mark_key(token.prefix), 1, ex=60)


def test_a_token_verified_once_is_not_looked_up_again(agent_api):
    api = agent_api("read")
    assert api.get("/me").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        response = api.get("/me")
    assert response.status_code == 200
    assert response.json()["name"] == "test-agent"
    assert len(queries) == 0


def test_a_revocation_in_this_process_takes_effect_at_once(agent_api):
    api = agent_api("read")
    assert api.get("/me").status_code == 200
    agent_token_revoke(api.token.prefix)
    response = api.get("/me")
    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"


def test_a_revocation_in_another_process_takes_effect_when_the_ticket_ends(agent_api):
    api = agent_api("read")
    assert api.get("/me").status_code == 200
    _revoked_by_another_process(api.token)
    assert api.get("/me").status_code == 200  # within ADMISSION_SECONDS: the bound
    forget_tickets()  # what ADMISSION_SECONDS later looks like
    response = api.get("/me")
    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"
    # The long way records it like any revoked token (one event for the first failure).
    event = AuditEvent.objects.get(action="authentication_failed")
    assert event.metadata["code"] == "token_revoked"


def test_revoking_marks_the_token_in_redis_for_the_other_processes(
    agent_api, django_capture_on_commit_callbacks
):
    api = agent_api("read")
    with django_capture_on_commit_callbacks(execute=True):
        agent_token_revoke(api.token.prefix)
    ttl = failures.redis_guard().client.ttl(revocation_mark_key(api.token.prefix))
    assert ttl > 10  # outlives every cache entry made before the revocation


def test_without_the_mark_a_cached_token_is_trusted_only_for_the_cache_lifetime(
    agent_api, settings
):
    """The documented bound: a token revoked while Redis was unreachable (no mark) is
    still accepted by a process that had verified it, until its entry expires."""
    api = agent_api("read")
    assert api.get("/me").status_code == 200
    AgentToken.objects.filter(pk=api.token.pk).update(revoked_at=timezone.now())
    assert api.get("/me").status_code == 200
    token_cache().clear()  # what TOKEN_CACHE_SECONDS later looks like
    assert api.get("/me").json()["code"] == "token_revoked"


def test_with_redis_unreachable_every_request_reads_postgresql(agent_api, settings, monkeypatch):
    api = agent_api("read")
    assert api.get("/me").status_code == 200
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    later = admission.monotonic() + 2  # the ticket taken while Redis answered has ended
    monkeypatch.setattr(admission, "monotonic", lambda: later)
    with CaptureQueriesContext(connection) as queries:
        assert api.get("/me").status_code == 200
    assert any("agent_token" in query["sql"] for query in queries.captured_queries)
    AgentToken.objects.filter(pk=api.token.pk).update(revoked_at=timezone.now())
    assert api.get("/me").json()["code"] == "token_revoked"


def test_without_tickets_a_revocation_elsewhere_takes_effect_at_the_next_request(
    agent_api, settings
):
    settings.SERGAS_AGENTS = {**settings.SERGAS_AGENTS, "ADMISSION_SECONDS": 0}
    api = agent_api("read")
    assert api.get("/me").status_code == 200
    _revoked_by_another_process(api.token)
    assert api.get("/me").json()["code"] == "token_revoked"


def test_a_cached_token_without_the_scope_is_refused_and_recorded(agent_api):
    api = agent_api("read")
    assert api.get("/me").status_code == 200
    response = api.post("/sessions", {"orchestrator_id": "o"})
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    assert AuditEvent.objects.filter(action="access_denied").count() == 1


def test_a_cache_lifetime_of_zero_turns_the_cache_off(agent_api, settings):
    settings.SERGAS_AGENTS = {**settings.SERGAS_AGENTS, "TOKEN_CACHE_SECONDS": 0}
    token_cache.cache_clear()
    api = agent_api("read")
    assert api.get("/me").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert api.get("/me").status_code == 200
    assert any("agent_token" in query["sql"] for query in queries.captured_queries)
