"""Drill: beat SIGKILLed again and again around the due times of reviews.

Eight reviews come due two seconds apart; beat is killed four times, each time staying
dead for a while, so some runs come due while no beat runs and some are dispatched by a
beat that is killed right after. Runs are dispatched at their time, without a lead, the
harshest setting. Every run must happen exactly once: none missed, none duplicated.
"""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from scheduling.models import ExecutionStatus, ScheduleExecution
from tests.scheduling.factories import make_review
from tests.scheduling.test_runs import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.drill]

REVIEWS = 8
SPACING_SECONDS = 2
# (seconds after the start at which beat is killed, seconds it stays dead)
KILLS = [(3.0, 1.5), (7.5, 2.5), (12.0, 1.0), (15.5, 3.0)]
NO_LEAD = {"SCHEDULING_DISPATCH_LEAD_SECONDS": "0"}


def test_beat_killed_around_due_times_neither_misses_nor_duplicates_a_run(
    celery_processes, drill_report
):
    started = time.monotonic()
    first_due = timezone.now() + timedelta(seconds=4)
    reviews = [
        make_review(
            name=f"drill: beat killed {i}",
            schedule_type="interval",
            interval_minutes=60,
            starts_at=first_due + timedelta(seconds=i * SPACING_SECONDS),
        )
        for i in range(REVIEWS)
    ]
    celery_processes.worker("--pool", "solo")
    beat = celery_processes.beat(**NO_LEAD)
    drill_report.count("beats started")
    for kill_at, dead_for in KILLS:
        time.sleep(max(0.0, kill_at - (time.monotonic() - started)))
        beat.kill()
        drill_report.count("beats killed (SIGKILL)")
        time.sleep(dead_for)
        beat = celery_processes.beat(**NO_LEAD)
        drill_report.count("beats started")

    wait_for(
        lambda: (
            ScheduleExecution.objects.filter(status=ExecutionStatus.SUCCEEDED).count() >= REVIEWS
        ),
        timeout=90,
        what="every review's run",
    )
    time.sleep(2)  # a duplicate, if any, would be dispatched by now
    beat.stop()

    runs = {r.pk: list(ScheduleExecution.objects.filter(review=r)) for r in reviews}
    late = [
        run
        for review_runs in runs.values()
        for run in review_runs
        if (run.enqueued_at - run.nominal_time).total_seconds() > 0.5
    ]
    drill_report.note("reviews due", REVIEWS)
    drill_report.note("runs per review", [len(r) for r in runs.values()])
    drill_report.note(
        "run statuses", sorted({run.status for review_runs in runs.values() for run in review_runs})
    )
    drill_report.note("runs caught up by a restarted beat (published > 0.5 s late)", len(late))
    drill_report.note(
        "publish delay per run (s)",
        [
            round((run.enqueued_at - run.nominal_time).total_seconds(), 1)
            for review_runs in runs.values()
            for run in review_runs
        ],
    )

    for review in reviews:
        [run] = runs[review.pk]
        assert run.nominal_time == review.starts_at
        assert run.status == ExecutionStatus.SUCCEEDED
    assert not ScheduleExecution.objects.filter(status=ExecutionStatus.MISSED).exists()
