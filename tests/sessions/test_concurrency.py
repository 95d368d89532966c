"""Many writers on one session at once: one transition wins, no update is lost."""

import pytest

from audit.models import AuditEvent
from sessions import services
from sessions.exceptions import InvalidTransition
from sessions.models import AgentSession, SessionStatus
from sessions.state import SessionContext, SessionMetrics
from tests.factories import make_session

pytestmark = pytest.mark.django_db(transaction=True)


def test_of_many_racing_conflicting_transitions_exactly_one_wins(run_concurrently):
    session = make_session("running")
    sid = session.session_id
    actions = [
        lambda: services.session_complete(sid),
        lambda: services.session_pause(sid),
        lambda: services.session_interrupt(sid),
    ] * 5  # from running each is valid; after any of them, none of the others is
    results = run_concurrently(actions)

    winners = [r for r in results if isinstance(r, AgentSession)]
    losers = [r for r in results if isinstance(r, InvalidTransition)]
    assert len(winners) == 1, results
    assert len(losers) == len(actions) - 1
    reloaded = AgentSession.objects.get(pk=sid)
    assert reloaded.status == winners[0].status
    assert reloaded.version == session.version + 1
    lifecycle = AuditEvent.objects.filter(session_id=sid, event_type="session_lifecycle")
    assert lifecycle.count() == 3  # create, start, and the one winner


def test_the_same_transition_requested_twice_at_once_is_applied_once(run_concurrently):
    session = make_session("pending")
    results = run_concurrently([lambda: services.session_start(session.session_id)] * 8)
    assert sum(isinstance(r, AgentSession) for r in results) == 1
    assert AuditEvent.objects.filter(session_id=session.session_id, action="start").count() == 1


def test_concurrent_context_and_metrics_updates_lose_nothing(run_concurrently):
    session = make_session("running", account_ids=[f"a{i}" for i in range(64)])
    sid = session.session_id

    def worker(worker_index: int) -> int:
        for step in range(8):
            account = f"a{worker_index * 8 + step}"
            services.session_update_context(sid, changes={"processed_accounts": [account]})
            services.session_update_metrics(
                sid,
                counters={"api_call_count": 1, "token_usage": 10},
                processing_times_ms=[worker_index * 100 + step],
            )
        return worker_index

    results = run_concurrently([lambda i=i: worker(i) for i in range(8)])
    assert results == list(range(8))

    reloaded = AgentSession.objects.get(pk=sid)
    context = SessionContext.load(reloaded.context)
    metrics = SessionMetrics.load(reloaded.metrics)
    assert context.processed_accounts == {f"a{i}" for i in range(64)}
    assert metrics.api_call_count == 64
    assert metrics.token_usage == 640
    assert sorted(metrics.account_processing_times_ms) == sorted(
        w * 100 + s for w in range(8) for s in range(8)
    )
    assert reloaded.version == session.version + 128
    versions = sorted(
        AuditEvent.objects.filter(session_id=sid).values_list("metadata__version", flat=True)
    )
    assert versions == list(range(1, reloaded.version + 1))
    assert reloaded.status == SessionStatus.RUNNING
