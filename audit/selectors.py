"""Reads of the audit trail, by concern (trail, integrity, partitions): the entry point
other apps import."""

from audit.integrity.selectors import (
    WITNESS_MAX_LAG_SEALS,
    SealProgress,
    WitnessesHealth,
    WitnessHealth,
    audit_event_proof,
    audit_seal_head,
    audit_seal_progress,
    audit_witnesses_health,
)
from audit.partitions.selectors import (
    audit_default_partition_rows,
)
from audit.trail.selectors import (
    EventCount,
    ToolCallsHour,
    audit_events_count,
    audit_events_for_session,
    audit_events_query,
    audit_events_search,
    audit_session_event_counts,
    audit_tool_calls_per_hour,
)

__all__ = [
    "WITNESS_MAX_LAG_SEALS",
    "EventCount",
    "SealProgress",
    "ToolCallsHour",
    "WitnessHealth",
    "WitnessesHealth",
    "audit_default_partition_rows",
    "audit_event_proof",
    "audit_events_count",
    "audit_events_for_session",
    "audit_events_query",
    "audit_events_search",
    "audit_seal_head",
    "audit_seal_progress",
    "audit_session_event_counts",
    "audit_tool_calls_per_hour",
    "audit_witnesses_health",
]
