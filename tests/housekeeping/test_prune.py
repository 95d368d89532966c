"""The daily prune removes what the retentions allow, in chunks each audited, and
nothing a running or recent run still needs."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from access.models import IdempotencyRecord
from audit.models import AuditEvent
from housekeeping.services import housekeeping_prune
from housekeeping.tasks import prune
from scheduling.models import (
    AccountReview,
    BatchStatus,
    ExecutionStatus,
    RunBatch,
    ScheduleExecution,
)
from sessions.models import AgentSession
from tests.factories import make_session
from tests.scheduling.factories import make_review

pytestmark = pytest.mark.django_db


def _run(review, *, days_ago: float | None, status=ExecutionStatus.SUCCEEDED, batches=2):
    """A run finished ``days_ago`` (None: still running) with batches and results."""
    finished = None if days_ago is None else timezone.now() - timedelta(days=days_ago)
    execution = ScheduleExecution.objects.create(
        review=review,
        review_name=review.name,
        nominal_time=timezone.now() - timedelta(days=days_ago or 0, seconds=review.pk),
        status=status,
        priority="medium",
        finished_at=finished,
    )
    for index in range(batches):
        batch = RunBatch.objects.create(
            execution=execution,
            index=index,
            account_ids=[f"acct_{index}"],
            status=BatchStatus.DONE if finished else BatchStatus.RUNNING,
        )
        AccountReview.objects.create(
            execution=execution,
            batch=batch,
            account_id=f"acct_{index}",
            outcome="reviewed",
            agent="test",
        )
    return execution


def _events(action: str) -> list[dict]:
    return [
        event.metadata for event in AuditEvent.objects.filter(action=action).order_by("timestamp")
    ]


def test_runs_past_retention_go_with_their_results_batches_of_older_runs_go_alone(settings):
    settings.SERGAS_SCHEDULING = {
        **settings.SERGAS_SCHEDULING,
        "BATCH_RETENTION_DAYS": 30,
        "EXECUTION_RETENTION_DAYS": 400,
    }
    review = make_review()
    ancient = _run(review, days_ago=401)
    old = _run(review, days_ago=31)
    recent = _run(review, days_ago=1)
    running = _run(review, days_ago=None, status=ExecutionStatus.RUNNING)
    stuck = _run(review, days_ago=500, status=ExecutionStatus.QUEUED)  # not finished

    would = {step.name: step.count for step in housekeeping_prune(dry_run=True)}
    assert would["runs and their results"] == 1
    assert would["batches of finished runs"] == 4  # the ancient run's and the old one's
    assert ScheduleExecution.objects.count() == 5  # a dry run changes nothing

    steps = {step.name: step.count for step in housekeeping_prune()}
    assert steps["runs and their results"] == 1
    assert steps["batches of finished runs"] == 2
    assert not ScheduleExecution.objects.filter(pk=ancient.pk).exists()
    assert not AccountReview.objects.filter(execution=ancient).exists()
    assert not RunBatch.objects.filter(execution=old).exists()
    assert AccountReview.objects.filter(execution=old, batch=None).count() == 2  # kept
    for kept in (recent, running, stuck):
        assert RunBatch.objects.filter(execution=kept).count() == 2
        assert AccountReview.objects.filter(execution=kept, batch__isnull=False).count() == 2
    assert [event["count"] for event in _events("executions_pruned")] == [1]
    assert _events("executions_pruned")[0]["results"] == 2
    assert [event["count"] for event in _events("run_batches_pruned")] == [2]

    again = {step.name: step.count for step in housekeeping_prune()}
    assert set(again.values()) == {0}  # idempotent
    assert len(_events("run_batches_pruned")) == 1  # an empty prune records nothing


def test_chunks_are_each_a_transaction_with_its_event(settings):
    from scheduling.services.pruning import run_batches_prune

    review = make_review()
    _run(review, days_ago=40, batches=5)
    progress: list[int] = []
    result = run_batches_prune(older_than_days=30, chunk_size=2, on_progress=progress.append)
    assert (result.count, progress) == (5, [2, 2, 1])
    assert [event["count"] for event in _events("run_batches_pruned")] == [2, 2, 1]


def test_a_retention_of_zero_keeps_everything(settings):
    settings.SERGAS_SCHEDULING = {
        **settings.SERGAS_SCHEDULING,
        "BATCH_RETENTION_DAYS": 0,
        "EXECUTION_RETENTION_DAYS": 0,
    }
    settings.SERGAS_SESSIONS = {**settings.SERGAS_SESSIONS, "ARCHIVE_AFTER_DAYS": 0}
    _run(make_review(), days_ago=5000)
    assert {step.count for step in housekeeping_prune()} == {0}
    assert ScheduleExecution.objects.count() == 1


def test_finished_sessions_are_archived_and_expired_idempotency_records_dropped(
    settings, agent_api
):
    settings.SERGAS_SESSIONS = {**settings.SERGAS_SESSIONS, "ARCHIVE_AFTER_DAYS": 30}
    done = make_session("completed")
    AgentSession.objects.filter(pk=done.pk).update(finished_at=timezone.now() - timedelta(days=31))
    fresh = make_session("completed")
    created = agent_api("write").post("/sessions", {"orchestrator_id": "o"}, idempotency_key="k1")
    assert created.status_code == 201
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(days=2))

    result = prune()  # the beat task, in this process
    assert result["finished sessions archived (checkpoints but the last dropped)"] == 1
    assert result["idempotency records"] == 1
    assert AgentSession.objects.get(pk=done.pk).archived_at is not None
    assert AgentSession.objects.get(pk=fresh.pk).archived_at is None
    assert not IdempotencyRecord.objects.exists()
    assert _events("idempotency_records_pruned")[0]["count"] == 1


def test_the_command_has_a_dry_run_and_says_what_it_removed():
    _run(make_review(), days_ago=500)
    out = StringIO()
    call_command("prune", "--dry-run", stdout=out)
    assert "runs and their results: would remove 1 (SCHEDULING_EXECUTION_RETENTION_DAYS)" in (
        out.getvalue()
    )
    assert ScheduleExecution.objects.count() == 1
    out = StringIO()
    call_command("prune", stdout=out)
    assert "runs and their results: removed 1" in out.getvalue()
    assert ScheduleExecution.objects.count() == 0
