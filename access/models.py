from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone


class TokenScope(models.TextChoices):
    """What a token may do. read, write and admin each include the ones before them;
    work stands alone (an agent that only takes scheduled work needs nothing else)."""

    READ = "read"  # GET sessions, checkpoints, a session's audit trail
    WRITE = "write"  # create and drive sessions, report tool and task events
    ADMIN = "admin"  # search the whole audit trail (and, later, manage schedules)
    WORK = "work"  # take batches from work queues (/api/v1/work), report their results


# The scopes a granted scope implies.
SCOPE_IMPLIES: dict[str, frozenset[str]] = {
    TokenScope.READ: frozenset({TokenScope.READ}),
    TokenScope.WRITE: frozenset({TokenScope.READ, TokenScope.WRITE}),
    TokenScope.ADMIN: frozenset({TokenScope.READ, TokenScope.WRITE, TokenScope.ADMIN}),
    TokenScope.WORK: frozenset({TokenScope.WORK}),
}


class AgentToken(models.Model):
    """A bearer token of one agent: ``sgs_<prefix>_<secret>``.

    Only the SHA-256 of the whole token is stored; the token itself is shown once, when
    created. ``prefix`` is public and finds the row; the hash is compared in constant
    time. Tokens are revoked, never deleted, so the audit trail's actors stay resolvable.
    """

    name = models.CharField(max_length=64, help_text="The agent's name; audit actor agent:<name>.")
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = ArrayField(models.CharField(max_length=16, choices=TokenScope.choices))
    own_sessions_only = models.BooleanField(
        default=False,
        help_text="Sees and drives only the sessions its agent created (any of its tokens).",
    )
    queues = ArrayField(
        models.CharField(max_length=64),
        default=list,
        db_default="{}",  # the previous release inserts tokens without it
        blank=True,
        help_text="With the work scope: the work queues it may take from (empty: any).",
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=200, blank=True, default="")
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "agent_token"
        ordering = ["name", "-created_at"]
        indexes = [models.Index(fields=["name"], name="agent_token_name_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scopes__contained_by=TokenScope.values)
                & ~models.Q(scopes__len=0),
                name="agent_token_scopes_valid",
            ),
            # The admin scope searches the whole audit trail: never for a confined token.
            models.CheckConstraint(
                condition=~(
                    models.Q(own_sessions_only=True) & models.Q(scopes__contains=["admin"])
                ),
                name="agent_token_confined_not_admin",
            ),
        ]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else ",".join(self.scopes)
        if self.own_sessions_only and not self.revoked_at:
            state += ", own sessions only"
        if self.queues and not self.revoked_at:
            state += f", queues {','.join(self.queues)}"
        return f"{self.name} sgs_{self.prefix}_… ({state})"

    @property
    def actor(self) -> str:
        return f"agent:{self.name}"

    @property
    def sessions_owner(self) -> str | None:
        """The ``created_by`` of the sessions this token is confined to, or None (all)."""
        return self.actor if self.own_sessions_only else None

    @property
    def effective_scopes(self) -> frozenset[str]:
        return frozenset().union(*(SCOPE_IMPLIES[scope] for scope in self.scopes))


class IdempotencyRecord(models.Model):
    """The stored outcome of a request made with an ``Idempotency-Key``.

    Keyed by (token, key): a retry with the same key and the same request replays the
    stored response; the same key with a different request is refused.
    """

    token = models.ForeignKey(AgentToken, on_delete=models.PROTECT, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    status_code = models.PositiveSmallIntegerField(null=True)
    response = models.JSONField(null=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "agent_idempotency_record"
        constraints = [
            models.UniqueConstraint(fields=["token", "key"], name="agent_idempotency_token_key"),
        ]
        indexes = [models.Index(fields=["created_at"], name="agent_idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status_code})"
