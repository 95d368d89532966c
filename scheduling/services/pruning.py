"""Pruning what finished runs leave behind (docs/operations.md, "Housekeeping").

Two retentions, both counted from a run's end: its batches (``BATCH_RETENTION_DAYS``,
30: the lease history an operator looks at while a run is news) and the run itself
with its per-account results (``EXECUTION_RETENTION_DAYS``, 400: a year of findings to
compare against). The audit trail keeps its own record of both for seven years.

Rows go in chunks, each in one transaction with one audit event naming what it removed,
so an interrupted prune keeps what it did and a busy table is never locked for long.
Only finished runs are touched: nothing locks their rows any more (lock order, docs/
architecture.md: their review, session and batches are no longer taken by any path).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEventType
from audit.services import SYSTEM_ACTOR, audit_event_record
from scheduling import conf
from scheduling.models import AccountReview, RunBatch, ScheduleExecution
from scheduling.selectors import batches_prunable, executions_prunable

PRUNED_RESOURCE = "schedule:history"


@dataclass
class PruneResult:
    """What a prune removed (or, ``dry_run``, would remove)."""

    what: str
    cutoff: datetime | None
    count: int = 0
    dry_run: bool = False


def run_batches_prune(
    *,
    older_than_days: int | None = None,
    dry_run: bool = False,
    chunk_size: int = 1000,
    actor: str = SYSTEM_ACTOR,
    on_progress: Callable[[int], None] | None = None,
) -> PruneResult:
    """Delete the batches of runs that finished more than ``older_than_days`` ago (their
    results stay, without the batch they came from). 0 days: keep them all."""
    days = conf.batch_retention_days() if older_than_days is None else older_than_days
    cutoff = _cutoff(days)
    result = PruneResult("run batches", cutoff, dry_run=dry_run)
    if cutoff is None:
        return result
    if dry_run:
        result.count = batches_prunable(cutoff).count()
        return result
    while ids := list(batches_prunable(cutoff).values_list("pk", flat=True)[:chunk_size]):
        with transaction.atomic():
            AccountReview.objects.filter(batch_id__in=ids).update(batch=None)
            deleted, _ = RunBatch.objects.filter(pk__in=ids).delete()
            _record(actor, "run_batches_pruned", deleted, cutoff, first=min(ids), last=max(ids))
        result.count += deleted
        if on_progress is not None:
            on_progress(deleted)
    return result


def executions_prune(
    *,
    older_than_days: int | None = None,
    dry_run: bool = False,
    chunk_size: int = 100,
    actor: str = SYSTEM_ACTOR,
    on_progress: Callable[[int], None] | None = None,
) -> PruneResult:
    """Delete runs that finished more than ``older_than_days`` ago, with their batches and
    per-account results. 0 days: keep them all."""
    days = conf.execution_retention_days() if older_than_days is None else older_than_days
    cutoff = _cutoff(days)
    result = PruneResult("runs and their results", cutoff, dry_run=dry_run)
    if cutoff is None:
        return result
    if dry_run:
        result.count = executions_prunable(cutoff).count()
        return result
    while ids := list(executions_prunable(cutoff).values_list("pk", flat=True)[:chunk_size]):
        with transaction.atomic():
            results, _ = AccountReview.objects.filter(execution_id__in=ids).delete()
            RunBatch.objects.filter(execution_id__in=ids).delete()
            deleted, _ = ScheduleExecution.objects.filter(pk__in=ids).delete()
            _record(actor, "executions_pruned", deleted, cutoff, results=results)
        result.count += deleted
        if on_progress is not None:
            on_progress(deleted)
    return result


def _cutoff(days: int) -> datetime | None:
    if days < 0:
        raise ValueError("a retention is zero (keep everything) or a number of days")
    return timezone.now() - timedelta(days=days) if days else None


def _record(actor: str, action: str, count: int, cutoff: datetime, **metadata: object) -> None:
    audit_event_record(
        event_type=AuditEventType.SCHEDULE,
        action=action,
        actor=actor,
        resource=PRUNED_RESOURCE,
        metadata={"count": count, "finished_before": cutoff.isoformat(), **metadata},
    )
