"""Reads of the audit trail."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import BooleanField, Count, F, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KT
from django.db.models.functions import TruncHour

from audit.archive import seal_header_json
from audit.canonical import (
    MEMBER_SIZE,
    Member,
    member_bytes,
    merkle_audit_path,
    timestamp_micros,
)
from audit.exceptions import (
    INVALID_CURSOR,
    INVALID_METADATA_FILTER,
    INVALID_TIME_RANGE,
    PROOF_NOT_SEALED,
    PROOF_OLD_SEAL,
    PROOF_UNSIGNED,
    AuditEventNotFound,
    InvalidAuditSearch,
    ProofUnavailable,
)
from audit.models import AuditEvent, AuditSeal, WitnessStatus
from audit.partitioning import DEFAULT_PARTITION
from audit.proof import PROOF_FORMAT
from audit.rows import stream_events
from audit.witnesses import configured_witnesses
from sergas.pagination import Page, keyset_page

# Newest first; event_id breaks ties between events of the same microsecond.
SEARCH_ORDERING = ("-timestamp", "-event_id")


def audit_events_for_session(session_id: str) -> QuerySet[AuditEvent]:
    """The session's trail, oldest first."""
    return AuditEvent.objects.filter(session_id=session_id).order_by("timestamp", "event_id")


def audit_events_search(
    *,
    since: datetime,
    until: datetime | None = None,
    event_type: str | None = None,
    actor: str | None = None,
    resource: str | None = None,
    session_id: str | None = None,
    action: str | None = None,
    metadata_contains: dict[str, Any] | None = None,
    recorded_late_seconds: int | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> Page[AuditEvent]:
    """Events matching every given filter, newest first, one keyset page at a time (the
    API and the dashboard). ``since`` is required so PostgreSQL prunes the monthly
    partitions outside the range (``audit_events_query`` says how each filter is served).
    """
    queryset = audit_events_query(
        start=since,
        end=until,
        event_type=event_type or None,
        actor=actor or None,
        resource=resource or None,
        session_id=session_id or None,
        action=action or None,
        metadata_contains=metadata_contains or None,
        recorded_late_seconds=recorded_late_seconds,
    )
    return keyset_page(queryset, ordering=SEARCH_ORDERING, cursor=cursor, limit=limit)


@dataclass(frozen=True)
class EventCount:
    event_type: str
    action: str
    error_type: str | None
    count: int


def audit_session_event_counts(session_id: str, *, since: datetime) -> list[EventCount]:
    """How many events the session has per (type, action, error type) since ``since``."""
    rows = (
        AuditEvent.objects.filter(session_id=session_id, timestamp__gte=since)
        .values("event_type", "action", error_type=KT("metadata__error_type"))
        .annotate(count=Count("event_id"))
        .order_by()
    )
    return [EventCount(**row) for row in rows]


def audit_events_query(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    session_id: str | None = None,
    event_type: str | None = None,
    actor: str | None = None,
    resource: str | None = None,
    action: str | None = None,
    metadata_contains: dict[str, Any] | None = None,
    recorded_late_seconds: int | None = None,
    after: tuple[datetime, UUID] | None = None,
) -> QuerySet[AuditEvent]:
    """Events with ``start <= timestamp < end`` matching every filter given, ordered by
    (timestamp, event_id) for cursor pagination: pass the last row's pair as ``after``
    to get the next page. ``recorded_late_seconds`` keeps the events the database
    recorded more than that long after the time they claim (backdated: a forgery, or a
    late report worth a look).

    Give a time range: PostgreSQL then scans only the partitions of those months (a
    one-month window reads one partition). Each equality filter has an index led by its
    column and followed by the timestamp; ``metadata_contains`` (``@>``) uses the GIN
    index.
    """
    if start is not None and end is not None and start >= end:
        raise InvalidAuditSearch(INVALID_TIME_RANGE.format(start=start, end=end), field="start")
    if metadata_contains is not None and not isinstance(metadata_contains, dict):
        raise InvalidAuditSearch(
            INVALID_METADATA_FILTER.format(kind=type(metadata_contains).__name__),
            field="metadata_contains",
        )
    events = AuditEvent.objects.all()
    if start is not None:
        events = events.filter(timestamp__gte=start)
    if end is not None:
        events = events.filter(timestamp__lt=end)
    for column, value in (
        ("session_id", session_id),
        ("event_type", event_type),
        ("actor", actor),
        ("resource", resource),
        ("action", action),
    ):
        if value is not None:
            events = events.filter(**{column: value})
    if metadata_contains:
        events = events.filter(metadata__contains=metadata_contains)
    if recorded_late_seconds is not None:
        events = events.filter(
            recorded_at__gt=F("timestamp") + timedelta(seconds=recorded_late_seconds)
        )
    if after is not None:
        events = _after(events, after)
    return events.order_by("timestamp", "event_id")


def _after(events: QuerySet[AuditEvent], after: tuple[datetime, UUID]) -> QuerySet[AuditEvent]:
    try:
        moment, event_id = after
        event_id = UUID(str(event_id))
    except (TypeError, ValueError):
        raise InvalidAuditSearch(INVALID_CURSOR, field="after") from None
    # The row comparison is one index bound; the plain bound on timestamp lets the
    # planner prune the partitions before the cursor.
    return events.filter(timestamp__gte=moment).filter(
        RawSQL('("timestamp", "event_id") > (%s, %s)', (moment, event_id), BooleanField())
    )


def audit_seal_head() -> AuditSeal | None:
    """The newest seal, without its member list."""
    return AuditSeal.objects.defer("members").order_by("-number").first()


def audit_events_count(*, start: datetime | None = None, end: datetime | None = None) -> int:
    """How many events lie in ``[start, end)``: the total of a verification's progress."""
    return audit_events_query(start=start, end=end).count()


@dataclass(frozen=True)
class ToolCallsHour:
    hour: datetime
    calls: int
    errors: int

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


def audit_tool_calls_per_hour(*, since: datetime) -> list[ToolCallsHour]:
    """Finished tool calls (``post_tool``) since ``since`` per UTC hour, and how many of
    them reported an error (on the (event_type, timestamp) index, pruned to the range)."""
    rows = (
        AuditEvent.objects.filter(event_type="tool", action="post_tool", timestamp__gte=since)
        .annotate(hour=TruncHour("timestamp", tzinfo=UTC))
        .order_by()
        .values("hour")
        .annotate(
            calls=Count("event_id"),
            errors=Count("event_id", filter=Q(metadata__has_key="error_type")),
        )
        .order_by("hour")
    )
    return [ToolCallsHour(**row) for row in rows]


def audit_event_proof(event_id: UUID) -> dict[str, Any]:
    """The inclusion proof of one event (``audit.proof``): its canonical text, its seal
    member, the audit path to its seal's Merkle root, the seal's header and signed head.
    ``AuditEventNotFound``; ``ProofUnavailable`` when it is not sealed yet, or sealed by
    a seal without a Merkle root or a signature."""
    rows = list(stream_events("event_id = %s", [event_id]))
    if not rows:
        raise AuditEventNotFound(event_id)
    row = rows[0]
    seal = (
        AuditSeal.objects.filter(xact_from__lte=row.xact_id, xact_to__gt=row.xact_id)
        .order_by("-xact_from")
        .first()
    )
    if seal is None:
        raise ProofUnavailable(event_id, PROOF_NOT_SEALED)
    if seal.merkle_root is None:
        raise ProofUnavailable(event_id, PROOF_OLD_SEAL.format(seal=seal.number))
    head = seal.head
    if head is None:
        raise ProofUnavailable(event_id, PROOF_UNSIGNED.format(seal=seal.number))
    blob = bytes(seal.members)
    leaves = [blob[i : i + MEMBER_SIZE] for i in range(0, len(blob), MEMBER_SIZE)]
    member = member_bytes(Member(row.event_id, timestamp_micros(row.timestamp), row.content_hash))
    try:
        index = leaves.index(member)
    except ValueError:  # the event differs from what its seal listed: verify_audit says how
        raise ProofUnavailable(
            event_id, f"seal #{seal.number} does not list it as it is (run verify_audit)"
        ) from None
    return {
        "format": PROOF_FORMAT,
        "event": {
            "event_id": str(row.event_id),
            "canonical": row.canonical_text(),
            "content_hash": row.content_hash.hex(),
        },
        "leaf": {"index": index, "member": member.hex()},
        "tree_size": len(leaves),
        "path": [node.hex() for node in merkle_audit_path(leaves, index)],
        "seal": seal_header_json(seal.header, bytes(seal.hash)),
        "head": head.to_json(),
    }


# --- witnesses ---------------------------------------------------------------------------

# A witness this many seals behind the chain's head is reported: the publisher sends
# every missing head after each seal, so a healthy witness is at most one behind.
WITNESS_MAX_LAG_SEALS = 3


@dataclass(frozen=True)
class WitnessHealth:
    """One configured witness, as the publisher last left it (``WitnessStatus``)."""

    name: str
    published_seal: int  # the newest seal it holds; 0: none
    behind: int  # seals of the chain it lacks
    failures: int  # publishing attempts that failed in a row
    last_error: str
    last_attempt_at: datetime | None
    last_success_at: datetime | None

    @property
    def failing(self) -> bool:
        return self.failures > 0

    @property
    def lagging(self) -> bool:
        return self.behind > WITNESS_MAX_LAG_SEALS

    @property
    def ok(self) -> bool:
        return not self.failing and not self.lagging


@dataclass(frozen=True)
class WitnessesHealth:
    head: AuditSeal | None  # the chain's newest seal
    witnesses: list[WitnessHealth]

    @property
    def chain_head(self) -> int:
        return self.head.number if self.head is not None else 0

    @property
    def ok(self) -> bool:
        """No configured witness failing or lagging (none configured: nothing failing)."""
        return all(witness.ok for witness in self.witnesses)


def audit_witnesses_health() -> WitnessesHealth:
    """The seal chain's head and each configured witness's state (two queries); shown by
    /healthz and the dashboard's audit explorer. A witness never tried yet holds nothing."""
    head = audit_seal_head()
    number = head.number if head is not None else 0
    names = [witness.name for witness in configured_witnesses()]
    statuses = {status.name: status for status in WitnessStatus.objects.filter(name__in=names)}
    witnesses = []
    for name in names:
        status = statuses.get(name) or WitnessStatus(name=name)
        witnesses.append(
            WitnessHealth(
                name=name,
                published_seal=status.published_seal,
                behind=max(number - status.published_seal, 0),
                failures=status.failures,
                last_error=status.last_error,
                last_attempt_at=status.last_attempt_at,
                last_success_at=status.last_success_at,
            )
        )
    return WitnessesHealth(head=head, witnesses=witnesses)


# --- operations: sealing progress and the default partition (metrics) ---------------------


@dataclass(frozen=True)
class SealProgress:
    last_sealed_at: datetime | None  # when the newest seal was made; None: no seal yet
    oldest_unsealed_at: datetime | None  # when the oldest event not sealed yet was recorded


# The events not sealed yet are those of transactions from the head's ``xact_to`` on.
# The bound is sent as a value, not a subquery, so the planner sees how few rows lie
# past it and takes the BRIN index on xact_id: the trail's tail, not the whole trail.
_OLDEST_UNSEALED_SQL = (
    'SELECT min(COALESCE(recorded_at, "timestamp")) FROM audit_event WHERE xact_id >= %s'
)


def audit_seal_progress() -> SealProgress:
    """How far sealing has come: the newest seal's time and the oldest unsealed event's
    (by ``recorded_at``, the database's clock, not the time the event claims)."""
    head = AuditSeal.objects.order_by("-number").values_list("xact_to", "sealed_at").first()
    xact_to, last_sealed_at = head if head is not None else (0, None)
    with connection.cursor() as cursor:
        cursor.execute(_OLDEST_UNSEALED_SQL, [xact_to])
        (oldest_unsealed_at,) = cursor.fetchone()
    return SealProgress(last_sealed_at=last_sealed_at, oldest_unsealed_at=oldest_unsealed_at)


DEFAULT_PARTITION_COUNT_LIMIT = 100_000


def audit_default_partition_rows() -> int:
    """Rows in the default partition (events whose month had no partition), counted up
    to ``DEFAULT_PARTITION_COUNT_LIMIT`` so a scrape stays cheap whatever it holds."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {connection.ops.quote_name(DEFAULT_PARTITION)}"
            " LIMIT %s) AS capped",
            [DEFAULT_PARTITION_COUNT_LIMIT],
        )
        return cursor.fetchone()[0]
