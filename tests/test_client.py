"""sergas_client against a live server (pytest-django's live_server), and the example
agent of docs/ driving a whole session through it."""

import importlib.util
import uuid
from pathlib import Path

import httpx
import pytest

from access.services import agent_token_create
from audit.models import AuditEvent
from scheduling.models import ScheduleExecution
from sergas_client import SergasAPIError, SergasClient
from sessions.models import AgentSession
from tests.scheduling.factories import make_review

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "example_agent.py"


def _example():
    spec = importlib.util.spec_from_file_location("example_agent", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def token():
    return agent_token_create(name="example", scopes=["admin"]).secret


@pytest.fixture
def api(live_server, token):
    with SergasClient(live_server.url, token, backoff_seconds=0.01) as client:
        yield client


def test_the_example_agent_drives_a_whole_session(api):
    example = _example()
    accounts = [f"acct_{n}" for n in range(12)]
    session = example.run(api, accounts=accounts, batch_size=4)
    assert session.status == "completed"
    summary = session.summary
    assert summary["tasks"] == 3
    assert summary["tool_calls"] == 12
    assert summary["tool_errors"] == summary["errors_by_type"].get("CrmTimeout", 0)
    stored = AgentSession.objects.get(pk=session.session_id)
    assert stored.last_checkpoint_sequence == 3
    assert stored.metrics["api_call_count"] == 12
    assert len(stored.context["processed_accounts"]) == 12 - summary["tool_errors"]
    trail = list(api.audit_trail(session.session_id))
    assert len(trail) == AuditEvent.objects.filter(session_id=session.session_id).count()
    assert {event["actor"] for event in trail} == {"agent:example"}


def test_the_example_script_runs_from_the_command_line(live_server, token, capsys):
    assert _example().main(["--url", live_server.url, "--token", token, "--accounts", "5"]) == 0
    out = capsys.readouterr().out
    assert ": completed" in out
    assert "audit trail:" in out


def test_api_errors_arrive_as_typed_exceptions_with_code_and_detail(api):
    session = api.create_session(orchestrator_id="o")
    with pytest.raises(SergasAPIError) as excinfo:
        api.complete(session.session_id)
    error = excinfo.value
    assert (error.status_code, error.code) == (409, "invalid_transition")
    assert error.body["status"] == "pending"
    assert "it is pending" in error.detail


def test_a_retried_create_with_its_key_makes_one_session(api):
    first = api.create_session(orchestrator_id="o", idempotency_key="retry-me")
    again = api.create_session(orchestrator_id="o", idempotency_key="retry-me")
    assert first.session_id == again.session_id
    assert AgentSession.objects.count() == 1


def test_lists_and_searches_follow_every_page(api):
    created = {api.create_session(orchestrator_id="pager").session_id for _ in range(5)}
    listed = {s.session_id for s in api.list_sessions(page_size=2, orchestrator_id="pager")}
    assert listed == created
    events = list(api.search_audit(page_size=2, action="create", metadata={"to": "pending"}))
    assert {event["session_id"] for event in events} == created


def test_the_session_lifecycle_and_state_methods(api):
    sid = api.create_session(orchestrator_id="o", account_ids=["a", "b"]).session_id
    started = api.start(sid)
    assert api.heartbeat(sid).should_stop is False
    api.update_context(sid, {"processed_accounts": ["a"]}, expected_version=started.version)
    api.increment_metrics(sid, {"token_usage": 40}, [12])
    assert api.checkpoint(sid, {"current_batch": 1}).sequence == 1
    api.pause(sid, reason="staff asked")
    assert api.heartbeat(sid).should_stop is True
    recovered = api.recover(sid, include_state=True)
    assert (recovered.status, recovered.recovered_from_sequence) == ("running", 1)
    assert recovered.context["processed_accounts"] == ["a"]
    assert [c.sequence for c in api.checkpoints(sid)] == [1]
    assert api.get_session(sid).metrics["token_usage"] == 40
    assert api.fail(sid, error="boom").status == "failed"
    assert api.me()["actor"] == "agent:example"


class _LosesFirstAnswer(httpx.HTTPTransport):
    """The network between agent and server: the first answer never arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if self.lost == 0:
            self.lost += 1
            response.read()
            response.close()
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


def test_a_batch_whose_answer_was_lost_is_resent_without_duplicates(live_server, token):
    with SergasClient(live_server.url, token) as setup:
        sid = setup.create_session(orchestrator_id="o").session_id
        setup.start(sid)
    transport = _LosesFirstAnswer()
    api = SergasClient(live_server.url, token, transport=transport, backoff_seconds=0.01)
    with api, api.recorder(sid) as hooks, hooks.tool("crm.get_account"):
        pass
    assert transport.lost == 1
    assert AuditEvent.objects.filter(session_id=sid, event_type="tool").count() == 2


def test_context_increments_and_the_context_search(api):
    sid = api.create_session(orchestrator_id="o", context={"metadata": {"region": "emea"}})
    sid = sid.session_id
    api.start(sid)
    api.update_context(sid, increments={"current_batch": 1, "recommendations_count": 2})
    api.update_context(sid, {"note": "n"}, increments={"current_batch": 1})
    context = api.get_session(sid).context
    assert (context["current_batch"], context["recommendations_count"]) == (2, 2)
    api.create_session(orchestrator_id="o", context={"metadata": {"region": "apac"}})
    found = list(api.list_sessions(context={"metadata": {"region": "emea"}}))
    assert [session.session_id for session in found] == [sid]


def test_a_metrics_update_whose_answer_was_lost_counts_once(live_server, token):
    with SergasClient(live_server.url, token) as setup:
        sid = setup.create_session(orchestrator_id="o").session_id
        setup.start(sid)
    transport = _LosesFirstAnswer()
    with SergasClient(live_server.url, token, transport=transport, backoff_seconds=0.01) as api:
        session = api.increment_metrics(sid, {"api_call_count": 2}, [7])
    assert transport.lost == 1
    assert session.session_id == sid
    metrics = AgentSession.objects.get(pk=sid).metrics
    assert (metrics["api_call_count"], metrics["account_processing_times_ms"]) == (2, [7])


def test_a_trigger_whose_answer_was_lost_starts_one_run(live_server, token):
    review = make_review(name="lost answer")
    transport = _LosesFirstAnswer()
    with SergasClient(live_server.url, token, transport=transport, backoff_seconds=0.01) as api:
        run = api.trigger_schedule(review.pk)
    assert transport.lost == 1
    assert (run.trigger, run.replayed) == ("on_demand", True)
    assert list(ScheduleExecution.objects.filter(review=review).values_list("pk", flat=True)) == [
        uuid.UUID(run.id)
    ]


def test_the_schedule_methods(api):
    review = api.create_schedule(
        name="EMEA daily",
        owner_id="owner_1",
        schedule_type="daily",
        time_of_day="09:30",
        timezone="Europe/Paris",
    )
    assert review.description == "At 09:30 AM (Europe/Paris)"
    assert api.get_schedule(review.id).name == "EMEA daily"
    assert api.update_schedule(review.id, priority="high").priority == "high"
    assert [found.id for found in api.list_schedules(owner_id="owner_1")] == [review.id]
    paused = api.pause_schedule(review.id, note="CRM migration")
    assert (paused.enabled, paused.paused_note) == (False, "CRM migration")
    assert [found.id for found in api.list_schedules(enabled=False)] == [review.id]
    assert api.resume_schedule(review.id).enabled is True
    runs = api.next_runs(review.id, count=3)
    assert len(runs) == 3
    assert runs == sorted(runs)
    run = api.trigger_schedule(review.id)
    assert [execution.id for execution in api.executions(review.id)] == [run.id]
    assert list(api.executions(review.id, status=["failed"])) == []
    assert list(api.execution_results(review.id, run.id)) == []
    api.delete_schedule(review.id)
    with pytest.raises(SergasAPIError) as excinfo:
        api.get_schedule(review.id)
    assert excinfo.value.code == "review_not_found"
