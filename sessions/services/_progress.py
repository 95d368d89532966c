"""Writing a session's state at the cost of what changed (docs/architecture.md, "Session
state"): the row keeps the small fields of the context and metrics; account progress,
processing times and account list changes are rows of their own, stamped with the open
checkpoint sequence (the next checkpoint's), so recovery to checkpoint N undoes exactly
what is newer than N. Call everything here under the session's row lock.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection

from sessions.models import AgentSession, SessionAccountList, SessionProgress, SessionTimes
from sessions.services._write import accounts_index
from sessions.state import (
    ROW_EXCLUDED_CONTEXT,
    ROW_EXCLUDED_METRICS,
    SessionContext,
    SessionMetrics,
)


def open_sequence(session: AgentSession) -> int:
    """The sequence the next checkpoint will have: what changes now belongs to it."""
    return session.last_checkpoint_sequence + 1


def context_apply(
    session: AgentSession,
    changes: dict[str, Any],
    increments: dict[str, int] | None,
    *,
    checkpoint_timestamp: datetime | None = None,
) -> list[str]:
    """Merge ``changes``/``increments`` (``SessionContext.merge``) into the locked
    ``session``: its row fields in place, account progress and the account list in their
    tables. Returns the row fields to save."""
    fields = _upgrade(session)
    context = _context_row(session).merge(changes, increments)
    if checkpoint_timestamp is not None:
        context.checkpoint_timestamp = checkpoint_timestamp
    _progress_add(session, context.processed_accounts, context.failed_accounts)
    if context.account_ids != list(session.account_ids):
        _accounts_set(session, context.account_ids)
        fields.append("account_ids")
    session.stored_context = context.dump_row()
    session.owner_id = context.owner_id or ""
    return [*dict.fromkeys([*fields, "stored_context", "owner_id", *_COUNTS])]


def metrics_apply(
    session: AgentSession,
    counters: dict[str, int],
    processing_times_ms: list[int] | None,
    *,
    cost_usd: Decimal | None = None,
) -> list[str]:
    """Add ``counters`` (and ``cost_usd``) to the row's metrics and append the processing
    times as a row of their own. Returns the row fields to save."""
    fields = _upgrade(session)
    row = {k: v for k, v in session.stored_metrics.items() if k != ROW_EXCLUDED_METRICS}
    metrics = SessionMetrics.load(row).increment(counters, processing_times_ms, cost_usd=cost_usd)
    if metrics.account_processing_times_ms:
        SessionTimes.objects.create(
            session_id=session.session_id,
            sequence=open_sequence(session),
            times_ms=metrics.account_processing_times_ms,
        )
    session.stored_metrics = metrics.dump_row()
    return [*dict.fromkeys([*fields, "stored_metrics"])]


def state_create(session: AgentSession, context: SessionContext) -> None:
    """The progress rows of a new session's context (its row is saved already)."""
    _progress_add(session, context.processed_accounts, context.failed_accounts)
    if session.processed_count or session.failed_count:
        session.save(update_fields=list(_COUNTS))


_COUNTS = ("processed_count", "failed_count")


def _context_row(session: AgentSession) -> SessionContext:
    row = {k: v for k, v in session.stored_context.items() if k not in ROW_EXCLUDED_CONTEXT}
    return SessionContext.load({**row, "account_ids": list(session.account_ids)})


def _upgrade(session: AgentSession) -> list[str]:
    """A row the previous release wrote keeps its account sets and processing times in
    its JSON: move them to their tables, as changes of the open sequence."""
    fields: list[str] = []
    context, metrics = session.stored_context, session.stored_metrics
    if any(key in context for key in ROW_EXCLUDED_CONTEXT):
        processed = set(context.get("processed_accounts") or ())
        failed = set(context.get("failed_accounts") or ()) - processed
        session.stored_context = {k: v for k, v in context.items() if k not in ROW_EXCLUDED_CONTEXT}
        _progress_add(session, processed, failed)
        fields += ["stored_context", *_COUNTS]
    if ROW_EXCLUDED_METRICS in metrics:
        times = list(metrics.get(ROW_EXCLUDED_METRICS) or ())
        session.stored_metrics = {k: v for k, v in metrics.items() if k != ROW_EXCLUDED_METRICS}
        if times:
            SessionTimes.objects.create(
                session_id=session.session_id, sequence=open_sequence(session), times_ms=times
            )
        fields.append("stored_metrics")
    return fields


# Which of the given accounts the session already has processed ('p') or failed ('f').
_EXISTING_SQL = """
SELECT 'p', a FROM agent_session_progress AS p, unnest(p.processed) AS a
 WHERE p.session_id = %(session)s AND a = ANY(%(accounts)s)
UNION ALL
SELECT 'f', a FROM agent_session_progress AS p, unnest(p.failed) AS a
 WHERE p.session_id = %(session)s AND a = ANY(%(accounts)s)
"""


def _progress_add(session: AgentSession, processed: set[str], failed: set[str]) -> None:
    """Accounts become processed (leaving failed) or failed (unless processed): one row
    with those whose state changes, and the counts kept."""
    failed = failed - processed
    wanted = processed | failed
    if not wanted:
        return
    with connection.cursor() as cursor:
        cursor.execute(_EXISTING_SQL, {"session": session.session_id, "accounts": list(wanted)})
        existing = cursor.fetchall()
    was_processed = {account for kind, account in existing if kind == "p"}
    was_failed = {account for kind, account in existing if kind == "f"}
    new_processed = processed - was_processed
    new_failed = failed - was_processed - was_failed
    if not new_processed and not new_failed:
        return
    session.processed_count += len(new_processed)
    session.failed_count += len(new_failed) - len(new_processed & was_failed)
    SessionProgress.objects.create(
        session_id=session.session_id,
        sequence=open_sequence(session),
        processed=sorted(new_processed),
        failed=sorted(new_failed),
    )


def _accounts_set(session: AgentSession, account_ids: list[str]) -> None:
    """The session reviews other accounts from now on; checkpoints before keep the old
    list (a row at sequence 0 keeps the list the session had before its first change)."""
    lists = SessionAccountList.objects.filter(session_id=session.session_id)
    if not lists.exists():
        SessionAccountList.objects.create(
            session_id=session.session_id, sequence=0, account_ids=list(session.account_ids)
        )
    SessionAccountList.objects.update_or_create(
        session_id=session.session_id,
        sequence=open_sequence(session),
        defaults={"account_ids": account_ids},
    )
    accounts_index(session.session_id, account_ids)
    session.account_ids = account_ids
