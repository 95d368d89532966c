"""Reads of agent sessions."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import Count, F, Func, IntegerField, Q, QuerySet, Value, Window
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KT, KeyTransform
from django.db.models.functions import Cast, Coalesce, TruncDate
from django.utils import timezone

from kernel.pagination import Page, keyset_page
from sessions.cache import session_cache
from sessions.models import (
    ACTIVE_STATUSES,
    BULKY_COLUMNS,
    STATE_COLUMNS,
    TERMINAL_STATUSES,
    AgentSession,
    ApprovalStatus,
    SessionAccount,
    SessionApproval,
    SessionCheckpoint,
    SessionStatus,
    searchable_context,
)
from sessions.state import SessionContext
from sessions.state_read import session_state_read, state_compose

# Newest first; session_id breaks ties between sessions created in the same microsecond.
LIST_ORDERING = ("-created_at", "-session_id")


def session_get(session_id: str) -> AgentSession | None:
    """The session through the cache tiers (process, Redis, PostgreSQL), or None.

    See ``sessions.cache`` for how stale a cached read can be.
    """
    cache = session_cache()
    session = cache.get(session_id)
    if session is not None:
        return session
    session = session_with_state(AgentSession.objects.filter(pk=session_id)).first()
    if session is not None:
        cache.fill(session)
    return session


def sessions_list_active(*, orchestrator_id: str | None = None) -> QuerySet[AgentSession]:
    """Running and paused sessions, newest first, from PostgreSQL."""
    queryset = AgentSession.objects.filter(status__in=ACTIVE_STATUSES)
    if orchestrator_id:
        queryset = queryset.filter(orchestrator_id=orchestrator_id)
    return queryset.order_by("-created_at")


def session_exists(session_id: str) -> bool:
    return AgentSession.objects.filter(pk=session_id).exists()


def session_ids_existing(session_ids: Iterable[str], *, created_by: str | None = None) -> set[str]:
    """Which of ``session_ids`` exist (and, with ``created_by``, that actor created)."""
    queryset = AgentSession.objects.filter(pk__in=list(session_ids))
    if created_by is not None:
        queryset = queryset.filter(created_by=created_by)
    return set(queryset.values_list("session_id", flat=True))


def session_creator(session_id: str) -> str | None:
    """Who created the session (its ``created_by`` actor), or None if it does not exist."""
    return AgentSession.objects.filter(pk=session_id).values_list("created_by", flat=True).first()


def sessions_list(
    *,
    session_id: str | None = None,
    statuses: Sequence[str] = (),
    session_type: str | None = None,
    owner_id: str | None = None,
    orchestrator_id: str | None = None,
    account_id: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    created_by: str | None = None,
    context: dict[str, Any] | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[AgentSession]:
    """Sessions matching every given filter, newest first, one keyset page at a time.

    Context and metrics stay in PostgreSQL (a list never carries megabytes of context);
    ``account_id`` uses the SessionAccount index; ``created_by`` (the sessions of one
    creator, for confined tokens) its index with ``created_at``; ``context`` (a JSON
    object the context must contain) the context GIN index, as ``sessions_with_context``.
    """
    queryset = AgentSession.objects.defer(*BULKY_COLUMNS)
    if session_id:
        queryset = queryset.filter(session_id=session_id)
    if statuses:
        queryset = queryset.filter(status__in=statuses)
    if session_type:
        queryset = queryset.filter(session_type=session_type)
    if owner_id:
        queryset = queryset.filter(owner_id=owner_id)
    if orchestrator_id:
        queryset = queryset.filter(orchestrator_id=orchestrator_id)
    if account_id:
        queryset = queryset.filter(
            session_id__in=SessionAccount.objects.filter(account_id=account_id).values("session")
        )
    if created_after:
        queryset = queryset.filter(created_at__gte=created_after)
    if created_before:
        queryset = queryset.filter(created_at__lt=created_before)
    if created_by is not None:
        queryset = queryset.filter(created_by=created_by)
    if context:
        queryset = queryset.alias(searchable=searchable_context()).filter(
            searchable__contains=context
        )
    return keyset_page(queryset, ordering=LIST_ORDERING, cursor=cursor, limit=limit)


def sessions_count_active() -> int:
    """Running and paused sessions right now (the ``orchestrator_active_sessions`` gauge)."""
    return AgentSession.objects.filter(status__in=ACTIVE_STATUSES).count()


def session_checkpoints(session_id: str, *, with_state: bool = True) -> QuerySet[SessionCheckpoint]:
    """The session's retained checkpoints, newest first (without their state if asked)."""
    queryset = SessionCheckpoint.objects.filter(session_id=session_id).order_by("-sequence")
    return queryset if with_state else queryset.defer(*STATE_COLUMNS)


def sessions_archivable(*, older_than_days: int) -> list[str]:
    """Ids of finished, not yet archived sessions that ended before the cutoff."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    return list(
        AgentSession.objects.filter(
            status__in=TERMINAL_STATUSES,
            archived_at__isnull=True,
            finished_at__lt=cutoff,
        )
        .order_by("finished_at")
        .values_list("session_id", flat=True)
    )


def session_context(session_id: str) -> SessionContext:
    """The session's current context, typed, from PostgreSQL (not the cache)."""
    return SessionContext.load(session_state_read(session_id)[0])


# --- composing the whole state in a query (docs/architecture.md, "Session state") ----------

_COMPOSED_PARTS = {
    "composed_processed": """ARRAY(SELECT x.a FROM (
                  SELECT DISTINCT a FROM agent_session_progress AS p, unnest(p.processed) AS a
                   WHERE p.session_id = agent_session.session_id) AS x
              ORDER BY x.a COLLATE "C")""",
    "composed_failed": """ARRAY(SELECT x.a FROM (
                  SELECT a FROM agent_session_progress AS p, unnest(p.failed) AS a
                   WHERE p.session_id = agent_session.session_id
                  EXCEPT
                  SELECT a FROM agent_session_progress AS p, unnest(p.processed) AS a
                   WHERE p.session_id = agent_session.session_id) AS x
              ORDER BY x.a COLLATE "C")""",
    "composed_times": """ARRAY(SELECT u.t FROM agent_session_time AS r,
               unnest(r.times_ms) WITH ORDINALITY AS u(t, o)
        WHERE r.session_id = agent_session.session_id ORDER BY r.id, u.o)""",
}


class _WithState(QuerySet):
    def _fetch_all(self) -> None:
        super()._fetch_all()
        for session in self._result_cache or ():
            if isinstance(session, AgentSession) and hasattr(session, "composed_times"):
                session.state_composed(
                    *state_compose(
                        session.stored_context,
                        session.stored_metrics,
                        session.account_ids,
                        session.__dict__.pop("composed_processed"),
                        session.__dict__.pop("composed_failed"),
                        session.__dict__.pop("composed_times"),
                    )
                )


def session_with_state(queryset: QuerySet[AgentSession]) -> QuerySet[AgentSession]:
    """``queryset`` whose sessions come with their whole context and metrics, composed in
    the same query (one round trip, as when the row held them whole)."""
    annotated = queryset.annotate(
        **{name: RawSQL(sql, []) for name, sql in _COMPOSED_PARTS.items()}
    )
    annotated.__class__ = _WithState
    return annotated


def sessions_with_context(contains: dict[str, Any]) -> QuerySet[AgentSession]:
    """Sessions whose context contains ``contains`` (JSON containment), through the
    context GIN index; the account sets are not searchable here (use account_id)."""
    return AgentSession.objects.alias(searchable=searchable_context()).filter(
        searchable__contains=contains
    )


# --- dashboard aggregates ------------------------------------------------------------------


def sessions_count_by_status() -> dict[str, int]:
    """How many sessions are in each status (every status present, zero or not)."""
    counts = dict.fromkeys(SessionStatus.values, 0)
    rows = AgentSession.objects.order_by().values_list("status").annotate(count=Count("*"))
    counts.update(dict(rows))
    return counts


@dataclass(frozen=True)
class SessionProgress:
    """An active session's progress, computed in PostgreSQL (the context stays there)."""

    session_id: str
    status: str
    session_type: str
    owner_id: str
    started_at: datetime | None
    last_heartbeat_at: datetime | None
    current_batch: int
    total_batches: int
    account_count: int
    processed_count: int
    failed_count: int

    @property
    def done_count(self) -> int:
        return self.processed_count + self.failed_count

    @property
    def percent(self) -> int:
        if self.account_count:
            return min(100, round(100 * self.done_count / self.account_count))
        if self.total_batches:
            return min(100, round(100 * self.current_batch / self.total_batches))
        return 0


def _context_int(key: str) -> Coalesce:
    return Coalesce(Cast(KT(f"stored_context__{key}"), IntegerField()), Value(0))


def _context_set_size(key: str, counted: str) -> Coalesce:
    # The count kept beside the progress rows, plus a set the previous release left in
    # the row (until the session's next write moves it out).
    return F(counted) + Coalesce(
        Func(KeyTransform(key, "stored_context"), function="jsonb_array_length"),
        Value(0),
        output_field=IntegerField(),
    )


def _with_progress(queryset: QuerySet[AgentSession]) -> QuerySet:
    return queryset.values(
        "session_id",
        "status",
        "session_type",
        "owner_id",
        "started_at",
        "last_heartbeat_at",
        current_batch=_context_int("current_batch"),
        total_batches=_context_int("total_batches"),
        account_count=Func(F("account_ids"), function="cardinality"),
        processed=_context_set_size("processed_accounts", "processed_count"),
        failed=_context_set_size("failed_accounts", "failed_count"),
    )


def sessions_active_progress(*, limit: int = 20) -> list[SessionProgress]:
    """Running and paused sessions, most recently started first, with batch and account
    counts read out of the context by PostgreSQL."""
    queryset = AgentSession.objects.filter(status__in=ACTIVE_STATUSES).order_by(
        F("started_at").desc(nulls_last=True), "-session_id"
    )
    return [_progress(row) for row in _with_progress(queryset)[:limit]]


def session_progress(session_id: str) -> SessionProgress | None:
    """One session's progress (any status), for a live fragment."""
    row = _with_progress(AgentSession.objects.filter(pk=session_id)).first()
    return _progress(row) if row else None


def _progress(row: dict[str, Any]) -> SessionProgress:
    counts = {"processed_count": row.pop("processed"), "failed_count": row.pop("failed")}
    return SessionProgress(**row, **counts)


@dataclass(frozen=True)
class DayCount:
    day: date
    status: str
    count: int


def sessions_finished_per_day(*, since: datetime) -> list[DayCount]:
    """Sessions that ended since ``since``, per UTC day of their end and final status."""
    rows = (
        AgentSession.objects.filter(status__in=TERMINAL_STATUSES, finished_at__gte=since)
        .annotate(day=TruncDate("finished_at", tzinfo=UTC))
        .order_by()
        .values("day", "status")
        .annotate(count=Count("pk"))
    )
    return [DayCount(**row) for row in rows]


def sessions_needing_attention(*, since: datetime, limit: int = 10) -> QuerySet[AgentSession]:
    """Failed and interrupted sessions updated since ``since``, newest first."""
    return (
        AgentSession.objects.filter(
            status__in=(SessionStatus.FAILED, SessionStatus.INTERRUPTED), updated_at__gte=since
        )
        .defer(*BULKY_COLUMNS, "summary")
        .order_by("-updated_at")[:limit]
    )


def approval_get(approval_id: Any) -> SessionApproval | None:
    return SessionApproval.objects.filter(pk=approval_id).first()


def approval_session_creator(approval_id: Any) -> tuple[str, str] | None:
    """(session id, who created the session) of an approval, or None: what confinement
    of agent tokens to their own sessions checks."""
    row = (
        SessionApproval.objects.filter(pk=approval_id)
        .values_list("session_id", "session__created_by")
        .first()
    )
    return (row[0], row[1]) if row is not None else None


def approvals_of_session(session_id: str) -> QuerySet[SessionApproval]:
    """A session's approvals, newest first."""
    return SessionApproval.objects.filter(session_id=session_id).order_by("-requested_at", "-pk")


def approvals_open(*, limit: int = 50) -> tuple[list[SessionApproval], int]:
    """Pending approvals, the longest waiting first ("Needs a decision"), at most
    ``limit``, and how many are pending in all (one query: a window count)."""
    rows = list(
        SessionApproval.objects.filter(status=ApprovalStatus.PENDING)
        .select_related("session")
        .only(
            "pk",
            "session_id",
            "question",
            "options",
            "payload",
            "status",
            "requested_by",
            "requested_at",
            "deadline",
            "default_decision",
            "session__session_id",
            "session__status",
            "session__owner_id",
        )
        .annotate(open_total=Window(Count("*")))
        .order_by("requested_at", "pk")[:limit]
    )
    return rows, (rows[0].open_total if rows else 0)


def approvals_to_tell(session_id: str) -> list[dict[str, Any]]:
    """What a heartbeat tells the agent: the session's open approvals and the outcomes
    it has not read yet (oldest first; the partial index ``agent_approval_untold_idx``)."""
    return list(
        SessionApproval.objects.filter(session_id=session_id)
        .filter(
            Q(status=ApprovalStatus.PENDING)
            | Q(
                status__in=[
                    ApprovalStatus.APPROVED,
                    ApprovalStatus.REJECTED,
                    ApprovalStatus.EXPIRED,
                ],
                delivered_at__isnull=True,
            )
        )
        .order_by("requested_at", "pk")
        .values("status", "decision", "comment", "decided_at", approval_id=F("id"))
    )
