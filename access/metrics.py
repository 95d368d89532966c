"""Metrics of API access (served by ``/metrics`` with the others; sergas/metrics.py)."""

from prometheus_client import Counter

AUTH_FAILURES = Counter(
    "sergas_auth_failures_total",
    "Refused authentications (a wrong or revoked bearer token, a failed staff login), by "
    "how the audit trail has them: its own event (audited), counted into its window's "
    "summary (aggregated), or refused with 429 before any lookup and counted into the "
    "summary (throttled).",
    ["kind", "outcome"],
)


def observe_auth_failure(*, kind: str, outcome: str) -> None:
    AUTH_FAILURES.labels(kind=kind, outcome=outcome).inc()
