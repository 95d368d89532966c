"""The six hooks: audit events, per-invocation timing, error types, metrics, summaries."""

import time

import pytest

from audit.models import AuditEvent
from sessions.hooks import AgentHooks, error_type_of, hook_registry
from sessions.models import AgentSession, HookName
from tests.factories import make_session
from tests.scrape import scrape, value

pytestmark = pytest.mark.django_db(transaction=True)


class CrmTimeout(Exception):
    pass


def test_a_tool_call_writes_a_pre_and_a_post_event_paired_by_invocation():
    session = make_session("running")
    hooks = AgentHooks("reviewer", session_id=session.session_id)
    with hooks.tool("crm.get_account", input_bytes=120, metadata={"account_id": "a1"}):
        pass
    pre, post = AuditEvent.objects.filter(event_type="tool").order_by("timestamp")
    assert (pre.action, post.action) == ("pre_tool", "post_tool")
    assert pre.actor == post.actor == "agent:reviewer"
    assert pre.resource == post.resource == "tool:crm.get_account"
    assert pre.session_id == post.session_id == session.session_id
    assert pre.metadata["invocation_id"] == post.metadata["invocation_id"] == str(pre.event_id)
    assert pre.metadata["account_id"] == "a1"
    assert pre.metadata["input_bytes"] == 120
    assert post.metadata["duration_ms"] >= 0
    assert "error_type" not in post.metadata


def test_each_invocation_is_timed_from_its_own_start():
    hooks = AgentHooks("reviewer")
    outer = hooks.pre_tool("slow")
    time.sleep(0.05)
    inner = hooks.pre_tool("fast")
    inner_duration = hooks.post_tool(inner)
    outer_duration = hooks.post_tool(outer)
    # The inner call lies strictly inside the outer one: a shared start time would make
    # them equal or reversed.
    assert outer_duration > inner_duration
    stored = {
        event.resource: event.metadata["duration_ms"]
        for event in AuditEvent.objects.filter(action="post_tool")
    }
    assert stored["tool:slow"] > stored["tool:fast"]


def test_an_error_is_classified_by_its_type_re_raised_and_counted():
    before = scrape()
    hooks = AgentHooks("classifier")
    with pytest.raises(CrmTimeout), hooks.tool("crm.search"):
        raise CrmTimeout("no answer in 30 s")
    post = AuditEvent.objects.get(action="post_tool")
    assert post.metadata["error_type"] == "CrmTimeout"
    assert post.metadata["error"] == "no answer in 30 s"
    after = scrape()
    labels = {"tool_name": "crm.search", "agent_name": "classifier"}
    errors = "orchestrator_tool_errors_total"
    assert (
        value(after, errors, **labels, error_type="CrmTimeout")
        - value(before, errors, **labels, error_type="CrmTimeout")
        == 1
    )
    calls = "orchestrator_tool_invocations_total"
    assert value(after, calls, **labels) - value(before, calls, **labels) == 1


def test_error_types_become_safe_label_values():
    assert error_type_of(TimeoutError()) == "TimeoutError"
    assert error_type_of("rate limit; retry") == "rate_limit_retry"
    assert error_type_of("x" * 200) == "x" * 64
    assert error_type_of(None) is None


def test_tool_and_task_hooks_feed_their_counters_and_histograms():
    before = scrape()
    hooks = AgentHooks("metered")
    for _ in range(3):
        with hooks.task("account_review"), hooks.tool("llm.draft"):
            pass
    after = scrape()
    tool = {"tool_name": "llm.draft", "agent_name": "metered"}
    task = {"task_type": "account_review", "agent_name": "metered"}

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("orchestrator_tool_invocations_total", **tool) == 3
    assert delta("orchestrator_tool_duration_seconds_count", **tool) == 3
    assert delta("orchestrator_tool_duration_seconds_bucket", **tool, le="300.0") == 3
    assert delta("orchestrator_task_executions_total", **task) == 3
    assert delta("orchestrator_task_duration_seconds_count", **task) == 3
    assert delta("orchestrator_task_duration_seconds_bucket", **task, le="3600.0") == 3
    assert AuditEvent.objects.filter(event_type="task").count() == 6


def test_a_post_hook_refuses_an_invocation_of_the_other_kind():
    hooks = AgentHooks("a")
    with pytest.raises(ValueError, match="post_tool needs an invocation from pre_tool"):
        hooks.post_tool(hooks.pre_task("t"))


def test_session_end_stores_a_summary_of_the_trail_and_observes_the_duration():
    before = scrape()
    session = make_session("pending", session_type="on_demand")
    hooks = AgentHooks("summariser", session_id=session.session_id)
    hooks.session_start()
    with hooks.task("account_review"):
        with hooks.tool("crm.get_account"):
            pass
        with pytest.raises(CrmTimeout), hooks.tool("crm.get_notes"):
            raise CrmTimeout
    ended = hooks.session_end()
    summary = AgentSession.objects.get(pk=session.session_id).summary
    assert ended.summary == summary
    assert summary["status"] == "completed"
    assert summary["duration_seconds"] >= 0
    assert summary["events"] == {"session_lifecycle": 2, "task": 2, "tool": 4}
    assert (summary["tool_calls"], summary["tool_errors"]) == (2, 1)
    assert (summary["tasks"], summary["task_errors"]) == (1, 0)
    assert summary["errors_by_type"] == {"CrmTimeout": 1}
    labels = {"session_type": "on_demand", "status": "completed"}
    histogram = "orchestrator_session_duration_seconds_count"
    assert value(scrape(), histogram, **labels) - value(before, histogram, **labels) == 1


def test_session_end_with_an_error_fails_the_session_and_names_the_error():
    session = make_session("running")
    ended = AgentHooks("a", session_id=session.session_id).session_end(error=CrmTimeout("503"))
    assert ended.status == "failed"
    assert ended.error_message == "CrmTimeout: 503"
    assert ended.summary["status"] == "failed"


def test_session_end_can_cancel():
    session = make_session("paused")
    ended = AgentHooks("a").session_end(session.session_id, cancelled=True, reason="staff")
    assert ended.status == "cancelled"
    assert AuditEvent.objects.get(session_id=session.session_id, action="cancel").actor == (
        "agent:a"
    )


def test_the_registry_factory_maps_the_six_hook_names_to_bound_hooks():
    session = make_session("pending")
    registry = hook_registry("reg", session_id=session.session_id, actor="task:review")
    assert set(registry) == set(HookName)
    registry[HookName.SESSION_START]()
    invocation = registry[HookName.PRE_TASK]("account_review")
    registry[HookName.POST_TASK](invocation, error="QuotaExceeded")
    registry[HookName.SESSION_END]()
    post = AuditEvent.objects.get(action="post_task")
    assert (post.actor, post.metadata["error_type"]) == ("task:review", "QuotaExceeded")
    assert AgentSession.objects.get(pk=session.session_id).status == "completed"


def test_every_way_of_ending_a_session_stores_a_summary():
    from sessions import services

    cancelled = services.session_cancel(make_session("pending").session_id)
    assert cancelled.summary["status"] == "cancelled"
    assert cancelled.summary["duration_seconds"] is None  # never started
    failed = services.session_fail(make_session("interrupted").session_id, error="x")
    assert failed.summary["status"] == "failed"
    assert AgentSession.objects.filter(summary__isnull=True, status="completed").count() == 0
