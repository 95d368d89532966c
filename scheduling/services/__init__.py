"""Every write of the scheduling domain."""

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
from scheduling.services.runs import (
    BatchClaim,
    batch_claim,
    batch_fail,
    batch_record,
    batch_review,
    batches_reap_expired,
    execution_claim,
    execution_continue,
    execution_end_with_session,
    runs_recover_interrupted,
)
from scheduling.services.sync import (
    ReconcileReport,
    periodic_task_sync,
    schedules_reconcile,
)

__all__ = [
    "EDITABLE_FIELDS",
    "BatchClaim",
    "BrokerLossRecovery",
    "DispatchResult",
    "ReconcileReport",
    "batch_claim",
    "batch_fail",
    "batch_record",
    "batch_review",
    "batches_reap_expired",
    "execution_claim",
    "execution_continue",
    "execution_end_with_session",
    "executions_publish",
    "periodic_task_sync",
    "publish_on_commit",
    "review_create",
    "review_delete",
    "review_pause",
    "review_resume",
    "review_trigger_on_demand",
    "review_update",
    "review_validate",
    "reviews_dispatch_due",
    "runs_recover_interrupted",
    "runs_resend_after_broker_loss",
    "schedules_reconcile",
    "seconds_until_next_due",
]
