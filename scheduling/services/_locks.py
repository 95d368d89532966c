"""Locking the scheduling rows, always in the project's lock order (``kernel.locking``):
review -> session -> run -> batch.

A path that may finish a run locks the run's review first (``FOR KEY SHARE``: finishing
inserts the next attempt, whose foreign key takes that lock anyway, and stamps
``last_run_at``), then the session, then the run, then its batches. Batches of one run
are locked together only by the holder of the run's lock; any other path locks one
batch, or several with ``SKIP LOCKED``, so two bulk lockers never wait on each other.
"""

from django.db import connection

from kernel.locking import LockRank, rows_locked
from scheduling.models import OPEN_BATCH_STATUSES, RunBatch, ScheduledReview, ScheduleExecution
from sessions.services import lock_session


def review_lock(review_id: int, *, for_delete: bool = False) -> ScheduledReview | None:
    """Lock a review for its own services: ``FOR NO KEY UPDATE`` (which lets runs of the
    review finish meanwhile), or ``FOR UPDATE`` to delete it."""
    rows_locked(LockRank.REVIEW, [review_id])
    queryset = ScheduledReview.objects.select_for_update(no_key=not for_delete)
    try:
        return queryset.filter(pk=review_id).first()
    except (ValueError, TypeError):
        return None


def review_lock_shared(review_id: int | None) -> None:
    """``FOR KEY SHARE`` on the review of a run that may finish in this transaction."""
    if review_id is None:
        return
    rows_locked(LockRank.REVIEW, [review_id])
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM scheduled_review WHERE id = %s FOR KEY SHARE", [review_id])


def run_lock(execution_id: object) -> ScheduleExecution | None:
    """Lock a run with what comes before it: its review (shared), its session, then the
    run itself; None if it does not exist. A run's review only ever goes away (deleted)
    and its session, once set, never changes, so what was read before the locks holds
    after them, except that a queued run may be given a session by its preparation
    (``prepared``) meanwhile: a caller that finds ``session_id`` set on a run it read
    without one must not lock that session now, but start again."""
    try:
        ids = (
            ScheduleExecution.objects.filter(pk=execution_id)
            .values_list("review_id", "session_id")
            .first()
        )
    except (ValueError, TypeError):  # not a UUID
        return None
    if ids is None:
        return None
    review_id, session_id = ids
    review_lock_shared(review_id)
    if session_id is not None:
        lock_session(session_id, with_state=False)
    rows_locked(LockRank.RUN, [str(execution_id)])
    return (
        ScheduleExecution.objects.select_for_update(of=("self",))
        .select_related("review", "session")
        .filter(pk=execution_id)
        .first()
    )


def batch_lock(batch_id: int) -> RunBatch | None:
    """Lock one batch alone (claims, leases, releases: they change nothing else)."""
    rows_locked(LockRank.BATCH, [batch_id])
    return RunBatch.objects.select_for_update(of=("self",)).filter(pk=batch_id).first()


def batch_lock_with_run(batch_id: int) -> tuple[ScheduleExecution | None, RunBatch | None]:
    """Lock a batch with everything before it (review, session, run): for the paths that
    record it or fail it, and so may finish its run. When it is the run's last open
    batch, the run buffered behind this one (which finishing releases) is locked too,
    before the batch."""
    from scheduling.services.run_end import held_run_lock

    execution_id = RunBatch.objects.filter(pk=batch_id).values_list("execution_id", flat=True)
    execution_id = execution_id.first()
    if execution_id is None:
        return None, None
    execution = run_lock(execution_id)
    if execution is None:
        return None, None
    others_open = (
        execution.batches.filter(status__in=OPEN_BATCH_STATUSES).exclude(pk=batch_id).exists()
    )
    if not others_open:
        held_run_lock(execution)
    return execution, batch_lock(batch_id)


def run_batches_locked(execution: ScheduleExecution) -> None:
    """Record that the run's batches are about to be locked in bulk (by its lock holder)."""
    rows_locked(LockRank.BATCH, [f"batches of run {execution.pk}"])
