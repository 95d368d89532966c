"""The work-queue migrations meet a populated database of the previous release: runs in
flight, batches in every status, tokens, a sealed audit trail. Nothing is lost or
rewritten, the constraints end up validated and the queue index valid, and the run in
flight carries on with the new code."""

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from audit.integrity.verification import audit_trail_verify
from scheduling import services
from scheduling.models import AccountReview, RunBatch, ScheduledReview, ScheduleExecution
from scheduling.runners import simulated_result
from sessions import services as session_services
from tests.audit.support import seal_everything
from tests.scheduling.factories import make_review

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("scheduling", "0002_run_batches"), ("agents", "0002_agenttoken_own_sessions_only")]
AFTER = [("scheduling", "0004_work_queue_index"), ("agents", "0003_token_work_queues")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _seed_previous_release(old):
    """Rows as the previous release wrote them, through its own models."""
    Review = old.get_model("scheduling", "ScheduledReview")
    Execution = old.get_model("scheduling", "ScheduleExecution")
    Batch = old.get_model("scheduling", "RunBatch")
    Token = old.get_model("agents", "AgentToken")
    now = timezone.now()
    review = Review.objects.create(
        name="Nightly", owner_id="owner_1", schedule_type="daily", time_of_day="09:00"
    )
    session = session_services.session_start(
        session_services.session_create(
            orchestrator_id="review-old", account_ids=["a1", "a2", "a3", "a4"]
        ).session_id
    )
    running = Execution.objects.create(
        review=review,
        review_name="Nightly",
        nominal_time=now,
        status="running",
        priority="high",
        session_id=session.session_id,
        started_at=now,
    )
    Execution.objects.create(
        review=review,
        review_name="Nightly",
        nominal_time=now.replace(year=2025),
        status="succeeded",
        priority="high",
        finished_at=now,
    )
    token = uuid.uuid4()
    Batch.objects.create(
        execution=running,
        index=0,
        account_ids=["a1", "a2"],
        status="running",
        token=token,
        attempts=1,
        lease_expires_at=now.replace(year=now.year + 1),
    )
    Batch.objects.create(execution=running, index=1, account_ids=["a3", "a4"], status="done")
    Token.objects.create(
        name="old-agent", prefix="0123456789ab", secret_hash="0" * 64, scopes=["write"]
    )
    return running.pk, token


def test_the_migrations_keep_the_previous_releases_rows_and_the_run_in_flight_finishes():
    make_review(name="before")  # the audit trail holds events of the previous release
    old = _migrate(BEFORE)
    try:
        execution_id, token = _seed_previous_release(old)
        seal_everything()
    finally:
        _migrate(AFTER)

    assert ScheduledReview.objects.filter(executor="worker").count() == 2
    assert set(ScheduleExecution.objects.values_list("executor", flat=True)) == {"worker"}
    assert list(
        RunBatch.objects.order_by("index").values_list("status", "queue", "rank", "holder")
    ) == [("running", "", 0, ""), ("done", "", 0, "")]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, convalidated FROM pg_constraint WHERE conname IN "
            "('schedule_run_batch_status_valid', 'scheduled_review_executor_valid')"
        )
        assert dict(cursor.fetchall()) == {
            "schedule_run_batch_status_valid": True,
            "scheduled_review_executor_valid": True,
        }
        cursor.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = "
            "'schedule_run_batch_queue_idx'::regclass"
        )
        assert cursor.fetchone() == (True,)
        cursor.execute("SELECT queues FROM agent_token WHERE name = 'old-agent'")
        assert cursor.fetchone() == ([],)
    assert audit_trail_verify().ok

    # The worker that held the old batch records it with the new code: the run ends.
    batch = RunBatch.objects.get(execution_id=execution_id, index=0)
    services.batch_record(
        batch.pk,
        token,
        results=[simulated_result(account, 5, failed=False) for account in batch.account_ids],
        agent="worker",
        actor="worker:run_review",
    )
    execution = ScheduleExecution.objects.get(pk=execution_id)
    assert execution.status == "succeeded"
    assert AccountReview.objects.filter(execution=execution).count() == 2
