"""The seven orchestrator metrics of SPEC.md, with their exact names and labels.

Counters and histograms live in the process that observes them (a web worker serving
``POST /api/v1/events``, a Celery worker running a review). Under several processes set
``PROMETHEUS_MULTIPROC_DIR``: prometheus_client then keeps them in files there and
``/metrics`` adds them up (docs/operations.md). ``orchestrator_active_sessions`` is not
kept anywhere: each scrape counts running and paused sessions in PostgreSQL
(``sergas.metrics.DatabaseCollector``), so it cannot drift, go negative, or differ
between processes.
"""

from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

# This module loads without Django's apps (a process that only counts), so no models here.
if TYPE_CHECKING:
    from sessions.hook_events import HookEvent

# The hooks (sessions.models.HookName) that finish an invocation.
POST_TOOL, POST_TASK = "post_tool", "post_task"

# Tool calls: a cache hit takes milliseconds, a CRM or LLM call seconds to minutes.
TOOL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# Tasks (an account review, a batch): seconds to an hour.
TASK_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
# Sessions: a minute to a day (a portfolio of 5,000 accounts runs for hours).
SESSION_BUCKETS = (60, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 43200, 86400)

TOOL_INVOCATIONS = Counter(
    "orchestrator_tool_invocations_total",
    "Tool invocations that finished (post_tool), failed ones included.",
    ["tool_name", "agent_name"],
)
TOOL_DURATION = Histogram(
    "orchestrator_tool_duration_seconds",
    "Duration of each tool invocation, timed from its own pre_tool.",
    ["tool_name", "agent_name"],
    buckets=TOOL_BUCKETS,
)
TOOL_ERRORS = Counter(
    "orchestrator_tool_errors_total",
    "Tool invocations that failed, by the error's type.",
    ["tool_name", "agent_name", "error_type"],
)
TASK_EXECUTIONS = Counter(
    "orchestrator_task_executions_total",
    "Tasks that finished (post_task), failed ones included.",
    ["task_type", "agent_name"],
)
TASK_DURATION = Histogram(
    "orchestrator_task_duration_seconds",
    "Duration of each task, timed from its own pre_task.",
    ["task_type", "agent_name"],
    buckets=TASK_BUCKETS,
)
SESSION_DURATION = Histogram(
    "orchestrator_session_duration_seconds",
    "Duration of finished sessions, from start to completion, failure or cancellation.",
    ["session_type", "status"],
    buckets=SESSION_BUCKETS,
)

ACTIVE_SESSIONS = "orchestrator_active_sessions"
ACTIVE_SESSIONS_HELP = "Sessions running or paused now, counted in PostgreSQL at scrape time."


def database_families() -> Iterator[Metric]:
    """``orchestrator_active_sessions`` from the database, never from increments."""
    from sessions.selectors import sessions_count_active

    yield GaugeMetricFamily(ACTIVE_SESSIONS, ACTIVE_SESSIONS_HELP, value=sessions_count_active())


def observe_session_end(*, session_type: str, status: str, duration_seconds: float) -> None:
    SESSION_DURATION.labels(session_type=session_type, status=status).observe(duration_seconds)


def observe_hook_events(events: "Sequence[HookEvent]", agent_name: str) -> None:
    """The metrics of finished invocations (``post_*`` events newly recorded), one label
    lookup per (hook, name) of the batch."""
    finished: dict[tuple[str, str], list[HookEvent]] = defaultdict(list)
    for event in events:
        if event.hook in (POST_TOOL, POST_TASK):
            finished[(event.hook, event.name)].append(event)
    for (hook, name), group in finished.items():
        if hook == POST_TOOL:
            labels = {"tool_name": name, "agent_name": agent_name}
            count, duration = TOOL_INVOCATIONS.labels(**labels), TOOL_DURATION.labels(**labels)
        else:
            labels = {"task_type": name, "agent_name": agent_name}
            count, duration = TASK_EXECUTIONS.labels(**labels), TASK_DURATION.labels(**labels)
        count.inc(len(group))
        for event in group:
            if event.duration_seconds is not None:
                duration.observe(event.duration_seconds)
        if hook == POST_TOOL:
            errors = Tally(event.error_type for event in group if event.error_type)
            for error_type, times in errors.items():
                TOOL_ERRORS.labels(**labels, error_type=error_type).inc(times)
