import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.timezone import now
from django_celery_beat.models import PeriodicTask


class ScheduleType(models.TextChoices):
    DAILY = "daily"
    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"
    MONTHLY = "monthly"
    CRON = "cron"
    INTERVAL = "interval"
    ONE_TIME = "one_time"


class SchedulePriority(models.TextChoices):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


# Celery message priority on Redis, where 0 is served first. RabbitMQ serves the highest
# number first: scheduling.publishing turns these round for it.
PRIORITY_MESSAGE_LEVEL = {
    SchedulePriority.CRITICAL: 0,
    SchedulePriority.HIGH: 3,
    SchedulePriority.MEDIUM: 6,
    SchedulePriority.LOW: 9,
}


# A review's batches are executed by the in-process runner of the Celery workers, or by
# agents long-polling a named work queue over the API ("queue:<name>").
WORKER_EXECUTOR = "worker"
QUEUE_EXECUTOR_PREFIX = "queue:"
QUEUE_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
EXECUTOR_PATTERN = rf"^(worker|queue:{QUEUE_NAME_PATTERN})$"


def queue_of(executor: str) -> str:
    """The work queue an executor names, or "" for the in-process runner."""
    return executor.removeprefix(QUEUE_EXECUTOR_PREFIX) if executor != WORKER_EXECUTOR else ""


def executor_of(queue: str) -> str:
    """The executor whose batches carry ``queue`` (the inverse of ``queue_of``)."""
    return f"{QUEUE_EXECUTOR_PREFIX}{queue}" if queue else WORKER_EXECUTOR


def priority_rank(priority: str) -> int:
    """0 for critical, 3 for low: the order in which work is handed out."""
    return SchedulePriority.values.index(priority)


# ``priority_rank`` in SQL, over a ``priority`` column (most urgent first).
PRIORITY_RANK = models.Case(
    *(
        models.When(priority=priority, then=models.Value(rank))
        for rank, priority in enumerate(SchedulePriority.values)
    ),
    output_field=models.IntegerField(),
)


class OverlapPolicy(models.TextChoices):
    SKIP = "skip", "Skip the new run while one is running"
    BUFFER_ONE = "buffer_one", "Queue one run behind the running one"
    ALLOW = "allow", "Run concurrently"


class ScheduledReview(models.Model):
    """A recurring (or one-time) account review: when it runs, for which accounts, how.

    ``next_run_at`` (UTC) is computed from the review itself by ``scheduling.recurrence``;
    the dispatcher in beat runs what is due from it. Each review owns exactly one
    django-celery-beat ``PeriodicTask`` kept in step by the services.
    """

    name = models.CharField(max_length=200)
    owner_id = models.CharField(max_length=128)
    schedule_type = models.CharField(max_length=16, choices=ScheduleType.choices)
    # Presets: time of day in ``timezone``; weekday (0 = Monday) for weekly and biweekly;
    # day of month (1-31, clamped to the month's last day) for monthly.
    time_of_day = models.TimeField(null=True, blank=True)
    weekday = models.PositiveSmallIntegerField(null=True, blank=True)
    day_of_month = models.PositiveSmallIntegerField(null=True, blank=True)
    cron_expression = models.CharField(max_length=200, blank=True, default="")
    interval_minutes = models.PositiveIntegerField(null=True, blank=True)
    scheduled_time = models.DateTimeField(null=True, blank=True)
    # Anchor of interval and biweekly schedules; nothing runs before it.
    starts_at = models.DateTimeField(default=now)
    timezone = models.CharField(max_length=64, default="UTC")
    priority = models.CharField(
        max_length=8, choices=SchedulePriority.choices, default=SchedulePriority.MEDIUM
    )
    enabled = models.BooleanField(default=True)
    max_retries = models.PositiveSmallIntegerField(default=3)
    retry_delay_minutes = models.PositiveIntegerField(default=5)
    overlap_policy = models.CharField(
        max_length=16, choices=OverlapPolicy.choices, default=OverlapPolicy.SKIP
    )
    # A run whose time passed while nothing could dispatch it (beat down, review paused)
    # still runs if it is at most this old; older ones are recorded as missed.
    catch_up_window_minutes = models.PositiveIntegerField(default=30)
    account_filter = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    executor = models.CharField(
        max_length=70,
        default=WORKER_EXECUTOR,
        db_default=WORKER_EXECUTOR,
        help_text='"worker" (the in-process runner) or "queue:<name>" (agents over the API).',
    )
    paused_note = models.TextField(blank=True, default="")
    paused_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)  # last run that finished
    next_run_at = models.DateTimeField(null=True, blank=True)
    periodic_task = models.OneToOneField(
        PeriodicTask, null=True, blank=True, on_delete=models.SET_NULL, related_name="review"
    )
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        db_table = "scheduled_review"
        ordering = ["name", "id"]
        indexes = [
            # The dispatcher's scan: enabled reviews by due time.
            models.Index(
                fields=["next_run_at"],
                name="scheduled_review_due_idx",
                condition=models.Q(enabled=True),
            ),
            models.Index(fields=["owner_id"], name="scheduled_review_owner_idx"),
            # Which reviews hand out work on a queue (agents' claims check their queue).
            models.Index(
                fields=["executor"],
                name="scheduled_review_queue_idx",
                condition=~models.Q(executor="worker"),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(schedule_type__in=ScheduleType.values),
                name="scheduled_review_type_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(priority__in=SchedulePriority.values),
                name="scheduled_review_priority_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(overlap_policy__in=OverlapPolicy.values),
                name="scheduled_review_overlap_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(executor__regex=EXECUTOR_PATTERN),
                name="scheduled_review_executor_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def queue(self) -> str:
        return queue_of(self.executor)


class ExecutionStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYING = "retrying"  # this attempt failed; the next attempt is queued
    SKIPPED_OVERLAP = "skipped_overlap"
    MISSED = "missed"


ACTIVE_EXECUTION_STATUSES = frozenset({ExecutionStatus.QUEUED, ExecutionStatus.RUNNING})
FINISHED_EXECUTION_STATUSES = frozenset(
    {
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.FAILED,
        ExecutionStatus.RETRYING,
        ExecutionStatus.SKIPPED_OVERLAP,
        ExecutionStatus.MISSED,
    }
)


class ExecutionTrigger(models.TextChoices):
    SCHEDULE = "schedule"
    ON_DEMAND = "on_demand"
    RETRY = "retry"
    BACKFILL = "backfill"


class ScheduleExecution(models.Model):
    """One attempt of one run of a review; the id doubles as the Celery task id.

    A run is identified by (review, nominal_time); its attempts by ``attempt``. The
    unique constraint makes a duplicated dispatch impossible and the conditional claim in
    ``execution_claim`` makes a redelivered message a no-op.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    review = models.ForeignKey(
        ScheduledReview, null=True, on_delete=models.SET_NULL, related_name="executions"
    )
    review_name = models.CharField(max_length=200)  # kept when the review is deleted
    nominal_time = models.DateTimeField()
    attempt = models.PositiveSmallIntegerField(default=1)
    trigger = models.CharField(
        max_length=16, choices=ExecutionTrigger.choices, default=ExecutionTrigger.SCHEDULE
    )
    status = models.CharField(
        max_length=16, choices=ExecutionStatus.choices, default=ExecutionStatus.QUEUED
    )
    priority = models.CharField(max_length=8, choices=SchedulePriority.choices)
    # Copied from the review when the run is created: a run keeps its executor.
    executor = models.CharField(max_length=70, default=WORKER_EXECUTOR, db_default=WORKER_EXECUTOR)
    # When the run may be published: the nominal time, a retry's delay, or NULL while a
    # buffered run waits for the running one (overlap policy buffer_one).
    due_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)  # message published
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    start_lag_ms = models.IntegerField(null=True, blank=True)
    duration_ms = models.PositiveBigIntegerField(null=True, blank=True)
    session = models.ForeignKey(
        "agent_sessions.AgentSession",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="executions",
    )
    accounts_processed = models.PositiveIntegerField(default=0)
    accounts_failed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=now)

    class Meta:
        db_table = "schedule_execution"
        ordering = ["-nominal_time", "-attempt"]
        constraints = [
            models.UniqueConstraint(
                fields=["review", "nominal_time", "attempt"],
                name="schedule_execution_run_attempt_uniq",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=ExecutionStatus.values),
                name="schedule_execution_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(trigger__in=ExecutionTrigger.values),
                name="schedule_execution_trigger_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["review", "-nominal_time"], name="schedule_exec_review_idx"),
            # The outbox: queued runs not yet published.
            models.Index(
                fields=["due_at"],
                name="schedule_exec_outbox_idx",
                condition=models.Q(status="queued", enqueued_at__isnull=True),
            ),
            # Overlap checks: the active runs of a review.
            models.Index(
                fields=["review", "status"],
                name="schedule_exec_active_idx",
                condition=models.Q(status__in=["queued", "running"]),
            ),
            models.Index(fields=["status", "-nominal_time"], name="schedule_exec_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.review_name} @ {self.nominal_time:%Y-%m-%d %H:%M} #{self.attempt}"

    @property
    def queue(self) -> str:
        return queue_of(self.executor)


class BatchStatus(models.TextChoices):
    PENDING = "pending"  # waiting to be claimed
    RUNNING = "running"  # leased to a worker or an agent
    DONE = "done"
    FAILED = "failed"  # its failure failed the run
    CANCELLED = "cancelled"  # its run ended first


OPEN_BATCH_STATUSES = (BatchStatus.PENDING, BatchStatus.RUNNING)


class RunBatch(models.Model):
    """One slice of a run's accounts: the unit of work a worker or an agent takes.

    A batch is leased with a fresh ``token`` until ``lease_expires_at``; its results are
    recorded only if the token still holds (fencing), in the same transaction as the
    session's metrics and checkpoint. A batch whose holder died goes back to pending
    (redelivery, lease expiry or session recovery) and runs again. Batches of a
    queue-executed run carry their ``queue`` and, copied from the run, what the queue
    hands them out by: ``rank`` (priority, critical first) and ``nominal_time``.
    """

    execution = models.ForeignKey(
        ScheduleExecution, on_delete=models.CASCADE, related_name="batches"
    )
    index = models.PositiveIntegerField()
    account_ids = ArrayField(models.CharField(max_length=128))
    status = models.CharField(
        max_length=16, choices=BatchStatus.choices, default=BatchStatus.PENDING
    )
    # Database defaults as well: code of the previous release, still running during a
    # deploy, inserts batches without these columns.
    queue = models.CharField(max_length=64, blank=True, default="", db_default="")  # workers
    rank = models.SmallIntegerField(default=0, db_default=0)  # no CHECK: no table scan
    nominal_time = models.DateTimeField(null=True, blank=True)
    token = models.UUIDField(null=True, blank=True)
    holder = models.CharField(max_length=200, blank=True, default="", db_default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    available_at = models.DateTimeField(null=True, blank=True)  # became claimable
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="", db_default="")  # the last failure
    # The answer to the complete that recorded it: a retry with the same token replays it.
    outcome = models.JSONField(null=True, blank=True)

    class Meta:
        db_table = "schedule_run_batch"
        ordering = ["execution", "index"]
        constraints = [
            models.UniqueConstraint(
                fields=["execution", "index"], name="schedule_run_batch_index_uniq"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=BatchStatus.values),
                name="schedule_run_batch_status_valid",
            ),
        ]
        indexes = [
            models.Index(
                fields=["execution", "status"],
                name="schedule_run_batch_open_idx",
                condition=models.Q(status__in=["pending", "running"]),
            ),
            models.Index(
                fields=["lease_expires_at"],
                name="schedule_run_batch_lease_idx",
                condition=models.Q(status="running"),
            ),
            # The work queue: pending batches of a queue in the order they are handed out.
            models.Index(
                fields=["queue", "rank", "nominal_time", "execution", "index"],
                name="schedule_run_batch_queue_idx",
                condition=models.Q(status="pending") & ~models.Q(queue=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.execution_id} batch {self.index} ({self.status})"


class ResultOutcome(models.TextChoices):
    REVIEWED = "reviewed"
    FAILED = "failed"
    SKIPPED = "skipped"


class AccountReview(models.Model):
    """What one run found for one account: the outcome, the recommendations made
    (``scheduling.results.Recommendation``: kind, title, detail, priority, confidence),
    the error, the time and tokens it took, and which agent did it.

    Written with its batch, in the batch's recording transaction, never changed.
    """

    execution = models.ForeignKey(
        ScheduleExecution, on_delete=models.CASCADE, related_name="account_reviews"
    )
    batch = models.ForeignKey(
        RunBatch, null=True, on_delete=models.SET_NULL, related_name="account_reviews"
    )
    review_id = models.BigIntegerField(null=True, blank=True)  # kept when it is deleted
    session_id = models.CharField(max_length=128, blank=True, default="")
    account_id = models.CharField(max_length=128)
    outcome = models.CharField(max_length=16, choices=ResultOutcome.choices)
    recommendations = models.JSONField(default=list, blank=True)
    recommendations_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    agent = models.CharField(max_length=200)
    recorded_at = models.DateTimeField(default=now)

    class Meta:
        db_table = "schedule_account_review"
        ordering = ["execution", "account_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["execution", "account_id"], name="schedule_account_review_uniq"
            ),
            models.CheckConstraint(
                condition=models.Q(outcome__in=ResultOutcome.values),
                name="schedule_account_review_outcome_valid",
            ),
        ]
        indexes = [
            # An account's history across runs, newest first.
            models.Index(
                fields=["account_id", "-recorded_at", "-id"], name="schedule_acct_review_hist_idx"
            ),
            models.Index(fields=["execution", "outcome"], name="schedule_acct_review_outc_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} in {self.execution_id}: {self.outcome}"
