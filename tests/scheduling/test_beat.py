"""Beat and workers as real processes: runs fire, restarts lose and duplicate nothing,
and only one beat dispatches at a time."""

import os
import signal
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from scheduling import services
from scheduling.beat import BeatLeadership, ReviewScheduler, leadership_connection_options
from scheduling.models import ExecutionStatus, ScheduledReview, ScheduleExecution
from scheduling.runners import review_runner
from sergas.celery import app
from tests.scheduling.factories import make_review
from tests.scheduling.test_runs import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _interval_review_due_in(seconds: float, **fields) -> ScheduledReview:
    fields.setdefault("name", f"due in {seconds}s")
    first = timezone.now() + timedelta(seconds=seconds)
    return make_review(schedule_type="interval", interval_minutes=60, starts_at=first, **fields)


def _runs(review: ScheduledReview) -> list[ScheduleExecution]:
    return list(ScheduleExecution.objects.filter(review=review).order_by("nominal_time"))


def _leaders() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'sergas-beat-leader' AND datname = current_database()"
        )
        return cursor.fetchone()[0]


def test_a_review_fires_at_its_time_and_its_run_and_session_are_right(celery_processes):
    review = _interval_review_due_in(4)
    celery_processes.worker("--pool", "solo")
    celery_processes.beat().wait_for_log("Beat leadership acquired")

    wait_for(
        lambda: any(r.status == ExecutionStatus.SUCCEEDED for r in _runs(review)),
        timeout=60,
        what="the scheduled run",
    )

    [run] = _runs(review)
    assert run.nominal_time == review.starts_at
    assert run.trigger == "schedule"
    assert run.enqueued_at >= run.nominal_time  # never early
    assert run.started_at >= run.enqueued_at
    assert run.session.session_type == "scheduled"
    assert run.session.status == "completed"
    assert run.session.context["metadata"]["execution_id"] == str(run.pk)
    review.refresh_from_db()
    assert review.next_run_at == review.starts_at + timedelta(minutes=60)


def test_beat_killed_after_preparing_a_run_and_restarted_after_its_time_runs_it_once(
    celery_processes,
):
    first = celery_processes.beat()
    first.wait_for_log("Beat leadership acquired")
    review = _interval_review_due_in(6)  # within the dispatch lead: prepared at once
    prepared = wait_for(lambda: _runs(review), timeout=20, what="the run prepared ahead")
    assert prepared[0].enqueued_at is None
    first.kill()  # dies before the due time, with the run in the outbox

    wait_for(lambda: timezone.now() > review.starts_at + timedelta(seconds=2), timeout=20)
    second = celery_processes.beat()
    wait_for(lambda: _runs(review)[0].enqueued_at, timeout=30, what="the publish")
    second.stop()
    [run] = _runs(review)
    assert run.nominal_time == review.starts_at
    assert run.enqueued_at > run.nominal_time


def test_beat_dead_when_a_run_comes_due_catches_it_up_once(celery_processes):
    first = celery_processes.beat(SCHEDULING_DISPATCH_LEAD_SECONDS="0")
    first.wait_for_log("Beat leadership acquired")
    review = _interval_review_due_in(4)
    first.kill()  # before the review is due

    wait_for(lambda: timezone.now() > review.starts_at + timedelta(seconds=2), timeout=20)
    assert _runs(review) == []  # nothing dispatched while no beat ran

    second = celery_processes.beat(SCHEDULING_DISPATCH_LEAD_SECONDS="0")
    wait_for(
        lambda: any(run.enqueued_at for run in _runs(review)),
        timeout=30,
        what="the catch-up dispatch",
    )
    second.stop()
    [run] = _runs(review)
    assert run.nominal_time == review.starts_at
    assert run.status == ExecutionStatus.QUEUED
    assert run.enqueued_at is not None


def test_a_gracefully_restarted_beat_neither_loses_nor_duplicates(celery_processes):
    reviews = [_interval_review_due_in(3 + i, name=f"r{i}") for i in range(4)]
    beat = celery_processes.beat()
    wait_for(lambda: all(_runs(r) for r in reviews[:2]), timeout=30)
    beat.stop()
    celery_processes.beat().wait_for_log("Beat leadership acquired")
    wait_for(lambda: all(_runs(r) for r in reviews), timeout=30)
    assert [len(_runs(r)) for r in reviews] == [1, 1, 1, 1]


def test_a_second_beat_stands_by_and_takes_over_when_the_first_dies(celery_processes):
    early = [_interval_review_due_in(4, name=f"early{i}") for i in range(20)]
    late = [_interval_review_due_in(14, name=f"late{i}") for i in range(20)]
    active = celery_processes.beat()
    active.wait_for_log("Beat leadership acquired")
    standby = celery_processes.beat()
    standby.wait_for_log("Beat standing by")
    assert _leaders() == 1

    wait_for(lambda: all(_runs(r) for r in early), timeout=30, what="early runs")
    active.kill()
    standby.wait_for_log("Beat leadership acquired", timeout=30)
    wait_for(lambda: all(_runs(r) for r in late), timeout=40, what="late runs")

    assert all(len(_runs(r)) == 1 for r in early + late)
    assert ScheduleExecution.objects.count() == 40
    assert _leaders() == 1


def test_a_critical_review_starts_before_a_backlog_of_low_ones(celery_worker_factory):
    lows = [make_review(name=f"low{i}", priority="low") for i in range(8)]
    critical = make_review(name="critical", priority="critical")
    low_runs = [services.review_trigger_on_demand(r.pk) for r in lows]
    critical_run = services.review_trigger_on_demand(critical.pk)  # queued last

    with celery_worker_factory():
        wait_for(
            lambda: ScheduleExecution.objects.filter(status=ExecutionStatus.SUCCEEDED).count() == 9,
            timeout=60,
            what="all runs",
        )

    critical_run.refresh_from_db()
    started = [ScheduleExecution.objects.get(pk=r.pk).started_at for r in low_runs]
    assert critical_run.started_at < min(started)


@pytest.fixture
def celery_worker_factory(transactional_db):
    from contextlib import contextmanager

    from celery.contrib.testing.worker import start_worker
    from django.conf import settings

    from scheduling import conf
    from sergas.celery import app

    review_runner.cache_clear()

    @contextmanager
    def factory():
        queues = [settings.CELERY_TASK_DEFAULT_QUEUE, conf.review_queue()]
        with start_worker(
            app,
            pool="solo",
            perform_ping_check=False,
            loglevel="WARNING",
            queues=queues,
            shutdown_timeout=30,
        ) as worker:
            yield worker

    return factory


def test_the_leadership_connection_has_postgresql_probe_a_silent_leader():
    """A leader cut off by the network keeps its lock until PostgreSQL notices it is gone:
    its connection sets the server's keepalive probes to the client's settings."""
    if not connection.settings_dict.get("HOST"):
        pytest.skip("keepalives do not apply on a unix socket")
    leadership = BeatLeadership(key=814_2026)
    try:
        assert leadership.hold()
        assert leadership._connection is not None
        shown = dict(
            leadership._connection.execute(
                "SELECT name, setting FROM pg_settings WHERE name LIKE 'tcp_keepalives_%'"
            ).fetchall()
        )
    finally:
        leadership.release()
    assert shown == {
        "tcp_keepalives_idle": "30",
        "tcp_keepalives_interval": "10",
        "tcp_keepalives_count": "3",
    }


def test_the_leadership_connection_options_follow_the_database_options():
    defaults = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2}
    bounded = leadership_connection_options({**defaults, "keepalives_count": 3})
    assert bounded["options"] == (
        "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3"
    )
    assert bounded["tcp_user_timeout"] == 11_000  # 5 + 2 x 3 seconds of silence
    explicit = {**defaults, "keepalives_count": 3, "tcp_user_timeout": 4000}
    assert leadership_connection_options(explicit)["tcp_user_timeout"] == 4000
    # Keepalives off, or not all set: the server keeps its own settings.
    assert "options" not in leadership_connection_options(
        {**defaults, "keepalives_count": 3, "keepalives": 0}
    )
    assert "options" not in leadership_connection_options(defaults)
    # statement_timeout and the like stay off the lock connection.
    assert "options" not in leadership_connection_options({"options": "-c statement_timeout=5"})


def test_a_stop_signal_while_the_scheduler_is_built_stops_beat_at_once():
    """SIGTERM during start-up (``make run`` stopped at once, a deploy rolled back) used to
    reach Celery's handler mid-build: beat logged an error and ran on until SIGKILL."""
    calls: list[int] = []

    def celery_handler(signum, _frame):
        calls.append(signum)

    class SignalledWhileBuilding(ReviewScheduler):
        def setup_schedule(self) -> None:
            signal.raise_signal(signal.SIGTERM)
            super().setup_schedule()

    previous = signal.signal(signal.SIGTERM, celery_handler)
    try:
        with pytest.raises(SystemExit) as stopped:
            SignalledWhileBuilding(app=app)
        assert stopped.value.code == 0
        assert calls == []  # Celery's handler never ran against a half-built scheduler
        assert signal.getsignal(signal.SIGTERM) is celery_handler  # and is back in place
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_beat_stopped_right_after_it_starts_exits_without_a_kill(celery_processes):
    beat = celery_processes.beat()
    beat.wait_for_log("beat: Starting...")
    os.killpg(beat.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30  # a hang bound, not a timing: stuck beat runs forever
    while beat.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert beat.process.poll() is not None, beat.log()[-3000:]
    assert "Cannot add entry" not in beat.log()
