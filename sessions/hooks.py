"""The orchestrator hooks: ``pre_tool``, ``post_tool``, ``pre_task``, ``post_task``,
``session_start`` and ``session_end``, which feed the audit trail and Prometheus.

One path serves two kinds of caller:

- code running inside this project (the review runner) builds ``AgentHooks`` (or the
  plain mapping ``hook_registry`` returns): each ``pre_*`` returns an ``Invocation``
  that carries its own start time, and the matching ``post_*`` measures from it, so
  concurrent tools and tasks never share a clock;
- agents in other processes report the same events in batches to
  ``POST /api/v1/events`` with the durations they measured; that endpoint calls
  ``hook_events_record``.

Every tool or task event is one audit row (event_type ``tool``/``task``, action the hook
name, resource ``tool:<name>``/``task:<name>``, actor the agent). Metrics are observed
after the rows commit, and only for rows that were new, so a replayed batch adds nothing.
``session_start``/``session_end`` drive the lifecycle services, whose transition is the
hook's audit event; ending a session stores its summary (``sessions.summary``).
"""

import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEventType
from audit.services import audit_events_record_many
from sessions import conf, services
from sessions.exceptions import (
    EventBatchTooLarge,
    EventInFuture,
    EventSessionUnknown,
    EventTooOld,
)
from sessions.metrics import (
    TASK_DURATION,
    TASK_EXECUTIONS,
    TOOL_DURATION,
    TOOL_ERRORS,
    TOOL_INVOCATIONS,
)
from sessions.models import AgentSession, HookName

_KIND = {
    HookName.PRE_TOOL: AuditEventType.TOOL,
    HookName.POST_TOOL: AuditEventType.TOOL,
    HookName.PRE_TASK: AuditEventType.TASK,
    HookName.POST_TASK: AuditEventType.TASK,
}
# Label values stay short and printable: error types and names come from agents.
_UNSAFE_LABEL = re.compile(r"[^A-Za-z0-9_.:/-]+")
ERROR_MESSAGE_LIMIT = 1000


def error_type_of(error: BaseException | str | None) -> str | None:
    """The ``error_type`` label of an error: its class name, or a reported type name."""
    if error is None:
        return None
    name = type(error).__name__ if isinstance(error, BaseException) else str(error)
    return _UNSAFE_LABEL.sub("_", name)[:64] or "Error"


@dataclass(frozen=True)
class HookEvent:
    """One tool or task event, as recorded in the audit trail."""

    hook: HookName
    name: str  # the tool name or task type
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    timestamp: datetime = field(default_factory=timezone.now)
    session_id: str | None = None
    invocation_id: uuid.UUID | None = None  # pairs a post_* with its pre_*
    duration_seconds: float | None = None  # post_* only
    error_type: str | None = None
    error_message: str | None = None
    input_bytes: int | None = None
    output_bytes: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def audit_row(self, *, agent_name: str, actor: str) -> dict[str, Any]:
        """The ``AuditEvent`` fields of this event (for ``audit_events_record_many``)."""
        details = {
            "agent": agent_name,
            "name": self.name,
            "invocation_id": str(self.invocation_id) if self.invocation_id else None,
            "duration_ms": (
                round(self.duration_seconds * 1000, 3)
                if self.duration_seconds is not None
                else None
            ),
            "error_type": self.error_type,
            "error": self.error_message[:ERROR_MESSAGE_LIMIT] if self.error_message else None,
            "input_bytes": self.input_bytes,
            "output_bytes": self.output_bytes,
        }
        kind = _KIND[self.hook]
        return {
            "event_id": self.event_id,
            "timestamp": self.timestamp,
            "session_id": self.session_id,
            "event_type": kind,
            "action": self.hook,
            "actor": actor,
            "resource": f"{kind}:{self.name}",
            # The agent's own keys first: ours win, and containment search finds both.
            "metadata": {**self.metadata, **{k: v for k, v in details.items() if v is not None}},
        }


@dataclass(frozen=True)
class RecordedEvents:
    recorded: list[uuid.UUID]
    duplicates: list[uuid.UUID]


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
        transaction.on_commit(partial(_observe, fresh, agent_name))
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


def _observe(events: Sequence[HookEvent], agent_name: str) -> None:
    """Metrics of finished invocations, one label lookup per (hook, name) of the batch."""
    finished: dict[tuple[HookName, str], list[HookEvent]] = defaultdict(list)
    for event in events:
        if event.hook in (HookName.POST_TOOL, HookName.POST_TASK):
            finished[(event.hook, event.name)].append(event)
    for (hook, name), group in finished.items():
        if hook == HookName.POST_TOOL:
            labels = {"tool_name": name, "agent_name": agent_name}
            count, duration = TOOL_INVOCATIONS.labels(**labels), TOOL_DURATION.labels(**labels)
        else:
            labels = {"task_type": name, "agent_name": agent_name}
            count, duration = TASK_EXECUTIONS.labels(**labels), TASK_DURATION.labels(**labels)
        count.inc(len(group))
        for event in group:
            if event.duration_seconds is not None:
                duration.observe(event.duration_seconds)
        if hook == HookName.POST_TOOL:
            errors = Counter(event.error_type for event in group if event.error_type)
            for error_type, times in errors.items():
                TOOL_ERRORS.labels(**labels, error_type=error_type).inc(times)


@dataclass(frozen=True)
class Invocation:
    """What a ``pre_*`` hook hands its ``post_*``: this invocation's own start."""

    hook: HookName  # the pre_* hook that began it
    name: str
    invocation_id: uuid.UUID
    session_id: str | None
    started_at: datetime  # wall clock, for the trail
    started: float  # time.monotonic(), for the duration


class AgentHooks:
    """The hooks of one agent, optionally bound to a session, for in-process callers.

    ``actor`` defaults to ``agent:<agent_name>``; the review runner passes its own.
    """

    def __init__(
        self, agent_name: str, *, session_id: str | None = None, actor: str | None = None
    ) -> None:
        self.agent_name = agent_name
        self.session_id = session_id
        self.actor = actor or f"agent:{agent_name}"

    def pre_tool(
        self, tool_name: str, *, input_bytes: int | None = None, metadata: dict | None = None
    ) -> Invocation:
        return self._pre(HookName.PRE_TOOL, tool_name, input_bytes, metadata)

    def post_tool(
        self,
        invocation: Invocation,
        *,
        error: BaseException | str | None = None,
        output_bytes: int | None = None,
        metadata: dict | None = None,
    ) -> float:
        """Record the end of ``invocation``; returns its duration in seconds."""
        return self._post(HookName.POST_TOOL, invocation, error, output_bytes, metadata)

    def pre_task(
        self, task_type: str, *, input_bytes: int | None = None, metadata: dict | None = None
    ) -> Invocation:
        return self._pre(HookName.PRE_TASK, task_type, input_bytes, metadata)

    def post_task(
        self,
        invocation: Invocation,
        *,
        error: BaseException | str | None = None,
        output_bytes: int | None = None,
        metadata: dict | None = None,
    ) -> float:
        return self._post(HookName.POST_TASK, invocation, error, output_bytes, metadata)

    def tool(self, tool_name: str, **pre: Any) -> AbstractContextManager[Invocation]:
        """``with hooks.tool("crm.get_account"):`` pre_tool, then post_tool with any error."""
        return _invoked(self.pre_tool(tool_name, **pre), self.post_tool)

    def task(self, task_type: str, **pre: Any) -> AbstractContextManager[Invocation]:
        return _invoked(self.pre_task(task_type, **pre), self.post_task)

    def session_start(self, session_id: str | None = None) -> AgentSession:
        return services.session_start(self._session(session_id), actor=self.actor)

    def session_end(
        self,
        session_id: str | None = None,
        *,
        error: BaseException | str | None = None,
        cancelled: bool = False,
        reason: str = "",
    ) -> AgentSession:
        """Complete the session, or fail it with ``error``, or cancel it; its ``summary``
        (duration, events by type, errors) is stored in the same transaction."""
        session_id = self._session(session_id)
        if error is not None:
            message = (
                f"{error_type_of(error)}: {error}" if isinstance(error, BaseException) else error
            )
            return services.session_fail(session_id, error=message, actor=self.actor)
        if cancelled:
            return services.session_cancel(session_id, reason=reason, actor=self.actor)
        return services.session_complete(session_id, actor=self.actor)

    def _session(self, session_id: str | None) -> str:
        chosen = session_id or self.session_id
        if not chosen:
            raise ValueError("no session: pass session_id or bind the hooks to a session")
        return chosen

    def _pre(
        self, hook: HookName, name: str, input_bytes: int | None, metadata: dict | None
    ) -> Invocation:
        invocation = Invocation(
            hook=hook,
            name=name,
            invocation_id=uuid.uuid4(),
            session_id=self.session_id,
            started_at=timezone.now(),
            started=time.monotonic(),
        )
        self._record(
            HookEvent(
                hook=hook,
                name=name,
                event_id=invocation.invocation_id,
                timestamp=invocation.started_at,
                session_id=self.session_id,
                invocation_id=invocation.invocation_id,
                input_bytes=input_bytes,
                metadata=metadata or {},
            )
        )
        return invocation

    def _post(
        self,
        hook: HookName,
        invocation: Invocation,
        error: BaseException | str | None,
        output_bytes: int | None,
        metadata: dict | None,
    ) -> float:
        expected = _KIND[hook]
        if _KIND[invocation.hook] != expected:
            raise ValueError(f"{hook} needs an invocation from pre_{expected}")
        duration = time.monotonic() - invocation.started
        self._record(
            HookEvent(
                hook=hook,
                name=invocation.name,
                session_id=invocation.session_id,
                invocation_id=invocation.invocation_id,
                duration_seconds=duration,
                error_type=error_type_of(error),
                error_message=str(error) if error is not None else None,
                output_bytes=output_bytes,
                metadata=metadata or {},
            )
        )
        return duration

    def _record(self, event: HookEvent) -> None:
        hook_events_record([event], agent_name=self.agent_name, actor=self.actor)


@contextmanager
def _invoked(invocation: Invocation, post: Callable[..., float]) -> Iterator[Invocation]:
    """Run a block as ``invocation``: its post hook records any error, which is re-raised."""
    try:
        yield invocation
    except BaseException as exc:
        post(invocation, error=exc)
        raise
    post(invocation)


HookRegistry = dict[HookName, Callable[..., Any]]


def hook_registry(
    agent_name: str, *, session_id: str | None = None, actor: str | None = None
) -> HookRegistry:
    """The six hooks of one agent as a mapping from hook name to callable.

    ``registry[HookName.PRE_TOOL]("crm.get_account")`` returns the ``Invocation`` that
    ``registry[HookName.POST_TOOL](invocation, error=...)`` finishes.
    """
    hooks = AgentHooks(agent_name, session_id=session_id, actor=actor)
    return {
        HookName.PRE_TOOL: hooks.pre_tool,
        HookName.POST_TOOL: hooks.post_tool,
        HookName.PRE_TASK: hooks.pre_task,
        HookName.POST_TASK: hooks.post_task,
        HookName.SESSION_START: hooks.session_start,
        HookName.SESSION_END: hooks.session_end,
    }
