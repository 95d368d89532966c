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
        ]

    def __str__(self) -> str:
        return self.name


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


class BatchStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"


class RunBatch(models.Model):
    """One slice of a run's accounts: the unit of work a worker takes (fan-out).

    A worker claims a pending batch with a conditional update and a fresh ``token``; its
    results are recorded only if the token still holds (fencing), in the same
    transaction as the session's metrics and checkpoint. A batch whose worker died goes
    back to pending (redelivery, lease expiry or session recovery) and runs again.
    """

    execution = models.ForeignKey(
        ScheduleExecution, on_delete=models.CASCADE, related_name="batches"
    )
    index = models.PositiveIntegerField()
    account_ids = ArrayField(models.CharField(max_length=128))
    status = models.CharField(
        max_length=16, choices=BatchStatus.choices, default=BatchStatus.PENDING
    )
    token = models.UUIDField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

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
        ]

    def __str__(self) -> str:
        return f"{self.execution_id} batch {self.index} ({self.status})"
