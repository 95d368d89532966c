"""Recording the tool and task events of the hooks (``sessions.hook_events``) in the
audit trail: one transaction per batch, replayed event ids skipped, the metrics of the
new ones observed after the commit."""

from collections.abc import Sequence
from datetime import timedelta
from functools import partial

from django.db import transaction
from django.utils import timezone

from audit.services import audit_events_record_many
from sessions import conf
from sessions.exceptions import (
    EventBatchTooLarge,
    EventInFuture,
    EventSessionUnknown,
    EventTooOld,
)
from sessions.hook_events import HookEvent, RecordedEvents
from sessions.metrics import observe_hook_events
from sessions.models import AgentSession


def hook_events_record(
    events: Sequence[HookEvent],
    *,
    agent_name: str,
    actor: str,
    sessions_created_by: str | None = None,
) -> RecordedEvents:
    """Record tool/task events in one transaction; replayed event ids are skipped.

    Refuses the whole batch (nothing written) if it is too large, names a session that
    does not exist (or, with ``sessions_created_by``, one another actor created), or is
    stamped too far in the future or the past.
    """
    limit = conf.events_max_batch()
    if len(events) > limit:
        raise EventBatchTooLarge(len(events), limit)
    _check(events, sessions_created_by)
    rows = [event.audit_row(agent_name=agent_name, actor=actor) for event in events]
    window = timedelta(seconds=conf.events_dedupe_window_seconds())
    with transaction.atomic():
        new_ids = {row["event_id"] for row in audit_events_record_many(rows, dedupe_window=window)}
        fresh, duplicates = [], []
        for event in events:
            if event.event_id in new_ids:
                new_ids.discard(event.event_id)  # a repeat inside the batch is a duplicate
                fresh.append(event)
            else:
                duplicates.append(event.event_id)
        transaction.on_commit(partial(observe_hook_events, fresh, agent_name))
    return RecordedEvents(recorded=[event.event_id for event in fresh], duplicates=duplicates)


def _check(events: Sequence[HookEvent], sessions_created_by: str | None) -> None:
    skew = conf.events_max_future_seconds()
    now = timezone.now()
    latest = now + timedelta(seconds=skew)
    earliest = now - timedelta(days=conf.events_max_age_days())
    for index, event in enumerate(events):
        if event.timestamp > latest:
            raise EventInFuture(index, event.timestamp.isoformat(), skew)
        if event.timestamp < earliest:
            raise EventTooOld(index, event.timestamp.isoformat(), conf.events_max_age_days())
    named = {event.session_id for event in events if event.session_id}
    sessions = AgentSession.objects.filter(pk__in=named)
    if sessions_created_by is not None:
        sessions = sessions.filter(created_by=sessions_created_by)
    existing = set(sessions.values_list("session_id", flat=True))
    for index, event in enumerate(events):
        if event.session_id and event.session_id not in existing:
            raise EventSessionUnknown(index, event.session_id)
