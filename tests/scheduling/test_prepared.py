"""The 09:00 herd: runs prepared in bulk ahead of their time and started in bulk when due
(``scheduling.services.prepared``), and what happens to a prepared run when things
change before its time."""

from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from scheduling import services
from scheduling.models import (
    BatchStatus,
    ExecutionStatus,
    RunBatch,
    ScheduledReview,
    ScheduleExecution,
)
from scheduling.services import prepared
from scheduling.wakeups import CHANNEL
from sessions import services as session_services
from sessions.models import AgentSession, SessionStatus
from tests.processes import child_database_url
from tests.scheduling.factories import make_review
from tests.scheduling.test_runs import runner, wait_for  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

SOON = timedelta(seconds=5)  # within the dispatch lead (10 s)


def _review_due_soon(**fields) -> ScheduledReview:
    fields.setdefault("schedule_type", "interval")
    fields.setdefault("interval_minutes", 60)
    review = make_review(**fields)
    when = timezone.now() + SOON
    ScheduledReview.objects.filter(pk=review.pk).update(starts_at=when, next_run_at=when)
    review.refresh_from_db()
    return review


def _herd(count: int, **fields) -> list[ScheduleExecution]:
    """``count`` reviews due in a few seconds, dispatched: their runs queued ahead."""
    reviews = [_review_due_soon(name=f"herd {index}", **fields) for index in range(count)]
    result = services.reviews_dispatch_due()
    assert (result.queued, result.published) == (count, 0)
    return list(ScheduleExecution.objects.filter(review__in=reviews).order_by("review_id"))


def _prepare(executions: list[ScheduleExecution]) -> list[ScheduleExecution]:
    services.runs_prepare([str(e.pk) for e in executions])
    return [ScheduleExecution.objects.get(pk=e.pk) for e in executions]


def _due_at(executions: list[ScheduleExecution]):
    return max(e.due_at for e in executions)


def _events(action: str, execution: ScheduleExecution) -> int:
    return AuditEvent.objects.filter(
        action=action, metadata__execution_id=str(execution.pk)
    ).count()


def _assert_session_trail_complete(session: AgentSession) -> None:
    versions = sorted(
        AuditEvent.objects.filter(session_id=session.session_id)
        .exclude(metadata__version__isnull=True)
        .values_list("metadata__version", flat=True)
    )
    assert versions == list(range(1, session.version + 1))


def test_a_herd_is_prepared_ahead_and_started_in_bulk_when_due(
    review_queue_length, django_capture_on_commit_callbacks
):
    executions = _herd(12, account_filter={"count": 25})

    executions = _prepare(executions)

    for execution in executions:
        assert execution.status == ExecutionStatus.QUEUED
        session = execution.session
        assert session.status == SessionStatus.PENDING
        assert len(session.account_ids) == 25
        assert session.context["total_batches"] == 3
        assert session.context["metadata"]["execution_id"] == str(execution.pk)
        batches = list(execution.batches.order_by("index"))
        assert [len(b.account_ids) for b in batches] == [10, 10, 5]
        assert {b.status for b in batches} == {BatchStatus.PENDING}
        assert all(b.available_at is None for b in batches)  # not claimable yet
        assert _events("run_prepared", execution) == 1
    assert review_queue_length() == 0  # nothing handed out before its time

    with django_capture_on_commit_callbacks(execute=True):
        handed = services.executions_publish(now=_due_at(executions))

    assert handed == 12
    assert review_queue_length() == 12 * 3  # one message per batch, no run_review
    for execution in executions:
        execution.refresh_from_db()
        assert execution.status == ExecutionStatus.RUNNING
        assert execution.started_at is not None
        assert execution.enqueued_at is not None
        session = AgentSession.objects.get(pk=execution.session_id)
        assert session.status == SessionStatus.RUNNING
        assert session.version == 2
        _assert_session_trail_complete(session)
        assert all(b.available_at is not None for b in execution.batches.all())
        started = AuditEvent.objects.get(
            action="run_started", metadata__execution_id=str(execution.pk)
        )
        assert started.session_id == session.session_id
        assert (started.metadata["batches"], started.metadata["accounts"]) == (3, 25)
        assert started.metadata["from"] == ExecutionStatus.QUEUED
    assert services.executions_publish(now=_due_at(executions)) == 0  # nothing twice


def test_preparing_again_prepares_nothing_new():
    executions = _herd(3)
    assert services.runs_prepare([str(e.pk) for e in executions]) == 3
    assert services.runs_prepare([str(e.pk) for e in executions]) == 0
    assert AgentSession.objects.count() == 3
    assert RunBatch.objects.count() == 3


def test_a_preparation_that_dies_midway_leaves_nothing_and_the_run_still_starts(monkeypatch):
    executions = _herd(4)

    def die(*args, **kwargs):
        raise SystemExit("worker killed")  # after sessions and batches were written

    with monkeypatch.context() as patched:
        patched.setattr(prepared, "runs_move_many", die)
        with pytest.raises(SystemExit):
            services.runs_prepare([str(e.pk) for e in executions])
    assert not AgentSession.objects.exists()
    assert not RunBatch.objects.exists()
    assert not ScheduleExecution.objects.filter(session__isnull=False).exists()

    # Never prepared: at its time it is published and started the single way, once.
    assert services.executions_publish(now=_due_at(executions)) == 4
    for execution in executions:
        assert services.execution_claim(str(execution.pk)) == 1
        assert services.execution_claim(str(execution.pk)) == 1  # a duplicate: hands out
        execution.refresh_from_db()
        assert execution.status == ExecutionStatus.RUNNING
        assert _events("run_started", execution) == 1
    assert AgentSession.objects.count() == 4


def test_a_bulk_start_that_fails_midway_leaves_its_runs_to_the_single_way(monkeypatch):
    executions = _prepare(_herd(3))
    real_move = prepared.runs_move_many

    def fail_the_start(executions, action, **kwargs):
        if action == "start":
            raise RuntimeError("connection lost")
        return real_move(executions, action, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(prepared, "runs_move_many", fail_the_start)
        assert services.executions_publish(now=_due_at(executions)) == 3  # published
    for execution in executions:
        assert AgentSession.objects.get(pk=execution.session_id).status == SessionStatus.PENDING
        assert services.execution_claim(str(execution.pk)) == 1
        execution.refresh_from_db()
        assert execution.status == ExecutionStatus.RUNNING
        session = AgentSession.objects.get(pk=execution.session_id)
        assert session.status == SessionStatus.RUNNING  # the prepared one, started once
        _assert_session_trail_complete(session)
        assert all(b.available_at is not None for b in execution.batches.all())
    assert AgentSession.objects.count() == 3


def test_a_prepared_session_cancelled_before_its_time_ends_its_run_unstarted():
    [execution] = _prepare(_herd(1))
    session_services.session_cancel(execution.session_id, actor="staff:ana", reason="not today")

    assert services.executions_publish(now=execution.due_at) == 1  # the single way
    assert services.execution_claim(str(execution.pk)) == 0

    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED  # cancelled: not retried
    assert "cancelled before the run started" in execution.error
    assert not ScheduleExecution.objects.filter(trigger="retry").exists()
    assert {b.status for b in execution.batches.all()} == {BatchStatus.CANCELLED}
    assert AgentSession.objects.get(pk=execution.session_id).status == SessionStatus.CANCELLED


@pytest.mark.parametrize("change", ["pause", "delete", "reschedule"])
def test_a_review_paused_deleted_or_rescheduled_withdraws_its_prepared_run_and_session(change):
    [execution] = _prepare(_herd(1))
    session_id = execution.session_id

    if change == "pause":
        services.review_pause(execution.review_id, note="holiday", actor="staff:ana")
    elif change == "delete":
        services.review_delete(execution.review_id, actor="staff:ana")
    else:
        services.review_update(
            execution.review_id, changes={"interval_minutes": 90}, actor="staff:ana"
        )

    assert not ScheduleExecution.objects.filter(pk=execution.pk).exists()
    assert not RunBatch.objects.exists()
    session = AgentSession.objects.get(pk=session_id)
    assert session.status == SessionStatus.CANCELLED
    _assert_session_trail_complete(session)
    unscheduled = AuditEvent.objects.get(action="run_unscheduled")
    assert unscheduled.metadata["session_cancelled"] == session_id


def test_changing_the_accounts_of_a_review_prepares_its_run_again_with_the_new_ones():
    [execution] = _prepare(_herd(1, account_filter={"count": 3}))
    old_session = execution.session_id

    services.review_update(
        execution.review_id, changes={"account_filter": {"count": 7}}, actor="staff:ana"
    )
    assert AgentSession.objects.get(pk=old_session).status == SessionStatus.CANCELLED
    assert services.reviews_dispatch_due().queued == 1  # queued ahead again, same time
    [again] = _prepare(list(ScheduleExecution.objects.all()))

    assert again.nominal_time == execution.nominal_time
    assert len(again.session.account_ids) == 7
    services.executions_publish(now=again.due_at)
    again.refresh_from_db()
    assert again.status == ExecutionStatus.RUNNING


def test_a_prepared_run_whose_review_is_running_follows_the_overlap_policy():
    [execution] = _prepare(_herd(1, overlap_policy="skip"))
    services.review_trigger_on_demand(execution.review_id)
    ScheduleExecution.objects.filter(trigger="on_demand").update(status="running")

    assert services.executions_publish(now=execution.due_at) == 1  # left to the single way
    assert services.execution_claim(str(execution.pk)) == 0

    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SKIPPED_OVERLAP
    assert execution.session_id is None
    assert not execution.batches.exists()
    skipped = AuditEvent.objects.get(action="run_skipped_overlap")
    discarded = skipped.metadata["session_discarded"]
    assert AgentSession.objects.get(pk=discarded).status == SessionStatus.CANCELLED


def test_a_held_prepared_run_starts_afresh_when_released():
    [execution] = _prepare(_herd(1, overlap_policy="buffer_one"))
    services.review_trigger_on_demand(execution.review_id)
    ScheduleExecution.objects.filter(trigger="on_demand").update(status="running")

    services.executions_publish(now=execution.due_at)
    services.execution_claim(str(execution.pk))

    execution.refresh_from_db()
    assert (execution.status, execution.due_at, execution.session_id) == ("queued", None, None)
    assert not execution.batches.exists()


@pytest.mark.django_db(transaction=True)
def test_racing_bulk_starters_start_each_prepared_run_once(run_concurrently):
    executions = _prepare(_herd(40))
    due = _due_at(executions)

    results = run_concurrently([lambda: services.executions_publish(now=due) for _ in range(3)])

    assert not [r for r in results if isinstance(r, Exception)]
    assert sum(results) == 40
    for execution in executions:
        execution.refresh_from_db()
        assert execution.status == ExecutionStatus.RUNNING
        assert _events("run_started", execution) == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        assert cursor.fetchone()[0] == 0


@pytest.mark.django_db(transaction=True)
def test_a_prepared_work_queue_run_wakes_its_agents_when_it_starts():
    [execution] = _prepare(_herd(1, executor="queue:herd-agents"))
    with psycopg.connect(child_database_url(), autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        services.executions_publish(now=execution.due_at)
        payloads = [n.payload for n in listener.notifies(timeout=5, stop_after=1)]
    assert payloads == ["herd-agents"]
    claimed = services.work_claim("herd-agents", holder="agent-1", actor="agent:one")
    assert claimed is not None
    assert claimed.execution.pk == execution.pk


@pytest.mark.django_db(transaction=True)
def test_a_herd_dispatched_ahead_is_prepared_by_a_worker_and_runs_once(
    celery_worker_thread,
    runner,  # noqa: F811
):
    runner(RUNNER_BATCH_SIZE=2)
    executions = _herd(6, account_filter={"count": 3})

    wait_for(
        lambda: ScheduleExecution.objects.filter(session__isnull=False).count() == 6,
        what="the worker to prepare the runs",
    )
    services.executions_publish(now=_due_at(executions))

    wait_for(
        lambda: ScheduleExecution.objects.filter(status=ExecutionStatus.SUCCEEDED).count() == 6,
        what="the runs to succeed",
    )
    for execution in executions:
        execution.refresh_from_db()
        assert _events("run_started", execution) == 1
        assert execution.accounts_processed + execution.accounts_failed == 3
        assert AgentSession.objects.get(pk=execution.session_id).status == "completed"
    assert AgentSession.objects.count() == 6
