"""``EventRecorder``: the agent side of the hooks. Each invocation is timed on its own
(``time.monotonic`` from its ``pre_*``), events are buffered and sent in batches, and a
batch that fails to send stays buffered and is resent with the same ids (no duplicates).
"""

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sergas_client.types import EventsResult


class EventSender(Protocol):
    """What a recorder needs of its client (``SergasClient`` is one): the client makes
    recorders, so the recorder names only this, not the client."""

    def send_events(self, events: list[dict[str, Any]]) -> EventsResult: ...


@dataclass(frozen=True)
class Invocation:
    kind: str  # "tool" or "task"
    name: str
    invocation_id: str
    started: float


class EventRecorder:
    def __init__(self, client: EventSender, session_id: str | None, *, batch_size: int) -> None:
        self.client = client
        self.session_id = session_id
        self.batch_size = batch_size
        self._buffer: list[dict[str, Any]] = []

    def __enter__(self) -> "EventRecorder":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.flush()

    def pre_tool(self, name: str, **fields: Any) -> Invocation:
        return self._pre("tool", name, fields)

    def post_tool(
        self, invocation: Invocation, *, error: BaseException | None = None, **fields: Any
    ) -> float:
        return self._post(invocation, error, fields)

    def pre_task(self, name: str, **fields: Any) -> Invocation:
        return self._pre("task", name, fields)

    def post_task(
        self, invocation: Invocation, *, error: BaseException | None = None, **fields: Any
    ) -> float:
        return self._post(invocation, error, fields)

    def tool(self, name: str, **fields: Any) -> AbstractContextManager[Invocation]:
        """``with recorder.tool("crm.get_account"):`` -- an error is reported and re-raised."""
        return _invoked(self.pre_tool(name, **fields), self.post_tool)

    def task(self, name: str, **fields: Any) -> AbstractContextManager[Invocation]:
        return _invoked(self.pre_task(name, **fields), self.post_task)

    def flush(self) -> EventsResult | None:
        """Send what is buffered; on failure it stays buffered for the next flush."""
        result = None
        while self._buffer:
            batch = self._buffer[: self.batch_size]
            result = self.client.send_events(batch)
            del self._buffer[: len(batch)]
        return result

    def _pre(self, kind: str, name: str, fields: dict[str, Any]) -> Invocation:
        invocation = Invocation(kind, name, str(uuid.uuid4()), time.monotonic())
        self._add(
            {"event_id": invocation.invocation_id, "hook": f"pre_{kind}", "name": name, **fields}
        )
        return invocation

    def _post(
        self, invocation: Invocation, error: BaseException | None, fields: dict[str, Any]
    ) -> float:
        duration = time.monotonic() - invocation.started
        event = {
            "event_id": str(uuid.uuid4()),
            "hook": f"post_{invocation.kind}",
            "name": invocation.name,
            "invocation_id": invocation.invocation_id,
            "duration_ms": round(duration * 1000, 3),
            **fields,
        }
        if error is not None:
            event["error"] = {"type": type(error).__name__, "message": str(error)[:10_000]}
        self._add(event)
        return duration

    def _add(self, event: dict[str, Any]) -> None:
        event.setdefault("timestamp", datetime.now(UTC).isoformat())
        event.setdefault("session_id", self.session_id)
        self._buffer.append(event)
        if len(self._buffer) >= self.batch_size:
            self.flush()


@contextmanager
def _invoked(invocation: Invocation, post: Callable[..., float]) -> Iterator[Invocation]:
    try:
        yield invocation
    except BaseException as exc:
        post(invocation, error=exc)
        raise
    post(invocation)
