import uuid

from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.utils import timezone
from psqlextra.models import PostgresPartitionedModel
from psqlextra.types import PostgresPartitioningMethod

from audit.integrity.canonical import SEAL_HEADER_FIELDS, SealHeader, seal_header
from audit.integrity.heads import SealHead


class AuditEventType(models.TextChoices):
    """Broad categories; ``action`` says precisely what happened within one."""

    SESSION_LIFECYCLE = "session_lifecycle"
    SESSION_CONTEXT = "session_context"
    SESSION_METRICS = "session_metrics"
    SESSION_CHECKPOINT = "session_checkpoint"
    SESSION_MAINTENANCE = "session_maintenance"
    SESSION_APPROVAL = "session_approval"
    TOOL = "tool"
    TASK = "task"
    SCHEDULE = "schedule"
    AUTH = "auth"
    SYSTEM = "system"


class AuditEvent(PostgresPartitionedModel):
    """One immutable fact in the audit trail, range-partitioned by month on ``timestamp``.

    The primary key must contain the partition key, hence (event_id, timestamp).
    ``session_id`` is deliberately not a foreign key: the trail outlives the sessions.

    Two more columns exist only in the database (migration 0003): ``content_hash``
    (sha256 of the canonical form, see ``audit.integrity.canonical``) and ``xact_id`` (the
    inserting transaction), both set by a BEFORE INSERT trigger whatever the insert
    path, so no ORM insert or bulk insert sends or needs them. ``AuditEventRecord``
    reads them. ``recorded_at`` is set by the same trigger (migration 0004): when the
    database recorded the event, beside the ``timestamp`` the event claims; a value a
    client sends is overwritten. UPDATE, DELETE and TRUNCATE are refused by triggers.
    """

    class PartitioningMeta:
        method = PostgresPartitioningMethod.RANGE
        key = ["timestamp"]

    pk = models.CompositePrimaryKey("event_id", "timestamp")
    event_id = models.UUIDField(default=uuid.uuid4)
    timestamp = models.DateTimeField(default=timezone.now)
    # NULL, not "": the event concerns no session (a schedule, a login, maintenance).
    session_id = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    event_type = models.CharField(max_length=32)
    actor = models.CharField(max_length=200)
    action = models.CharField(max_length=64)
    resource = models.CharField(max_length=255)
    metadata = models.JSONField(default=dict)
    # Stamped by the insert trigger (NULL for events recorded before migration 0004).
    recorded_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        db_table = "audit_event"
        ordering = ["-timestamp"]
        indexes = [
            models.Index(fields=["session_id", "timestamp"], name="audit_event_session_ts_idx"),
            models.Index(fields=["event_type", "timestamp"], name="audit_event_type_ts_idx"),
            models.Index(fields=["actor", "timestamp"], name="audit_event_actor_ts_idx"),
            models.Index(fields=["resource", "timestamp"], name="audit_event_resource_ts_idx"),
            # Time-window pages without another filter, in cursor order.
            models.Index(fields=["timestamp", "event_id"], name="audit_event_ts_id_idx"),
            GinIndex(
                fields=["metadata"], name="audit_event_metadata_gin", opclasses=["jsonb_path_ops"]
            ),
        ]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.event_type}.{self.action} {self.resource}"


def _column(field: models.Field) -> models.Field:
    """A column of ``AuditEvent`` as the read-only twin declares it: the same type, size
    and nullability, no default or form options (nothing writes through the twin), and
    ``event_id`` as the key."""
    _, _, _, options = field.deconstruct()
    kept = {name: options[name] for name in ("max_length", "null") if name in options}
    return type(field)(primary_key=field.name == "event_id", **kept)


# The twin's columns are AuditEvent's, derived so a column added there is browsable too.
_AuditEventColumns = type(
    "_AuditEventColumns",
    (models.Model,),
    {
        "__module__": __name__,
        "Meta": type("Meta", (), {"abstract": True}),
        **{field.name: _column(field) for field in AuditEvent._meta.concrete_fields},
    },
)


class AuditEventRecord(_AuditEventColumns):
    """A read-only view of ``audit_event`` keyed by ``event_id`` alone.

    Django's admin cannot handle composite primary keys, so the admin browses the trail
    through this unmanaged twin of :class:`AuditEvent`: its columns, then the two only
    the database writes. Nothing ever writes through it.
    """

    content_hash = models.BinaryField()
    xact_id = models.BigIntegerField()

    class Meta:
        managed = False
        db_table = "audit_event"
        ordering = ["-timestamp"]
        verbose_name = "audit event"

    __str__ = AuditEvent.__str__


class AuditSeal(models.Model):
    """A link of the seal chain: the receipt for every event inserted by transactions
    ``xact_from <= xact_id < xact_to``.

    ``members`` lists each covered event (id, timestamp, content hash; see
    ``audit.integrity.canonical``) so a verifier can name a deleted, inserted or re-hashed event;
    ``hash`` covers the header, the members' digest and the previous seal's hash.
    Append-only like the events; seals are kept when their events are archived, so an
    archive can always be checked against the chain.
    """

    number = models.BigIntegerField(primary_key=True)
    previous_hash = models.BinaryField()
    hash = models.BinaryField(unique=True)
    xact_from = models.BigIntegerField(unique=True)
    xact_to = models.BigIntegerField()
    event_count = models.IntegerField()
    first_timestamp = models.DateTimeField()
    last_timestamp = models.DateTimeField()
    sealed_at = models.DateTimeField()
    members_digest = models.BinaryField()
    members = models.BinaryField()
    # From seal format 2: the RFC 6962 root over the members (covered by ``hash``), and
    # the signed head's signature and key (audit.integrity.heads); NULL for older seals.
    merkle_root = models.BinaryField(null=True)
    signature = models.BinaryField(null=True)
    key_id = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        db_table = "audit_seal"
        ordering = ["number"]
        indexes = [
            models.Index(fields=["last_timestamp"], name="audit_seal_last_ts_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(xact_from__lt=models.F("xact_to")),
                name="audit_seal_xact_range",
            ),
            models.CheckConstraint(
                condition=models.Q(event_count__gt=0), name="audit_seal_not_empty"
            ),
        ]

    def __str__(self) -> str:
        return f"seal #{self.number} ({self.event_count} events)"

    @property
    def header(self) -> SealHeader:
        return seal_header(getattr(self, name) for name in SEAL_HEADER_FIELDS)

    @property
    def head(self) -> SealHead | None:
        """The signed head of this seal (None before signed heads, or unsigned)."""
        if self.merkle_root is None or self.signature is None:
            return None
        return SealHead(
            seal=self.number,
            hash=bytes(self.hash),
            merkle_root=bytes(self.merkle_root),
            events=self.event_count,
            time=self.sealed_at,
            key_id=self.key_id,
            signature=bytes(self.signature),
        )


class AuditArchive(models.Model):
    """A partition that retention archived, verified and dropped: what it held, where
    its archive is and the archive's sha256.

    Append-only and never pruned (one row a month), so verification can tell events
    retired by retention from deleted ones long after the ``partition_dropped`` audit
    event has itself been retired.
    """

    partition = models.CharField(max_length=63, unique=True)
    range_start = models.DateTimeField()
    range_end = models.DateTimeField()
    event_count = models.BigIntegerField()
    first_seal = models.BigIntegerField(null=True)
    last_seal = models.BigIntegerField(null=True)
    path = models.CharField(max_length=1024)
    sha256 = models.CharField(max_length=64)
    dropped_at = models.DateTimeField()

    class Meta:
        db_table = "audit_archive"
        ordering = ["range_start"]

    def __str__(self) -> str:
        return f"{self.partition} ({self.event_count} events) -> {self.path}"


class WitnessStatus(models.Model):
    """How far each witness has received the signed seal heads, and its last failure:
    the publisher's bookkeeping (not part of the trail), read by /healthz and staff."""

    name = models.CharField(max_length=100, primary_key=True)
    published_seal = models.BigIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    failures = models.PositiveIntegerField(default=0)  # in a row

    class Meta:
        db_table = "audit_witness_status"
        ordering = ["name"]
        verbose_name_plural = "witness statuses"

    def __str__(self) -> str:
        return f"{self.name}: seal #{self.published_seal}"
