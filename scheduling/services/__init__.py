"""Every write of the scheduling domain, one module per sub-domain:

- ``reviews``: scheduled reviews (create, change, pause, resume, delete, trigger);
- ``dispatch``, ``outbox``, ``sync``: due reviews into runs, runs onto the broker, the
  beat entries kept in step;
- ``prepared``: runs due soon prepared in bulk ahead of their time, started in bulk;
- ``run_start``, ``run_end``, ``run_sessions``: a run's start on a worker, its end, and
  how it follows its session (resume, recovery, an outside end);
- ``batches``: a batch's fenced lease (claim, renew, record, give back, fail, expire);
- ``work_queue``: the agents' side of batches (``/api/v1/work``);
- ``worker_runs``: the in-process runner's side of batches;
- ``results``: what a batch found, kept per account.

Locks follow ``kernel.locking`` (review, session, run, batch) everywhere.
"""

from scheduling.services.batches import (
    WORKER_ACTOR,
    BatchLease,
    batch_claim,
    batch_fail,
    batch_lease_renew,
    batch_record,
    batch_release,
    batches_expire,
)
from scheduling.services.dispatch import (
    DispatchResult,
    reviews_dispatch_due,
    seconds_until_next_due,
)
from scheduling.services.outbox import (
    BrokerLossRecovery,
    executions_publish,
    publish_on_commit,
    runs_resend_after_broker_loss,
)
from scheduling.services.prepared import (
    runs_prepare,
    runs_prepare_request,
    runs_start_prepared,
)
from scheduling.services.reviews import (
    EDITABLE_FIELDS,
    review_create,
    review_delete,
    review_pause,
    review_resume,
    review_trigger_on_demand,
    review_update,
    review_validate,
)
from scheduling.services.run_end import run_finish
from scheduling.services.run_sessions import (
    queue_runs_keep_alive,
    run_follow_session,
    run_of_session_lock_ahead,
    runs_of_sessions_lock_ahead,
    runs_recover_interrupted,
)
from scheduling.services.run_start import execution_claim, run_hand_out_pending
from scheduling.services.sync import (
    ReconcileReport,
    periodic_task_sync,
    schedules_reconcile,
)
from scheduling.services.work_queue import (
    work_claim,
    work_claim_wait,
    work_complete,
    work_fail,
    work_heartbeat,
    work_queue_check,
    work_release,
)
from scheduling.services.worker_runs import batch_review

__all__ = [
    "EDITABLE_FIELDS",
    "WORKER_ACTOR",
    "BatchLease",
    "BrokerLossRecovery",
    "DispatchResult",
    "ReconcileReport",
    "batch_claim",
    "batch_fail",
    "batch_lease_renew",
    "batch_record",
    "batch_release",
    "batch_review",
    "batches_expire",
    "execution_claim",
    "executions_publish",
    "periodic_task_sync",
    "publish_on_commit",
    "queue_runs_keep_alive",
    "review_create",
    "review_delete",
    "review_pause",
    "review_resume",
    "review_trigger_on_demand",
    "review_update",
    "review_validate",
    "reviews_dispatch_due",
    "run_finish",
    "run_follow_session",
    "run_hand_out_pending",
    "run_of_session_lock_ahead",
    "runs_of_sessions_lock_ahead",
    "runs_prepare",
    "runs_prepare_request",
    "runs_recover_interrupted",
    "runs_resend_after_broker_loss",
    "runs_start_prepared",
    "schedules_reconcile",
    "seconds_until_next_due",
    "work_claim",
    "work_claim_wait",
    "work_complete",
    "work_fail",
    "work_heartbeat",
    "work_queue_check",
    "work_release",
]
