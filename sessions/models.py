from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.utils import timezone


class SessionStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = frozenset(
    {SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED}
)
ACTIVE_STATUSES = frozenset({SessionStatus.RUNNING, SessionStatus.PAUSED})

# The JSON columns a transition, a list or a summary never needs: keeps a 1 MB context
# off the wire (``QuerySet.defer(*STATE_COLUMNS)``).
STATE_COLUMNS = ("context", "metrics")
# A session's columns that grow with its accounts (a big review's are megabytes).
BULKY_COLUMNS = (*STATE_COLUMNS, "account_ids")


class SessionType(models.TextChoices):
    SCHEDULED = "scheduled"
    ON_DEMAND = "on_demand"
    MANUAL = "manual"
    RECOVERY = "recovery"


class HookName(models.TextChoices):
    """The six orchestrator hooks; tool and task hooks are the ``action`` of their audit
    events, the session hooks drive the lifecycle (``sessions.hooks``)."""

    PRE_TOOL = "pre_tool"
    POST_TOOL = "post_tool"
    PRE_TASK = "pre_task"
    POST_TASK = "post_task"
    SESSION_START = "session_start"
    SESSION_END = "session_end"


ACCOUNT_SET_KEYS = ("account_ids", "processed_accounts", "failed_accounts")


def searchable_context() -> models.Func:
    """``context`` without its account sets: the expression the context GIN indexes."""
    return models.Func(
        models.F("context"),
        *(models.Value(key) for key in ACCOUNT_SET_KEYS),
        arg_joiner=" - ",
        template="(%(expressions)s)",
        output_field=models.JSONField(),
    )


class AgentSession(models.Model):
    """One agent run: its lifecycle, typed context and metrics, one row per session.

    Every write goes through ``sessions.services`` and bumps ``version`` together with
    exactly one audit event carrying that version, so the audit trail of a session is
    complete exactly when it holds versions 1..version.
    """

    session_id = models.CharField(primary_key=True, max_length=128)
    orchestrator_id = models.CharField(max_length=128)
    status = models.CharField(
        max_length=16, choices=SessionStatus.choices, default=SessionStatus.PENDING
    )
    session_type = models.CharField(
        max_length=16, choices=SessionType.choices, default=SessionType.MANUAL
    )
    # SessionContext, validated by sessions.state; sets are stored as sorted lists.
    context = models.JSONField(default=dict)
    # SessionMetrics, validated by sessions.state.
    metrics = models.JSONField(default=dict)
    account_ids = ArrayField(models.CharField(max_length=128), default=list, blank=True)
    owner_id = models.CharField(max_length=128, blank=True, default="")
    # The actor that created it (``agent:<name>``, ``worker:run_review``, ...): the agent
    # tokens confined to their own sessions see exactly the sessions of their agent.
    created_by = models.CharField(max_length=200, blank=True, default="")
    version = models.PositiveBigIntegerField(default=1)
    error_message = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_checkpoint_sequence = models.PositiveIntegerField(default=0)
    recovery_count = models.PositiveIntegerField(default=0)
    # The checkpoint the last recovery restored (None: recovered without a checkpoint).
    recovered_from_sequence = models.PositiveIntegerField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    # Written when the session ends (``sessions.summary``): duration, events, errors.
    summary = models.JSONField(null=True, blank=True)

    class Meta:
        db_table = "agent_session"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status"], name="agent_session_status_idx"),
            models.Index(fields=["orchestrator_id"], name="agent_session_orch_idx"),
            models.Index(fields=["owner_id"], name="agent_session_owner_idx"),
            models.Index(fields=["created_at"], name="agent_session_created_idx"),
            models.Index(fields=["created_by", "created_at"], name="agent_session_creator_idx"),
            models.Index(fields=["updated_at"], name="agent_session_updated_idx"),
            # The dashboard's live list: active sessions, most recently started first.
            models.Index(
                models.F("started_at").desc(nulls_last=True),
                models.F("session_id").desc(),
                name="agent_session_active_idx",
                condition=models.Q(status__in=["running", "paused"]),
            ),
            # Outcomes per day (dashboard) and archiving old finished sessions.
            models.Index(
                fields=["finished_at"],
                name="agent_session_finished_idx",
                condition=models.Q(status__in=["completed", "failed", "cancelled"]),
            ),
            # Stale detection scans running sessions by heartbeat.
            models.Index(
                fields=["last_heartbeat_at"],
                name="agent_session_running_hb_idx",
                condition=models.Q(status="running"),
            ),
            # Containment search over the context, without its account sets: a megabyte of
            # account ids in a GIN would make every write of a big session re-index them
            # all (no update is HOT while the context is indexed). Accounts are searched
            # through SessionAccount instead. Query it with ``searchable_context()``.
            GinIndex(
                OpClass(searchable_context(), name="jsonb_path_ops"),
                name="agent_session_context_gin",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=SessionStatus.values),
                name="agent_session_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(session_type__in=SessionType.values),
                name="agent_session_type_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.session_id} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class SessionAccount(models.Model):
    """Which sessions review an account: the index behind "sessions of account X".

    Kept by the session services whenever ``account_ids`` changes (in practice at
    creation), so a session's other writes never touch it.
    """

    session = models.ForeignKey(AgentSession, on_delete=models.CASCADE, related_name="+")
    account_id = models.CharField(max_length=128)

    class Meta:
        db_table = "agent_session_account"
        constraints = [
            models.UniqueConstraint(
                fields=["account_id", "session"], name="agent_session_account_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} in {self.session_id}"


class SessionCheckpoint(models.Model):
    """A durable snapshot of a session's context and metrics. Rows are never updated;
    only the oldest beyond ``CHECKPOINTS_KEPT`` are pruned."""

    session = models.ForeignKey(AgentSession, on_delete=models.CASCADE, related_name="checkpoints")
    sequence = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=SessionStatus.choices)
    context = models.JSONField()
    metrics = models.JSONField()
    size_bytes = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "agent_session_checkpoint"
        ordering = ["session", "-sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "sequence"], name="agent_session_checkpoint_seq_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.session_id} #{self.sequence}"
