"""The daily prune (docs/operations.md, "Housekeeping"): each app's own prune, in an
order where nothing removed is still needed by the next step. Every step works in
chunks, one transaction and one audit event each, so a prune stopped midway keeps what
it did and the next one goes on from there."""

from collections.abc import Callable
from dataclasses import dataclass

from access.services import idempotency_records_prune
from audit.services import SYSTEM_ACTOR
from scheduling.services.pruning import executions_prune, run_batches_prune
from sessions import conf as sessions_conf
from sessions.selectors import sessions_archivable
from sessions.services import sessions_cleanup_old


@dataclass(frozen=True)
class PruneStep:
    """What one step removed, or (dry run) would remove."""

    name: str
    count: int
    setting: str  # the retention that decides it, for the report


Progress = Callable[[str, int], None]  # (step name, rows just removed)


def housekeeping_prune(
    *, dry_run: bool = False, actor: str = SYSTEM_ACTOR, on_progress: Progress | None = None
) -> list[PruneStep]:
    def progress(name: str) -> Callable[[int], None] | None:
        return None if on_progress is None else (lambda count: on_progress(name, count))

    steps = []
    name = "runs and their results"
    result = executions_prune(dry_run=dry_run, actor=actor, on_progress=progress(name))
    steps.append(PruneStep(name, result.count, "SCHEDULING_EXECUTION_RETENTION_DAYS"))
    name = "batches of finished runs"
    result = run_batches_prune(dry_run=dry_run, actor=actor, on_progress=progress(name))
    steps.append(PruneStep(name, result.count, "SCHEDULING_BATCH_RETENTION_DAYS"))
    steps.append(_sessions_archive(dry_run=dry_run, actor=actor, on_progress=progress))
    name = "idempotency records"
    count = idempotency_records_prune(dry_run=dry_run, actor=actor)
    if on_progress is not None and count:
        on_progress(name, count)
    steps.append(PruneStep(name, count, "API_IDEMPOTENCY_TTL_HOURS"))
    return steps


def housekeeping_prune_size() -> dict[str, int]:
    """How many rows each step would remove now (for a progress bar's totals)."""
    return {step.name: step.count for step in housekeeping_prune(dry_run=True)}


def _sessions_archive(
    *, dry_run: bool, actor: str, on_progress: Callable[[str], Callable[[int], None] | None]
) -> PruneStep:
    name = "finished sessions archived (checkpoints but the last dropped)"
    setting = "SESSION_ARCHIVE_AFTER_DAYS"
    days = sessions_conf.archive_after_days()
    if days <= 0:
        return PruneStep(name, 0, setting)
    if dry_run:
        return PruneStep(name, len(sessions_archivable(older_than_days=days)), setting)
    advance = on_progress(name)
    result = sessions_cleanup_old(
        older_than_days=days,
        actor=actor,
        on_progress=None if advance is None else (lambda _session_id: advance(1)),
    )
    return PruneStep(name, len(result.session_ids), setting)
