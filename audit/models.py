import uuid

from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.utils import timezone
from psqlextra.models import PostgresPartitionedModel
from psqlextra.types import PostgresPartitioningMethod


class AuditEventType(models.TextChoices):
    """Broad categories; ``action`` says precisely what happened within one."""

    SESSION_LIFECYCLE = "session_lifecycle"
    SESSION_CONTEXT = "session_context"
    SESSION_METRICS = "session_metrics"
    SESSION_CHECKPOINT = "session_checkpoint"
    SESSION_MAINTENANCE = "session_maintenance"
    TOOL = "tool"
    TASK = "task"
    SCHEDULE = "schedule"
    AUTH = "auth"
    SYSTEM = "system"


class AuditEvent(PostgresPartitionedModel):
    """One immutable fact in the audit trail, range-partitioned by month on ``timestamp``.

    The primary key must contain the partition key, hence (event_id, timestamp).
    ``session_id`` is deliberately not a foreign key: the trail outlives the sessions.
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

    class Meta:
        db_table = "audit_event"
        ordering = ["-timestamp"]
        indexes = [
            models.Index(fields=["session_id", "timestamp"], name="audit_event_session_ts_idx"),
            models.Index(fields=["event_type", "timestamp"], name="audit_event_type_ts_idx"),
            models.Index(fields=["actor", "timestamp"], name="audit_event_actor_ts_idx"),
            models.Index(fields=["resource", "timestamp"], name="audit_event_resource_ts_idx"),
            GinIndex(
                fields=["metadata"], name="audit_event_metadata_gin", opclasses=["jsonb_path_ops"]
            ),
        ]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.event_type}.{self.action} {self.resource}"


class AuditEventRecord(models.Model):
    """A read-only view of ``audit_event`` keyed by ``event_id`` alone.

    Django's admin cannot handle composite primary keys, so the admin browses the trail
    through this unmanaged twin of :class:`AuditEvent`. Nothing ever writes through it.
    """

    event_id = models.UUIDField(primary_key=True)
    timestamp = models.DateTimeField()
    session_id = models.CharField(max_length=128, null=True)  # noqa: DJ001
    event_type = models.CharField(max_length=32)
    actor = models.CharField(max_length=200)
    action = models.CharField(max_length=64)
    resource = models.CharField(max_length=255)
    metadata = models.JSONField()

    class Meta:
        managed = False
        db_table = "audit_event"
        ordering = ["-timestamp"]
        verbose_name = "audit event"

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.event_type}.{self.action} {self.resource}"
