"""Partition maintenance of ``trace_span``: days made ahead, days past retention dropped."""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import OperationalError, transaction
from django.utils import timezone

from audit.models import AuditEventType
from audit.services import SYSTEM_ACTOR, audit_event_record
from traces import conf
from traces.partitioning import (
    default_rows_delete,
    partition_create,
    partition_drop,
    partitioning_manager,
    partitions,
    retention_cutoff,
    set_lock_timeout,
)

logger = logging.getLogger(__name__)

RESOURCE = "table:trace_span"


@dataclass
class PartitionReport:
    dry_run: bool
    created: list[str] = field(default_factory=list)
    moved: int = 0  # rows taken out of the default partition into their day's
    dropped: list[str] = field(default_factory=list)
    default_rows_deleted: int = 0
    deferred: str = ""  # why nothing was done this time (a lock wait ran out)


def trace_partitions_maintain(
    *, dry_run: bool = False, actor: str = SYSTEM_ACTOR, now: datetime | None = None
) -> PartitionReport:
    """Make today's partition and ``PREMAKE_DAYS`` after it, drop the days that ended
    before ``RETENTION_DAYS`` ago (and such spans in the default partition), in one
    transaction with its audit event; idempotent, run by beat every few hours."""
    now = now or timezone.now()
    report = PartitionReport(dry_run=dry_run)
    plan = partitioning_manager(days=1 + conf.premake_days(), now=now).plan(skip_delete=True)
    creations = [p for model_plan in plan.model_plans for p in model_plan.creations]
    cutoff = retention_cutoff(now, conf.retention_days())
    expired = [p for p in partitions() if p.end is not None and p.end <= cutoff]
    report.created = [f"trace_span_{p.name()}" for p in creations]
    report.dropped = [p.name for p in expired]
    if dry_run:
        return report
    try:
        with transaction.atomic():
            set_lock_timeout(conf.ddl_lock_timeout_seconds())
            for partition in creations:
                report.moved += partition_create(partition)
            for partition in expired:
                partition_drop(partition)
            report.default_rows_deleted = default_rows_delete(cutoff)
            if report.created or report.dropped or report.default_rows_deleted:
                audit_event_record(
                    event_type=AuditEventType.SYSTEM,
                    action="trace_partitions_maintained",
                    actor=actor,
                    resource=RESOURCE,
                    metadata={
                        "created": report.created,
                        "moved": report.moved,
                        "dropped": report.dropped,
                        "default_rows_deleted": report.default_rows_deleted,
                        "retention_days": conf.retention_days(),
                    },
                )
    except OperationalError as exc:  # a lock timeout: retried next run
        logger.warning("Trace partition maintenance deferred: %s", exc)
        return PartitionReport(dry_run=False, deferred=str(exc).strip().splitlines()[0])
    if report.created or report.dropped:
        logger.info(
            "Trace partitions: created %s; dropped %s",
            ", ".join(report.created) or "none",
            ", ".join(report.dropped) or "none",
        )
    return report
