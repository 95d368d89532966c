"""``Span``: one OpenTelemetry span an agent reported, in a table partitioned by day."""

from django.db import models
from django.utils import timezone
from psqlextra.models import PostgresPartitionedModel
from psqlextra.types import PostgresPartitioningMethod


class SpanKind(models.TextChoices):
    """What a span was, from ``gen_ai.operation.name`` (traces/spans.py)."""

    AGENT = "agent"  # invoke_agent, create_agent
    TASK = "task"  # a span carrying sergas.task.type
    TOOL = "tool"  # execute_tool
    MODEL = "model"  # chat, text_completion, generate_content, embeddings
    OTHER = "other"


class SpanStatus(models.IntegerChoices):
    """OpenTelemetry's status codes, as sent."""

    UNSET = 0
    OK = 1
    ERROR = 2


class Span(PostgresPartitionedModel):
    """A span, range-partitioned by day on ``start_time``.

    The primary key holds the partition key, so it is (trace_id, span_id, start_time): a
    resent span carries the same start, lands in the same partition and is a conflict,
    stored once. ``session_id`` is not a foreign key, like the audit trail's. Days past
    ``SERGAS_TRACES["RETENTION_DAYS"]`` are dropped whole (traces/partitioning.py).
    """

    class PartitioningMeta:
        method = PostgresPartitioningMethod.RANGE
        key = ["start_time"]

    pk = models.CompositePrimaryKey("trace_id", "span_id", "start_time")
    trace_id = models.CharField(max_length=32)  # lowercase hex, as OTLP JSON spells it
    span_id = models.CharField(max_length=16)
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()
    parent_span_id = models.CharField(max_length=16, blank=True, default="")
    session_id = models.CharField(max_length=128)
    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=8, choices=SpanKind.choices, default=SpanKind.OTHER)
    operation = models.CharField(max_length=64, blank=True, default="")  # gen_ai.operation.name
    # The tool, task type, agent or model the span is about (its label on the page).
    subject = models.CharField(max_length=255, blank=True, default="")
    model = models.CharField(max_length=128, blank=True, default="")
    input_tokens = models.BigIntegerField(null=True, blank=True)
    output_tokens = models.BigIntegerField(null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    status_code = models.SmallIntegerField(choices=SpanStatus.choices, default=SpanStatus.UNSET)
    status_message = models.TextField(blank=True, default="")
    service_name = models.CharField(max_length=255, blank=True, default="")
    attributes = models.JSONField(default=dict)
    resource = models.JSONField(default=dict)  # the resource's attributes
    events = models.JSONField(default=list)  # span events (exceptions), name/time/attributes
    actor = models.CharField(max_length=200)  # who reported it
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "trace_span"
        ordering = ["start_time"]
        indexes = [
            models.Index(fields=["session_id", "start_time"], name="trace_span_session_idx"),
            models.Index(fields=["model", "start_time"], name="trace_span_model_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.trace_id}/{self.span_id} {self.name}"

    @property
    def duration_ms(self) -> float:
        return max((self.end_time - self.start_time).total_seconds() * 1000, 0.0)

    @property
    def failed(self) -> bool:
        return self.status_code == SpanStatus.ERROR
