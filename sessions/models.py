import uuid
from typing import Any

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

# The JSON columns a transition, a list or a summary never needs (``QuerySet.defer``).
STATE_COLUMNS = ("stored_context", "stored_metrics")
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
        models.F("stored_context"),
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
    # The small fields of SessionContext and SessionMetrics (``sessions.state``): the
    # account sets live in SessionProgress, ``account_ids`` in its column, processing
    # times in SessionTimes; ``context``/``metrics`` compose the whole (docs/architecture.md).
    # A row the previous release wrote still holds everything, and is read as such.
    stored_context = models.JSONField(default=dict, db_column="context")
    stored_metrics = models.JSONField(default=dict, db_column="metrics")
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
    # Sizes of the account sets (SessionProgress rows), kept by the services.
    processed_count = models.PositiveIntegerField(default=0, db_default=0)
    failed_count = models.PositiveIntegerField(default=0, db_default=0)
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

    # The whole context and metrics, composed in PostgreSQL on first use (one query).
    # Setting one stores it whole in the row, the previous release's form: reads take it
    # as it is, and the session's next write through the services moves its sets out.
    @property
    def context(self) -> dict[str, Any]:
        return self._composed_state()[0]

    @context.setter
    def context(self, value: dict[str, Any]) -> None:
        self.stored_context = value
        self.state_composed(value, self.__dict__.get("_composed", (None, None))[1])

    @property
    def metrics(self) -> dict[str, Any]:
        return self._composed_state()[1]

    @metrics.setter
    def metrics(self, value: dict[str, Any]) -> None:
        self.stored_metrics = value
        self.state_composed(self.__dict__.get("_composed", (None, None))[0], value)

    def state_composed(
        self, context: dict[str, Any] | None, metrics: dict[str, Any] | None
    ) -> None:
        """Give the instance its whole context and metrics, composed already (a read that
        composed them in its query, the cache); None leaves a half to compose on use."""
        self._composed = (context, metrics)

    def _composed_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        composed = self.__dict__.get("_composed", (None, None))
        if composed[0] is None or composed[1] is None:
            from sessions.state_read import session_state_read

            read = session_state_read(self.session_id)
            composed = (
                read[0] if composed[0] is None else composed[0],
                read[1] if composed[1] is None else composed[1],
            )
            self._composed = composed
        return composed

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__.pop("_composed", None)
        super().refresh_from_db(*args, **kwargs)


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
    """A durable checkpoint of a session's context and metrics. Rows are never updated;
    only the oldest beyond ``CHECKPOINTS_KEPT`` are pruned.

    The row keeps the small fields; the account sets, the account list and the processing
    times as of ``sequence`` are the SessionProgress, SessionAccountList and SessionTimes
    rows of sequence <= ``sequence``. A checkpoint of the previous release holds its whole
    state in the row (its context has ``processed_accounts``)."""

    session = models.ForeignKey(AgentSession, on_delete=models.CASCADE, related_name="checkpoints")
    sequence = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=SessionStatus.choices)
    stored_context = models.JSONField(db_column="context")
    stored_metrics = models.JSONField(db_column="metrics")
    size_bytes = models.PositiveIntegerField()
    # The session's account set sizes at this checkpoint (recovery restores them).
    processed_count = models.PositiveIntegerField(default=0, db_default=0)
    failed_count = models.PositiveIntegerField(default=0, db_default=0)
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

    @property
    def context(self) -> dict[str, Any]:
        return self._composed_state()[0]

    @property
    def metrics(self) -> dict[str, Any]:
        return self._composed_state()[1]

    def _composed_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        if "_composed" not in self.__dict__:
            from sessions.state_read import checkpoint_state_read

            self._composed = checkpoint_state_read(self.session_id, self.sequence)
        return self._composed


class SessionProgress(models.Model):
    """Accounts that became processed or failed in one write to a session, stamped with
    the sequence of the checkpoint that will include them (the open sequence), so
    recovery to checkpoint N deletes the rows newer than N. An account is listed once
    per set (writes leave out what is already there); failed means failed and not
    processed. A batch of 10 accounts writes one row, whatever the session's size."""

    id = models.BigAutoField(primary_key=True)
    session = models.ForeignKey(AgentSession, on_delete=models.CASCADE, related_name="+")
    sequence = models.PositiveIntegerField()
    processed = ArrayField(models.TextField(), default=list)
    failed = ArrayField(models.TextField(), default=list)

    class Meta:
        db_table = "agent_session_progress"
        indexes = [
            models.Index(fields=["session", "sequence"], name="agent_session_progress_seq_idx")
        ]

    def __str__(self) -> str:
        return f"progress of {self.session_id} #{self.sequence}"


class SessionTimes(models.Model):
    """Account processing times appended to a session's metrics, one row per update, at
    the sequence of the checkpoint that will include them; read in ``id`` order."""

    id = models.BigAutoField(primary_key=True)
    session = models.ForeignKey(AgentSession, on_delete=models.CASCADE, related_name="+")
    sequence = models.PositiveIntegerField()
    times_ms = ArrayField(models.BigIntegerField())

    class Meta:
        db_table = "agent_session_time"
        indexes = [models.Index(fields=["session", "sequence"], name="agent_session_time_seq_idx")]

    def __str__(self) -> str:
        return f"{len(self.times_ms)} times of {self.session_id} #{self.sequence}"


class SessionAccountList(models.Model):
    """A session's ``account_ids`` as set at ``sequence``, written only when they change
    after creation (with the list they replaced at sequence 0), so checkpoints older than
    the change restore the old list. Without rows, the session's column is the list."""

    id = models.BigAutoField(primary_key=True)
    session = models.ForeignKey(AgentSession, on_delete=models.CASCADE, related_name="+")
    sequence = models.PositiveIntegerField()
    account_ids = ArrayField(models.TextField())

    class Meta:
        db_table = "agent_session_account_list"
        constraints = [
            models.UniqueConstraint(
                fields=["session", "sequence"], name="agent_session_account_list_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"accounts of {self.session_id} #{self.sequence}"


class ApprovalStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


# The outcomes an agent acts on: it is told of them until it has read them.
DECIDED_APPROVAL_STATUSES = frozenset(
    {ApprovalStatus.APPROVED, ApprovalStatus.REJECTED, ApprovalStatus.EXPIRED}
)


class SessionApproval(models.Model):
    """An agent's question to staff, which its session waits on (docs/api.md, "Approvals").

    ``options`` are the possible answers. An operator either approves with one of them
    (status ``approved``, ``decision`` the option picked) or rejects the request outright
    (``rejected``, no decision: the agent must not do what it asked about); a comment
    goes with either. A ``deadline`` needs a ``default_decision``: past it, the request
    is ``expired`` with that decision. Ending the session cancels what is still pending.
    The lifecycle is ``sessions.transitions.APPROVAL_TRANSITIONS``; every write goes
    through ``sessions.services.approvals`` with its audit event.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(AgentSession, on_delete=models.CASCADE, related_name="approvals")
    question = models.TextField()
    options = ArrayField(models.CharField(max_length=200))
    # What staff are shown to decide on: a recommendation, an email draft.
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING
    )
    # Null is "no option applies" (pending, rejected, cancelled); no option is blank.
    decision = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    comment = models.TextField(blank=True, default="")
    requested_by = models.CharField(max_length=200, blank=True, default="")
    decided_by = models.CharField(max_length=200, blank=True, default="")
    requested_at = models.DateTimeField(default=timezone.now)
    deadline = models.DateTimeField(null=True, blank=True)
    default_decision = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    decided_at = models.DateTimeField(null=True, blank=True)
    # When an agent first read the outcome (``GET /approvals/{id}``): until then its
    # heartbeats mention it.
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "agent_session_approval"
        ordering = ["-requested_at"]
        indexes = [
            models.Index(fields=["session", "requested_at"], name="agent_approval_session_idx"),
            # "Needs a decision" (oldest first) and the expiry scan.
            models.Index(
                fields=["requested_at"],
                name="agent_approval_open_idx",
                condition=models.Q(status="pending"),
            ),
            models.Index(
                fields=["deadline"],
                name="agent_approval_deadline_idx",
                condition=models.Q(status="pending", deadline__isnull=False),
            ),
            # What a heartbeat tells: open, or decided and not yet read by the agent.
            models.Index(
                fields=["session"],
                name="agent_approval_untold_idx",
                condition=models.Q(status="pending")
                | models.Q(
                    status__in=["approved", "rejected", "expired"], delivered_at__isnull=True
                ),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=ApprovalStatus.values),
                name="agent_approval_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(deadline__isnull=True)
                | models.Q(default_decision__isnull=False),
                name="agent_approval_deadline_has_default",
            ),
            models.CheckConstraint(
                condition=models.Q(status="pending", decided_at__isnull=True)
                | (~models.Q(status="pending") & models.Q(decided_at__isnull=False)),
                name="agent_approval_decided_at",
            ),
        ]

    def __str__(self) -> str:
        return f"approval {self.pk} of {self.session_id} ({self.status})"

    @property
    def approval_id(self) -> uuid.UUID:
        return self.pk

    @property
    def is_open(self) -> bool:
        return self.status == ApprovalStatus.PENDING
