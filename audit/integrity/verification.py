"""Verification of the audit trail in the database: recompute, reconcile, report.

One pass, in one REPEATABLE READ snapshot, with memory bounded by one seal:

1. every seal, in chain order: its hash over its header, its link to the previous seal
   (number, previous hash, contiguous transaction range), optional external anchors;
2. the events of the checked time range, sorted by transaction, walked alongside the
   seals: each seal's member list is reconciled with the events whose transaction it
   covers (modified, deleted, inserted, re-timestamped), the member list against its
   digest; a listed event that is gone counts as *retired* only when an
   ``AuditArchive`` row says retention dropped its month, and that month really was
   past retention then;
3. events not sealed yet: their content against the hash the insert trigger stored,
   their transaction id against the snapshot (a row "from the future" was forged);
4. the guards: every partition and table still has its triggers, enabled, the DDL guards
   (event triggers) are in place, and the default and the current month's partitions
   exist;
5. the signed heads: each seal's signature against the verification keys, and the heads
   every configured witness holds against the chain: a chain shorter than a witness
   saw, or with another hash or Merkle root at a seal it saw, was cut or rewritten.

Hashes are recomputed in Python from the columns (``audit.integrity.canonical``), never by a
function stored in the database under verification.
"""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import connection, transaction
from django.utils import timezone

from audit import conf
from audit.integrity.archive import ArchivedSeal
from audit.integrity.canonical import SEAL_HEADER_FIELDS, SealHeader, seal_header, timestamp_micros
from audit.integrity.findings import (
    EventKey,
    Problem,
    ProblemKind,
    check_link,
    check_members,
    check_seal,
    deleted,
    describe,
    members_in_scope,
    reconcile,
)
from audit.integrity.heads import SealHead, head_signature_valid
from audit.integrity.keys import verification_keys
from audit.integrity.rows import EventRow, stream_events, stream_rows, time_range_condition
from audit.integrity.witnesses import WitnessError, configured_witnesses
from audit.models import AuditArchive, AuditSeal
from audit.partitions.partitioning import (
    DEFAULT_PARTITION,
    add_months,
    default_partition_months,
    month_start,
    partition_name,
    partitions,
)

# Triggers each table must carry, enabled ('O' fires normally, 'A' always).
_EVENT_GUARDS = ("audit_event_stamp", "audit_event_append_only", "audit_event_no_truncate")
_TABLE_GUARDS = {
    "audit_seal": ("audit_seal_append_only", "audit_seal_no_truncate"),
    "audit_archive": ("audit_archive_append_only", "audit_archive_no_truncate"),
}
_DDL_GUARDS = ("audit_guard_drop", "audit_guard_alter")  # event triggers, enabled ALWAYS


@dataclass
class VerificationReport:
    start: datetime | None
    end: datetime | None
    events: int = 0  # events checked
    seals: int = 0  # seals in the chain
    reconciled_seals: int = 0  # seals whose member list was compared with the events
    unsealed: int = 0  # events not sealed yet (checked against their stored hash)
    retired: int = 0  # sealed events gone with a partition retention archived and dropped
    head: tuple[int, bytes] | None = None  # the newest seal: record it outside the database
    signed: int = 0  # seals whose signed head verified
    witnesses: dict[str, int] = field(default_factory=dict)  # name -> newest seal it holds
    notes: list[str] = field(default_factory=list)  # what the report cannot vouch for
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def audit_trail_verify(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    anchors: Mapping[int, bytes] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> VerificationReport:
    """Verify the events with ``start <= timestamp < end`` (all when unbounded) and the
    whole seal chain. ``anchors`` maps seal numbers to hashes recorded outside the
    database (logs, an earlier ``verify_audit`` run): a chain rewritten from scratch is
    consistent with itself but not with them. ``on_progress`` gets the events checked."""
    report = VerificationReport(start=start, end=end)
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        report.problems += _check_guards()
        report.problems += _check_partitions(start, end)
        _walk(report, anchors or {}, on_progress)
    _check_witnesses(report)
    return report


def _walk(
    report: VerificationReport,
    anchors: Mapping[int, bytes],
    on_progress: Callable[[int], None] | None,
) -> None:
    start, end = report.start, report.end
    start_micros = None if start is None else timestamp_micros(start)
    end_micros = None if end is None else timestamp_micros(end)
    retired = _retired_ranges()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
        xmax = cursor.fetchone()[0]

    where, params = time_range_condition(start, end)
    rows = _Peekable(stream_events(where, params, order_by='xact_id, "timestamp", event_id'))
    previous: tuple[SealHeader, bytes] | None = None
    keys = verification_keys()
    last_signed: int | None = None
    for header, stored_hash, members, signature, signer in _seals(start, end):
        report.seals += 1
        report.problems += check_seal(header, stored_hash)
        report.problems += check_link(previous, header)
        if signature is not None:
            last_signed = header.number
            report.problems += _check_signature(header, stored_hash, signature, signer, keys)
            report.signed += 1
        elif last_signed is not None:
            report.problems.append(
                Problem(
                    ProblemKind.BROKEN_SEAL,
                    f"seal #{header.number}: not signed, though seal #{last_signed} before it"
                    " was (seals rebuilt without the signing key)",
                    seal=header.number,
                )
            )
        expected = anchors.get(header.number)
        if expected is not None and expected != stored_hash:
            report.problems.append(
                Problem(
                    ProblemKind.BROKEN_SEAL,
                    f"seal #{header.number}: its hash differs from the anchor recorded"
                    f" outside the database (the chain was rewritten)",
                    seal=header.number,
                )
            )
        previous = (header, stored_hash)

        group = rows.take_while(lambda row, limit=header.xact_to: row.xact_id < limit)
        if members is None and not group:
            continue
        sealed: dict[EventKey, bytes] = {}
        if members is not None:
            report.reconciled_seals += 1
            report.problems += check_members(header, members)
            sealed = members_in_scope(members, start_micros, end_micros)
        found: dict[EventKey, bytes] = {}
        for row in group:
            recomputed = row.recomputed_hash()
            found[row.key] = recomputed
            if row.key in sealed and recomputed == sealed[row.key] != row.content_hash:
                report.problems.append(
                    Problem(
                        ProblemKind.MODIFIED,
                        f"{describe(row.key)}: its stored hash was altered",
                        event_id=row.event_id,
                        seal=header.number,
                    )
                )
        problems, missing = reconcile(header.number, sealed, found)
        report.problems += problems
        gone = [key for key in missing if not _in_ranges(key[1], retired)]
        report.retired += len(missing) - len(gone)
        report.problems += deleted(header.number, gone)
        _advance(report, len(group), on_progress)

    if previous is not None:
        report.head = (previous[0].number, previous[1])
    for number in sorted(anchors):
        if report.head is None or number > report.head[0]:
            report.problems.append(
                Problem(
                    ProblemKind.BROKEN_SEAL,
                    f"seal #{number}: recorded outside the database, missing from the chain"
                    f" (the chain was truncated or rewritten)",
                    seal=number,
                )
            )
    for row in rows:
        report.unsealed += 1
        report.problems += _check_unsealed(row, xmax)
        _advance(report, 1, on_progress)
    if on_progress is not None:
        on_progress(report.events)


def _advance(
    report: VerificationReport, count: int, on_progress: Callable[[int], None] | None
) -> None:
    before = report.events
    report.events += count
    if on_progress is not None and report.events // 5000 != before // 5000:
        on_progress(report.events)


def _check_unsealed(row: EventRow, xmax: int) -> list[Problem]:
    problems = []
    if row.recomputed_hash() != row.content_hash:
        problems.append(
            Problem(
                ProblemKind.MODIFIED,
                f"{describe(row.key)}: its content no longer matches the hash stored when it"
                f" was inserted (not sealed yet)",
                event_id=row.event_id,
            )
        )
    if row.xact_id >= xmax:
        problems.append(
            Problem(
                ProblemKind.INSERTED,
                f"{describe(row.key)}: claims transaction {row.xact_id}, which has not"
                f" happened yet (the row was written with the insert trigger disabled)",
                event_id=row.event_id,
            )
        )
    return problems


def _seals(
    start: datetime | None, end: datetime | None
) -> Iterator[tuple[SealHeader, bytes, bytes | None, bytes | None, str]]:
    """Every seal in chain order, with its signature and key id; the member list only of
    seals that may list an event of ``[start, end)`` (the others' lists stay unread in
    TOAST)."""
    overlap, params = "TRUE", []
    if start is not None:
        overlap += " AND last_timestamp >= %s"
        params.append(start)
    if end is not None:
        overlap += " AND first_timestamp < %s"
        params.append(end)
    sql = (
        f"SELECT {', '.join(SEAL_HEADER_FIELDS)}, hash,"
        f" CASE WHEN {overlap} THEN members END, signature, key_id"
        " FROM audit_seal ORDER BY number"
    )
    width = len(SEAL_HEADER_FIELDS)
    for row in stream_rows(sql, params, batch=1000):
        members, signature = row[width + 1], row[width + 2]
        yield (
            seal_header(row[:width]),
            bytes(row[width]),
            None if members is None else bytes(members),
            None if signature is None else bytes(signature),
            row[width + 3],
        )


def _head_of(header: SealHeader, stored_hash: bytes, signature: bytes, signer: str) -> SealHead:
    return SealHead(
        seal=header.number,
        hash=stored_hash,
        merkle_root=header.merkle_root or b"",
        events=header.event_count,
        time=header.sealed_at,
        key_id=signer,
        signature=signature,
    )


def _check_signature(
    header: SealHeader,
    stored_hash: bytes,
    signature: bytes,
    signer: str,
    keys: Mapping[str, Ed25519PublicKey],
) -> list[Problem]:
    if signer not in keys:
        detail = f"signed by key {signer}, which verification does not know"
    elif not head_signature_valid(_head_of(header, stored_hash, signature, signer), keys):
        detail = "its signed head does not verify (the seal or its signature was altered)"
    else:
        return []
    return [
        Problem(ProblemKind.BROKEN_SEAL, f"seal #{header.number}: {detail}", seal=header.number)
    ]


def _check_witnesses(report: VerificationReport) -> None:
    """Every head every witness holds: signed by a known key, and matching the chain."""
    witnesses = configured_witnesses()
    if not witnesses:
        report.notes.append(
            "No witness is configured (AUDIT_WITNESSES): a chain cut short or rewritten as a"
            " whole is caught only by --anchor."
        )
        return
    keys = verification_keys()
    head_number = report.head[0] if report.head else 0
    for witness in witnesses:
        try:
            heads = list(witness.heads())
        except WitnessError as exc:
            report.problems.append(
                Problem(ProblemKind.WITNESS, f"witness {witness.name} could not be read: {exc}")
            )
            continue
        report.witnesses[witness.name] = heads[-1].seal if heads else 0
        stored = _stored_heads([head.seal for head in heads])
        for head in heads:
            prefix = f"witness {witness.name}, seal #{head.seal}"
            if not head_signature_valid(head, keys):
                detail = f"{prefix}: the head it holds has a bad signature or an unknown key"
            elif head.seal > head_number:
                detail = (
                    f"{prefix}: the witness saw it, the chain ends at seal #{head_number}"
                    " (the newest seals were removed)"
                )
            elif stored.get(head.seal) != (head.hash, head.merkle_root):
                detail = (
                    f"{prefix}: the chain's seal differs from the head the witness holds"
                    " (the chain was rewritten)"
                )
            else:
                continue
            report.problems.append(Problem(ProblemKind.BROKEN_SEAL, detail, seal=head.seal))


def _stored_heads(numbers: list[int]) -> dict[int, tuple[bytes, bytes]]:
    stored: dict[int, tuple[bytes, bytes]] = {}
    for start in range(0, len(numbers), 10_000):
        for number, digest, root in AuditSeal.objects.filter(
            number__in=numbers[start : start + 10_000]
        ).values_list("number", "hash", "merkle_root"):
            stored[number] = (bytes(digest), bytes(root) if root is not None else b"")
    return stored


def _check_partitions(start: datetime | None, end: datetime | None) -> list[Problem]:
    """The default partition, and the current month's when the range reaches now: without
    them events fail to insert or land in the default partition. (A dropped month that
    held sealed events shows as its deleted events; an empty one changes nothing.)"""
    present = {partition.name for partition in partitions()}
    problems = []
    if DEFAULT_PARTITION not in present:
        problems.append(
            Problem(
                ProblemKind.MISSING_PARTITION,
                f"{DEFAULT_PARTITION}: the default partition is gone (inserts outside the"
                " created months now fail)",
            )
        )
    now = timezone.now()
    current = partition_name(month_start(now))
    in_range = (start is None or start <= now) and (end is None or now < end)
    if in_range and current not in present:
        in_default = {partition_name(month) for month in default_partition_months()}
        if current not in in_default:
            problems.append(
                Problem(
                    ProblemKind.MISSING_PARTITION,
                    f"{current}: the current month's partition is missing (run"
                    " `manage.py maintain_audit_partitions`)",
                )
            )
    return problems


def _check_ddl_guards() -> list[Problem]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT evtname FROM pg_event_trigger WHERE evtname = ANY(%s) AND evtenabled = 'A'",
            [list(_DDL_GUARDS)],
        )
        enabled = {row[0] for row in cursor.fetchall()}
    return [
        Problem(
            ProblemKind.UNGUARDED,
            f"event trigger {name} is missing or not enabled ALWAYS: DROP and DETACH of audit"
            " partitions are not refused (migrate as a superuser, or run the SQL of audit"
            " migration 0004 as one)",
        )
        for name in _DDL_GUARDS
        if name not in enabled
    ]


def _retired_ranges() -> list[tuple[int, int]]:
    """Months retention dropped, as microsecond ranges; a record is honoured only if the
    month was past ``AUDIT_RETENTION_MONTHS`` when it was dropped and the drop is not
    dated in the future (a forged record could otherwise excuse any deletion)."""
    now = timezone.now()
    ranges = []
    for archive in AuditArchive.objects.all():
        cutoff = add_months(month_start(archive.dropped_at), -conf.retention_months())
        if archive.dropped_at <= now and archive.range_end <= cutoff:
            ranges.append(
                (timestamp_micros(archive.range_start), timestamp_micros(archive.range_end))
            )
    return ranges


def _in_ranges(micros: int, ranges: list[tuple[int, int]]) -> bool:
    return any(low <= micros < high for low, high in ranges)


def _check_guards() -> list[Problem]:
    problems = _check_ddl_guards()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT tree.relid::regclass::text,
                   array_agg(trigger.tgname::text) FILTER (WHERE trigger.tgenabled IN ('O', 'A'))
              FROM pg_partition_tree('audit_event'::regclass) AS tree
              LEFT JOIN pg_trigger AS trigger ON trigger.tgrelid = tree.relid
             GROUP BY 1
            UNION ALL
            SELECT relation.relname::text,
                   array_agg(trigger.tgname::text) FILTER (WHERE trigger.tgenabled IN ('O', 'A'))
              FROM pg_class AS relation
              LEFT JOIN pg_trigger AS trigger ON trigger.tgrelid = relation.oid
             WHERE relation.relname = ANY(%s) AND relation.relkind = 'r'
             GROUP BY 1
            """,
            [list(_TABLE_GUARDS)],
        )
        enabled = {name: set(triggers or ()) for name, triggers in cursor.fetchall()}
    for table, triggers in sorted(enabled.items()):
        required = _TABLE_GUARDS.get(table, _EVENT_GUARDS)
        for trigger in required:
            if trigger not in triggers:
                problems.append(
                    Problem(
                        ProblemKind.UNGUARDED,
                        f"{table}: trigger {trigger} is missing or disabled (enable it again;"
                        " `manage.py maintain_audit_partitions` restores missing TRUNCATE guards)",
                    )
                )
    return problems


class _Peekable:
    """An iterator of rows that can hand out the run of rows satisfying a condition."""

    def __init__(self, rows: Iterator[EventRow]) -> None:
        self._rows = rows
        self._next: EventRow | None = next(rows, None)

    def take_while(self, condition: Callable[[EventRow], bool]) -> list[EventRow]:
        taken = []
        while self._next is not None and condition(self._next):
            taken.append(self._next)
            self._next = next(self._rows, None)
        return taken

    def __iter__(self) -> Iterator[EventRow]:
        while self._next is not None:
            row, self._next = self._next, next(self._rows, None)
            yield row


def archive_seals_check(seals: list[ArchivedSeal]) -> list[Problem]:
    """An archive's seals against the chain in the database: an archive consistent with
    itself is trustworthy only if its seals are the ones the chain holds."""
    stored = dict(
        AuditSeal.objects.filter(number__in=[seal.header.number for seal in seals]).values_list(
            "number", "hash"
        )
    )
    problems = []
    for seal in seals:
        number = seal.header.number
        if number not in stored:
            detail = f"seal #{number}: the database's chain has no such seal"
        elif bytes(stored[number]) != seal.hash:
            detail = f"seal #{number}: differs from the database's seal of that number"
        else:
            continue
        problems.append(Problem(ProblemKind.BROKEN_SEAL, detail, seal=number))
    return problems
