"""Prometheus metrics of the audit trail."""

from prometheus_client import Counter

WITNESS_PUBLISH_FAILURES = Counter(
    "sergas_audit_witness_publish_failures_total",
    "Attempts to publish signed seal heads to a witness that failed (retried with the"
    " next seal run).",
    ["witness"],
)
