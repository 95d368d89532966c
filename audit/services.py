"""Writes to the audit trail: recording events (inside the caller's transaction),
sealing them into the hash chain, and partition maintenance (creation, default-partition
repair, retention through archive, verify, detach, drop). docs/audit.md explains the
integrity model these functions implement."""

from audit.integrity.services.sealing import SEAL_LOCK_KEY, audit_events_seal
from audit.integrity.services.witnessing import PublishOutcome, audit_heads_publish
from audit.partitions.services import (
    PARTITIONS_RESOURCE,
    MaintenanceReport,
    audit_partitions_maintain,
)
from audit.trail.services import (
    SYSTEM_ACTOR,
    audit_event_record,
    audit_events_record_generated,
    audit_events_record_many,
)

__all__ = [
    "PARTITIONS_RESOURCE",
    "SEAL_LOCK_KEY",
    "SYSTEM_ACTOR",
    "MaintenanceReport",
    "PublishOutcome",
    "audit_event_record",
    "audit_events_record_generated",
    "audit_events_record_many",
    "audit_events_seal",
    "audit_heads_publish",
    "audit_partitions_maintain",
]
