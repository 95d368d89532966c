"""Retention of one expired partition: the mechanics behind
``audit.services.audit_partitions_maintain``, which owns the transaction and the audit
events around them.

Order matters and is the point: lock the partition against late inserts, check every
event in it is sealed, verify it against the seals, write its archive (or reuse a
matching one), verify the archive file, and only then detach and drop the partition
and record it in ``AuditArchive``. Any failure before the drop leaves the partition in
place.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.db import connection
from django.utils import timezone

from audit import conf
from audit.exceptions import ArchiveMismatch, PartitionUnverified
from audit.integrity.archive import (
    ArchivedSeal,
    ArchiveReport,
    ArchiveUnreadable,
    archive_path,
    verify_archive,
    write_archive,
)
from audit.integrity.rows import stream_events, time_range_condition
from audit.integrity.selectors import audit_seal_head
from audit.integrity.verification import audit_trail_verify
from audit.models import AuditArchive, AuditSeal
from audit.partitions.archive_storage import archive_keep
from audit.partitions.partitioning import (
    Partition,
    add_months,
    detach_and_drop,
    month_start,
    partition_row_count,
    partitions,
    set_lock_timeout,
)

# (what is happening, how far, out of how many): the command turns it into progress bars.
Progress = Callable[[str, int, int | None], None]


class RetentionDeferred(Exception):
    """Retention of a partition must wait for a later run; nothing is wrong."""


@dataclass(frozen=True)
class ExpiredPartition:
    """A partition wholly older than the retention window."""

    name: str
    start: datetime
    end: datetime
    events: int
    archive: Path


@dataclass(frozen=True)
class Retirement:
    """What retention archived and dropped."""

    partition: Partition
    events: int
    archive: str  # where it is kept: a path, or ``audit_archive:<name>`` (archive_storage)
    sha256: str
    seals: list[int]
    written: bool  # False: a matching archive from an interrupted run was reused

    @property
    def details(self) -> dict[str, object]:
        return {
            "partition": self.partition.name,
            "from": self.partition.start.isoformat(),
            "to": self.partition.end.isoformat(),
            "events": self.events,
            "archive": str(self.archive),
            "sha256": self.sha256,
            "seals": [min(self.seals), max(self.seals)] if self.seals else [],
        }


def expired_partitions(now: datetime) -> list[ExpiredPartition]:
    """Partitions whose whole month lies before the retention window."""
    cutoff = add_months(month_start(now), -conf.retention_months())
    return [
        ExpiredPartition(
            name=partition.name,
            start=partition.start,
            end=partition.end,
            events=partition_row_count(partition.name),
            archive=archive_path(conf.archive_dir(), partition.name),
        )
        for partition in partitions()
        if partition.end is not None and partition.start is not None and partition.end <= cutoff
    ]


def partition_retire(
    expired: ExpiredPartition, *, on_progress: Progress | None = None
) -> Retirement:
    """Archive, verify, detach and drop ``expired``; call inside a transaction (REPEATABLE
    READ, so checks, archive and drop see one state) and record the result in it.

    Raises :class:`RetentionDeferred` when the month has unsealed events,
    ``PartitionUnverified`` when it fails verification and ``ArchiveMismatch`` when an
    archive in the way does not match; lock timeouts surface as ``OperationalError``.
    """
    partition = Partition(expired.name, expired.start, expired.end)
    set_lock_timeout(conf.ddl_lock_timeout_seconds())
    with connection.cursor() as cursor:
        # Before any snapshot is taken: no late insert can slip past the archive.
        cursor.execute(f"LOCK TABLE {connection.ops.quote_name(partition.name)} IN SHARE MODE")
    events = partition_row_count(partition.name)
    _check_sealed(partition)
    _verify_partition(partition, events, on_progress)
    seals = _covering_seals(partition)
    written, sha256 = _ensure_archive(expired.archive, partition, seals, events, on_progress)
    kept_at = archive_keep(expired.archive, sha256, partition=partition.name)
    detach_and_drop(partition)
    numbers = [seal.header.number for seal in seals]
    AuditArchive.objects.create(
        partition=partition.name,
        range_start=partition.start,
        range_end=partition.end,
        event_count=events,
        first_seal=min(numbers) if numbers else None,
        last_seal=max(numbers) if numbers else None,
        path=kept_at,
        sha256=sha256,
        dropped_at=timezone.now(),
    )
    return Retirement(partition, events, kept_at, sha256, numbers, written)


def _check_sealed(partition: Partition) -> None:
    head = audit_seal_head()
    sealed_below = head.xact_to if head else 0
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {connection.ops.quote_name(partition.name)} WHERE xact_id >= %s",
            [sealed_below],
        )
        unsealed = cursor.fetchone()[0]
    if unsealed:
        raise RetentionDeferred(
            f"{unsealed} event(s) are not sealed yet (a long transaction is open)"
        )


def _verify_partition(partition: Partition, events: int, on_progress: Progress | None) -> None:
    label = f"Verifying {partition.name}"
    verification = audit_trail_verify(
        start=partition.start,
        end=partition.end,
        on_progress=None if on_progress is None else lambda done: on_progress(label, done, events),
    )
    if not verification.ok:
        raise PartitionUnverified(
            partition.name,
            start=partition.start.date().isoformat(),
            end=partition.end.date().isoformat(),
            problems=[str(problem) for problem in verification.problems],
        )


def _covering_seals(partition: Partition) -> list[ArchivedSeal]:
    """Every seal that may list an event of the month, with its member list."""
    seals = AuditSeal.objects.filter(
        last_timestamp__gte=partition.start, first_timestamp__lt=partition.end
    ).order_by("number")
    return [ArchivedSeal(seal.header, bytes(seal.hash), bytes(seal.members)) for seal in seals]


def _ensure_archive(
    path: Path,
    partition: Partition,
    seals: list[ArchivedSeal],
    events: int,
    on_progress: Progress | None,
) -> tuple[bool, str]:
    """Write the archive unless a matching one exists, and verify what is on disk.
    Returns whether it wrote one and the archive's sha256.

    An existing archive that verifies on its own but holds an older state of the month
    (events inserted since, backdated) is kept aside as ``.superseded-<time>``; one that
    does not verify is evidence, so maintenance stops and asks a person.
    """

    def check() -> ArchiveReport:
        label = f"Checking the archive of {partition.name}"
        try:
            return verify_archive(
                path,
                on_event=None
                if on_progress is None
                else lambda done: on_progress(label, done, events),
            )
        except ArchiveUnreadable as exc:
            raise ArchiveMismatch(partition.name, str(path), str(exc)) from exc

    if path.exists():
        existing = check()
        if not existing.ok:
            raise ArchiveMismatch(partition.name, str(path), str(existing.problems[0]))
        if _archive_matches(existing, partition, seals, events):
            return False, existing.sha256
        stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
        path.rename(path.with_name(f"{path.name}.superseded-{stamp}"))
    label = f"Archiving {partition.name}"
    where, params = time_range_condition(partition.start, partition.end)
    write_archive(
        path,
        partition=partition.name,
        start=partition.start,
        end=partition.end,
        seals=seals,
        events=(row.canonical_text() for row in stream_events(where, params)),
        event_count=events,
        on_event=None if on_progress is None else lambda done: on_progress(label, done, events),
    )
    written = check()
    if not _archive_matches(written, partition, seals, events):
        reason = str(written.problems[0]) if written.problems else "it differs after writing"
        raise ArchiveMismatch(partition.name, str(path), reason)
    return True, written.sha256


def _archive_matches(
    archive: ArchiveReport, partition: Partition, seals: list[ArchivedSeal], events: int
) -> bool:
    return (
        archive.ok
        and archive.partition == partition.name
        and (archive.start, archive.end) == (partition.start, partition.end)
        and archive.events == events
        and {s.header.number: s.hash for s in archive.seals}
        == {s.header.number: s.hash for s in seals}
    )
