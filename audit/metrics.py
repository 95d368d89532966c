"""Prometheus metrics of the audit trail: publishing failures (counted where they happen)
and, read from PostgreSQL at each scrape (``database_families``), how far sealing and
the witnesses have come and what waits in the default partition."""

from collections.abc import Iterator

from django.utils import timezone
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, Metric

WITNESS_PUBLISH_FAILURES = Counter(
    "sergas_audit_witness_publish_failures_total",
    "Attempts to publish signed seal heads to a witness that failed (retried with the"
    " next seal run).",
    ["witness"],
)

UNSEALED_AGE = "sergas_audit_unsealed_age_seconds"
LAST_SEAL = "sergas_audit_last_seal_timestamp_seconds"
WITNESS_BEHIND = "sergas_audit_witness_seals_behind"
DEFAULT_PARTITION_ROWS = "sergas_audit_default_partition_rows"


def database_families() -> Iterator[Metric]:
    from audit.selectors import (
        audit_default_partition_rows,
        audit_seal_progress,
        audit_witnesses_health,
    )

    progress = audit_seal_progress()
    now = timezone.now()
    oldest = progress.oldest_unsealed_at
    yield GaugeMetricFamily(
        UNSEALED_AGE,
        "Age of the oldest audit event not sealed yet (0: every event is sealed). Beat"
        " seals every AUDIT_SEAL_INTERVAL_SECONDS; a long open transaction holds it back.",
        value=max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0,
    )
    last = GaugeMetricFamily(LAST_SEAL, "When the newest audit seal was made (Unix time).")
    if progress.last_sealed_at is not None:
        last.add_metric([], progress.last_sealed_at.timestamp())
    yield last

    behind = GaugeMetricFamily(
        WITNESS_BEHIND,
        "Seals of the chain a configured witness does not hold yet.",
        labels=["witness"],
    )
    for witness in audit_witnesses_health().witnesses:
        behind.add_metric([witness.name], witness.behind)
    yield behind

    yield GaugeMetricFamily(
        DEFAULT_PARTITION_ROWS,
        "Audit events in the default partition (their month had no partition), counted"
        " up to 100,000: run maintain_audit_partitions --repair.",
        value=audit_default_partition_rows(),
    )
