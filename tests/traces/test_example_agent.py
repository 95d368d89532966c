"""docs/example_otel_agent.py as a real OS process: the OpenTelemetry SDK's own exporter
sends its spans over HTTP to a running server (pytest-django's live_server)."""

import os
import subprocess
import sys
from decimal import Decimal

import pytest

from access.services import agent_token_create
from audit.models import AuditEvent
from sessions.models import AgentSession
from sessions.state import SessionMetrics
from tests.processes import ROOT
from traces.models import Span, SpanKind

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EXAMPLE = ROOT / "docs" / "example_otel_agent.py"
PRICE = {"claude-sonnet-4": {"input": "3.00", "output": "15.00"}}


def run_example(url: str, token: str, *args: str) -> str:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    finished = subprocess.run(
        [sys.executable, str(EXAMPLE), "--url", url, "--token", token, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return finished.stdout


def session_of(output: str) -> AgentSession:
    line = next(line for line in output.splitlines() if line.startswith("session "))
    return AgentSession.objects.get(pk=line.split()[1].rstrip(":"))


@pytest.fixture
def token():
    return agent_token_create(name="otel-example", scopes=["write"]).secret


@pytest.mark.parametrize("compression", [(), ("--no-gzip",)], ids=["gzip", "plain"])
def test_the_instrumented_example_agents_spans_reach_the_session(
    live_server, token, settings, compression
):
    settings.SERGAS_TRACES = {**settings.SERGAS_TRACES, "MODEL_PRICES": PRICE}
    output = run_example(live_server.url, token, "--accounts", "6", *compression)
    session = session_of(output)
    assert session.status == "completed"
    spans = Span.objects.filter(session_id=session.session_id)
    kinds = list(spans.values_list("kind", flat=True))
    assert kinds.count(SpanKind.AGENT) == 1
    assert kinds.count(SpanKind.TASK) == 6
    assert kinds.count(SpanKind.TOOL) == 6
    calls = spans.filter(kind=SpanKind.MODEL)
    failed_tools = spans.filter(kind=SpanKind.TOOL, status_code=2).count()
    assert calls.count() == 6 - failed_tools
    metrics = SessionMetrics.load(session.metrics)
    assert metrics.input_tokens == sum(calls.values_list("input_tokens", flat=True))
    assert metrics.output_tokens == sum(calls.values_list("output_tokens", flat=True))
    expected = sum(
        (
            Decimal(i * 3 + o * 15) / 1_000_000
            for i, o in calls.values_list("input_tokens", "output_tokens")
        ),
        Decimal(0),
    )
    assert metrics.cost_usd == expected.quantize(Decimal("0.000001"))
    assert f"input_tokens={metrics.input_tokens}" in output
    summary = session.summary
    assert (summary["tool_calls"], summary["tool_errors"]) == (6, failed_tools)
    assert summary["tasks"] == 7  # six review_account tasks and the agent's invocation


def test_spans_exported_twice_are_stored_and_counted_once(live_server, token):
    output = run_example(live_server.url, token, "--accounts", "4", "--resend")
    session = session_of(output)
    spans = Span.objects.filter(session_id=session.session_id)
    tools = spans.filter(kind=SpanKind.TOOL).count()
    assert tools == 4
    trail = AuditEvent.objects.filter(session_id=session.session_id, event_type="tool")
    assert trail.count() == 2 * tools  # a pre_tool and a post_tool each, once
    usage = AuditEvent.objects.filter(session_id=session.session_id, action="record_usage")
    recorded = sum(event.metadata["input_tokens"] for event in usage)
    assert recorded == SessionMetrics.load(session.metrics).input_tokens
    assert recorded == sum(spans.values_list("input_tokens", flat=True).exclude(input_tokens=None))
