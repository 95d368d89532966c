"""The orchestrator hooks for code running inside this project (the review runner):
``pre_tool``, ``post_tool``, ``pre_task``, ``post_task``, ``session_start`` and
``session_end``, as ``AgentHooks`` or the plain mapping ``hook_registry`` returns.

Each ``pre_*`` returns an ``Invocation`` that carries its own start time, and the
matching ``post_*`` measures from it, so concurrent tools and tasks never share a clock.
Tool and task events are recorded by ``sessions.services.hook_events_record``, the path
of ``POST /api/v1/events`` too (agents in other processes report the same events there,
in batches, with the durations they measured): one audit row per event, metrics
observed after the rows commit, only for rows that were new.
``session_start``/``session_end`` drive the lifecycle services, whose transition is the
hook's audit event; ending a session stores its summary (``sessions.summary``).
"""

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from sessions import services
from sessions.hook_events import KIND, HookEvent, error_type_of
from sessions.models import AgentSession, HookName


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
        expected = KIND[hook]
        if KIND[invocation.hook] != expected:
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
        services.hook_events_record([event], agent_name=self.agent_name, actor=self.actor)


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
