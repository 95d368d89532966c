"""Partition maintenance: creation, default-partition repair, retention through archive,
verification, detach and drop."""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from audit import conf
from audit.exceptions import ArchiveMismatch, PartitionUnverified
from audit.integrity.services.sealing import audit_events_seal
from audit.models import AuditEventType
from audit.partitions.partitioning import (
    DEFAULT_PARTITION,
    default_partition_months,
    guard_partitions,
    move_default_rows,
    partition_name,
    partitioning_manager,
    set_lock_timeout,
)
from audit.partitions.retention import (
    ExpiredPartition,
    Progress,
    RetentionDeferred,
    expired_partitions,
    partition_retire,
)
from audit.trail.services import SYSTEM_ACTOR, audit_event_record

logger = logging.getLogger(__name__)

PARTITIONS_RESOURCE = "table:audit_event"


@dataclass
class MaintenanceReport:
    """What maintenance did, or (``dry_run``) would do."""

    dry_run: bool
    created: list[str] = field(default_factory=list)
    # Rows waiting in the default partition, by the partition they belong to.
    default_rows: dict[str, int] = field(default_factory=dict)
    # Months whose partition cannot be created until ``--repair`` moves those rows.
    blocked: list[str] = field(default_factory=list)
    repaired: dict[str, int] = field(default_factory=dict)
    # Why an automatic repair was not attempted (too many rows for one lock hold).
    repair_declined: str = ""
    guards_added: int = 0
    expired: list[ExpiredPartition] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    # Partitions retention will retry on a later run, and why (not sealed yet, lock busy).
    deferred: dict[str, str] = field(default_factory=dict)
    # Partitions retention refused to drop, and why: they need a person.
    refused: dict[str, str] = field(default_factory=dict)


def audit_partitions_maintain(
    *,
    dry_run: bool = False,
    repair: bool = False,
    auto_repair: bool = False,
    actor: str = SYSTEM_ACTOR,
    now: datetime | None = None,
    on_progress: Progress | None = None,
) -> MaintenanceReport:
    """Keep the partitions right; idempotent, run daily by beat.

    1. With ``repair``, move rows that landed in the default partition into partitions
       of their months (else report them: their months cannot be created meanwhile).
       ``auto_repair`` (the daily task) repairs when there are at most
       ``AUDIT_AUTO_REPAIR_MAX_ROWS`` of them, and says why not otherwise.
    2. Create the current month and ``AUDIT_PREMAKE_MONTHS`` after it.
    3. Give every partition its TRUNCATE guard (PostgreSQL does not clone it).
    4. For each partition wholly older than ``AUDIT_RETENTION_MONTHS`` before the
       current month: seal, verify it against the seals, write and verify its archive,
       then detach and drop it. A partition that does not verify, or whose archive does
       not, is left in place and reported.

    Each change is recorded as an audit event in the same transaction.
    """
    now = now or timezone.now()
    report = MaintenanceReport(dry_run=dry_run)
    waiting = set(default_partition_months().items())
    report.default_rows = {partition_name(month): count for month, count in waiting}
    months = {month for month, _ in waiting}
    if months and auto_repair and not repair:
        repair, report.repair_declined = _auto_repair_allowed(sum(report.default_rows.values()))
    if months and not repair:
        logger.warning(
            "The default audit partition holds events of %s: run"
            " `manage.py maintain_audit_partitions --repair`",
            ", ".join(sorted(report.default_rows)),
        )
    if repair and months:
        report.repaired = dict(report.default_rows) if dry_run else _repair(months, report, actor)
    # Without repair, PostgreSQL would refuse those months' partitions; with it, the
    # repair creates them (already done, or in a dry run, announced as moves).
    _create(report, actor=actor, now=now, exclude=months, blocked=not repair)
    report.expired = expired_partitions(now)
    if dry_run:
        return report
    for expired in report.expired:
        _retire(expired, report, actor=actor, on_progress=on_progress)
    return report


def _auto_repair_allowed(rows: int) -> tuple[bool, str]:
    limit = conf.auto_repair_max_rows()
    if 0 < rows <= limit:
        return True, ""
    return False, (
        f"{rows} rows in the default partition, more than AUDIT_AUTO_REPAIR_MAX_ROWS ({limit})"
        " to move under one lock by itself: run `manage.py maintain_audit_partitions"
        " --repair` in a quiet hour"
    )


def _repair(months: set[datetime], report: MaintenanceReport, actor: str) -> dict[str, int]:
    try:
        with transaction.atomic():
            set_lock_timeout(conf.ddl_lock_timeout_seconds())
            moved = move_default_rows(sorted(months))
            audit_event_record(
                event_type=AuditEventType.SYSTEM,
                action="default_partition_repaired",
                actor=actor,
                resource=PARTITIONS_RESOURCE,
                metadata={"moved": moved},
            )
    except OperationalError as exc:
        report.deferred[DEFAULT_PARTITION] = _busy(exc)
        logger.warning("Audit default-partition repair deferred: %s", exc)
        return {}
    logger.info("Moved rows out of the default audit partition: %s", moved)
    return moved


def _busy(exc: Exception) -> str:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"audit_event was busy ({first_line}); retried next run"


def _create(
    report: MaintenanceReport, *, actor: str, now: datetime, exclude: set[datetime], blocked: bool
) -> None:
    plan = partitioning_manager(now=now).plan(skip_delete=True)
    for model_plan in plan.model_plans:
        # psqlextra hands out naive starts; ours are computed in UTC.
        left_out = [
            p for p in model_plan.creations if p.start_datetime.replace(tzinfo=UTC) in exclude
        ]
        model_plan.creations = [p for p in model_plan.creations if p not in left_out]
        if blocked:
            report.blocked += [partition_name(p.start_datetime) for p in left_out]
    report.created = [p.name() for p in plan.creations]
    if report.dry_run:
        return
    try:
        with transaction.atomic():
            set_lock_timeout(conf.ddl_lock_timeout_seconds())
            if report.created:
                plan.apply()
            report.guards_added = guard_partitions()
            if report.created or report.guards_added:
                audit_event_record(
                    event_type=AuditEventType.SYSTEM,
                    action="partitions_created" if report.created else "partition_guards_restored",
                    actor=actor,
                    resource=PARTITIONS_RESOURCE,
                    metadata={"created": report.created, "guards_added": report.guards_added},
                )
    except OperationalError as exc:  # a lock timeout: writers come first
        for name in report.created:
            report.deferred[f"audit_event_{name}"] = _busy(exc)
        report.created, report.guards_added = [], 0
        logger.warning("Audit partition creation deferred: %s", exc)
        return
    if report.created:
        logger.info("Created audit partitions: %s", ", ".join(report.created))


def _retire(
    expired: ExpiredPartition,
    report: MaintenanceReport,
    *,
    actor: str,
    on_progress: Progress | None,
) -> None:
    audit_events_seal()  # so the month's latest events are listed before it is checked
    try:
        outermost = not connection.in_atomic_block
        with transaction.atomic():
            if outermost:
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            retirement = partition_retire(expired, on_progress=on_progress)
            resource = f"partition:{expired.name}"
            audit_event_record(
                event_type=AuditEventType.SYSTEM,
                action="partition_archived",
                actor=actor,
                resource=resource,
                metadata={**retirement.details, "reused": not retirement.written},
            )
            audit_event_record(
                event_type=AuditEventType.SYSTEM,
                action="partition_dropped",
                actor=actor,
                resource=resource,
                metadata=retirement.details,
            )
    except RetentionDeferred as exc:
        report.deferred[expired.name] = str(exc)
        logger.warning("Audit retention of %s deferred: %s", expired.name, exc)
        return
    except OperationalError as exc:  # a lock timeout: writers come first
        report.deferred[expired.name] = _busy(exc)
        logger.warning("Audit retention of %s deferred: %s", expired.name, exc)
        return
    except (PartitionUnverified, ArchiveMismatch, OSError, ValueError) as exc:
        reason = getattr(exc, "detail", None) or f"the archive could not be written: {exc}"
        report.refused[expired.name] = reason
        logger.error("Audit retention refused %s: %s", expired.name, reason)
        with transaction.atomic():
            audit_event_record(
                event_type=AuditEventType.SYSTEM,
                action="retention_refused",
                actor=actor,
                resource=f"partition:{expired.name}",
                metadata={"partition": expired.name, "reason": reason},
            )
        return
    if retirement.written:
        report.archived.append(expired.name)
    report.dropped.append(expired.name)
    logger.info(
        "Archived %s (%d events) to %s; dropped it",
        expired.name,
        retirement.events,
        retirement.archive,
    )
