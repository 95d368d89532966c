"""A worker that cannot reach PostgreSQL when a run's message arrives retries until it
can: the run is neither lost (a queued run whose message was acknowledged as failed
would wait for a message nobody sends again) nor run twice.

The outage is real for the worker process: its database refuses new connections and
its open ones are terminated, while the test keeps its own connection to watch.
"""

import contextlib
import time
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from scheduling import services
from scheduling.models import BatchStatus, ExecutionStatus, RunBatch, ScheduleExecution
from tests.scheduling.factories import make_review
from tests.scheduling.test_runs import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _refuse_connections(refuse: bool) -> None:
    """Close the test database to new connections (and end every other one) or open it
    again; from the maintenance database, as a database cannot close itself."""
    db = connection.settings_dict
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [ours] = cursor.fetchone()
    params = {
        "dbname": "postgres",
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or db.get("OPTIONS", {}).get("host") or None,
        "port": db.get("PORT") or None,
        "autocommit": True,
    }
    with psycopg.connect(**{k: v for k, v in params.items() if v is not None}) as admin:
        quoted = connection.ops.quote_name(db["NAME"])
        admin.execute(
            f"ALTER DATABASE {quoted} WITH ALLOW_CONNECTIONS {'false' if refuse else 'true'}"
        )
        if refuse:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> %s",
                [db["NAME"], ours],
            )


@contextlib.contextmanager
def _database_closed() -> Iterator[None]:
    """The test database refuses the worker during the block, and two seconds more (a
    retry or two against it)."""
    _refuse_connections(True)
    try:
        yield
        time.sleep(2)
    finally:
        _refuse_connections(False)


def _wait_until_succeeded(run: ScheduleExecution) -> None:
    # The batch lease (10 min) and the heartbeat timeout (5 min) are far beyond this wait.
    wait_for(
        lambda: ScheduleExecution.objects.get(pk=run.pk).status == ExecutionStatus.SUCCEEDED,
        timeout=60,
        what="the run to succeed once PostgreSQL is back",
    )
    run.refresh_from_db()


def test_a_run_that_arrives_while_postgresql_refuses_the_worker_runs_once_it_is_back(
    celery_processes,
):
    review = make_review(name="arrives during a database outage", account_filter={"count": 10})
    worker = celery_processes.worker("--pool", "solo", SCHEDULING_SIMULATED_FAILURE_RATE="0")
    worker.wait_for_log("ready")
    with _database_closed():
        run = services.review_trigger_on_demand(review.pk)  # published on commit
        # The message arrived and the worker met the closed database.
        worker.wait_for_log("is not currently accepting connections", timeout=30)

    _wait_until_succeeded(run)
    assert run.attempt == 1
    assert run.accounts_processed == 10
    assert ScheduleExecution.objects.filter(review=review).count() == 1


def test_a_batch_whose_result_postgresql_could_not_take_is_reviewed_again_not_left_to_the_lease(
    celery_processes,
):
    review = make_review(name="database lost mid-batch", account_filter={"count": 20})
    worker = celery_processes.worker(
        "--pool",
        "solo",
        SCHEDULING_SIMULATED_FAILURE_RATE="0",
        SCHEDULING_RUNNER_BATCH_SIZE="5",
        SCHEDULING_SIMULATED_ACCOUNT_MS="600",  # 3 s per batch: room to close the database
    )
    worker.wait_for_log("ready")
    run = services.review_trigger_on_demand(review.pk)
    wait_for(
        lambda: RunBatch.objects.filter(execution=run, status=BatchStatus.DONE).exists(),
        timeout=60,
        what="a batch done",
    )
    # Close the database early in a batch, well before it records its result.
    wait_for(
        lambda: RunBatch.objects.filter(
            execution=run,
            status=BatchStatus.RUNNING,
            started_at__gt=timezone.now() - timedelta(seconds=1),
        ).exists(),
        timeout=30,
        what="a batch just started",
    )
    with _database_closed():
        worker.wait_for_log("not recorded", timeout=30)

    _wait_until_succeeded(run)
    batches = list(RunBatch.objects.filter(execution=run))
    assert [batch.status for batch in batches] == [BatchStatus.DONE] * 4
    assert sum(batch.attempts for batch in batches) <= 5  # only the batch in flight again
    assert run.accounts_processed == 20


def test_beat_cut_off_from_postgresql_when_a_run_falls_due_dispatches_it_once_it_is_back(
    celery_processes,
):
    celery_processes.worker("--pool", "solo", SCHEDULING_SIMULATED_FAILURE_RATE="0")
    beat = celery_processes.beat(SCHEDULING_DISPATCH_LEAD_SECONDS="0")
    beat.wait_for_log("Beat leadership acquired")
    review = make_review(
        name="due during a database outage",
        schedule_type="interval",
        interval_minutes=60,
        starts_at=timezone.now() + timedelta(seconds=2),
        account_filter={"count": 5},
    )
    with _database_closed():
        # Its leadership connection was ended: it stands by, trying again, past the due time.
        beat.wait_for_log("database unavailable", timeout=30)
        time.sleep(3)
    assert not ScheduleExecution.objects.filter(review=review).exists()

    wait_for(
        lambda: ScheduleExecution.objects.filter(
            review=review, status=ExecutionStatus.SUCCEEDED
        ).exists(),
        timeout=60,
        what="the run that fell due during the outage",
    )
    [run] = ScheduleExecution.objects.filter(review=review)
    assert run.nominal_time == review.starts_at
    assert beat.log().count("Beat leadership acquired") == 2  # lost it, took it back
