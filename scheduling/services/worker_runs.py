"""The in-process runner's side of a batch (task ``run_review_batch``): run the runner on
a leased batch and record what it returns, as an agent would through the API."""

import time

from scheduling.exceptions import LeaseLost
from scheduling.runners import review_runner
from scheduling.services.batches import BatchLease, batch_fail_quietly, batch_record
from sessions.hook_events import HookEvent
from sessions.hooks import AgentHooks
from sessions.models import HookName

NO_RUNNER = "no in-process review runner is configured (SERGAS_REVIEW_RUNNER is empty)"


def batch_review(lease: BatchLease) -> bool:
    """Review the leased batch with the configured runner and record the result; False
    if the lease was lost meanwhile (nothing recorded). A runner that raises fails the
    batch and its run, and the error is raised again."""
    runner = review_runner()
    actor = lease.run.actor
    if runner is None:
        batch_fail_quietly(lease, NO_RUNNER, actor=actor)
        return False
    hooks = AgentHooks(runner.agent_name, session_id=lease.run.session_id, actor=actor)
    task = hooks.pre_task("review_batch", metadata={"batch": lease.index})
    try:
        result = runner.review_batch(lease.run, lease.accounts)
    except Exception as exc:
        hooks.post_task(task, error=exc)
        batch_fail_quietly(lease, f"{type(exc).__name__}: {exc}", actor=actor)
        raise
    finished = HookEvent(
        hook=HookName.POST_TASK,
        name="review_batch",
        session_id=lease.run.session_id,
        invocation_id=task.invocation_id,
        duration_seconds=time.monotonic() - task.started,
        metadata={"batch": lease.index},
    )
    try:
        batch_record(
            lease.batch_id,
            lease.token,
            results=result.results,
            events=[*result.events, finished],
            counters=result.counters,
            agent=runner.agent_name,
            actor=actor,
        )
    except LeaseLost:
        return False  # superseded, cancelled or stopped: whoever holds it now records
    return True
