"""Agents sharing one session over HTTP at the same instant: nothing lost, nothing twice."""

import pytest
from django.test import Client

from sessions.models import AgentSession
from tests.agent_api import AgentApi
from tests.factories import make_session

pytestmark = pytest.mark.django_db(transaction=True)


def _own_client(api: AgentApi) -> AgentApi:
    """The same token through a client of the thread's own."""
    return AgentApi(Client(), api.secret, api.token)


def test_concurrent_context_increments_without_if_match_all_count(agent_api, run_concurrently):
    api = agent_api()
    sid = make_session("running").session_id
    body = {"increments": {"current_batch": 1, "recommendations_count": 2}}

    def patch() -> int:
        return _own_client(api).patch(f"/sessions/{sid}/context", body).status_code

    assert run_concurrently([patch] * 4) == [200] * 4
    context = AgentSession.objects.get(pk=sid).context
    assert (context["current_batch"], context["recommendations_count"]) == (4, 8)


def test_concurrent_copies_of_one_keyed_metrics_post_count_once(agent_api, run_concurrently):
    api = agent_api()
    sid = make_session("running").session_id
    body = {"counters": {"api_call_count": 5}}

    def post() -> tuple[int, str]:
        response = _own_client(api).post(f"/sessions/{sid}/metrics", body, idempotency_key="m")
        return response.status_code, response["Idempotent-Replayed"]

    results = run_concurrently([post] * 3)
    assert sorted(results) == [(200, "false"), (200, "true"), (200, "true")]
    assert AgentSession.objects.get(pk=sid).metrics["api_call_count"] == 5
