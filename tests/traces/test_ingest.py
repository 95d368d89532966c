"""POST /api/v1/otlp/v1/traces with the bodies the OpenTelemetry SDK's exporter sends."""

import gzip
import json
from decimal import Decimal

import pytest
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from access.services import agent_token_create
from audit.models import AuditEvent
from sessions.models import AgentSession
from sessions.state import SessionMetrics
from tests.factories import make_session
from tests.scrape import scrape, value
from tests.traces.otel import MODEL, PRICES, agent_spans, json_body, protobuf_body
from traces.models import Span, SpanKind, SpanStatus
from traces.spans import Refusal

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/otlp/v1/traces"
PROTOBUF = "application/x-protobuf"


@pytest.fixture(autouse=True)
def _prices(settings):
    settings.SERGAS_TRACES = {**settings.SERGAS_TRACES, "MODEL_PRICES": PRICES}


@pytest.fixture
def token():
    return agent_token_create(name="otel-agent", scopes=["write"]).secret


def send(client, token, body, *, content_type=PROTOBUF, **headers):
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    if token:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client.post(URL, body, content_type=content_type, **extra)


def answer(response) -> ExportTraceServiceResponse:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == PROTOBUF
    parsed = ExportTraceServiceResponse()
    parsed.ParseFromString(response.content)
    return parsed


def metrics_of(session_id) -> SessionMetrics:
    return SessionMetrics.load(AgentSession.objects.get(pk=session_id).metrics)


def test_a_protobuf_export_stores_every_span_with_what_it_was(client, token):
    session = make_session("running")
    spans = agent_spans(session.session_id, failing_tool=True)
    result = answer(send(client, token, protobuf_body(spans)))
    assert not result.HasField("partial_success")
    stored = {span.span_id: span for span in Span.objects.filter(session_id=session.session_id)}
    assert len(stored) == 4
    kinds = sorted(span.kind for span in stored.values())
    assert kinds == [SpanKind.AGENT, SpanKind.MODEL, SpanKind.TOOL, SpanKind.TOOL]
    agent = next(span for span in stored.values() if span.kind == SpanKind.AGENT)
    assert agent.parent_span_id == ""
    assert all(s.parent_span_id == agent.span_id for s in stored.values() if s is not agent)
    model = next(span for span in stored.values() if span.kind == SpanKind.MODEL)
    assert (model.model, model.input_tokens, model.output_tokens) == (MODEL, 1000, 200)
    assert model.cost_usd == Decimal("0.006000")  # 1000 * 3 + 200 * 15 per million
    failed = [span for span in stored.values() if span.status_code == SpanStatus.ERROR]
    assert [span.status_message for span in failed] == ["CRM did not answer"]
    assert failed[0].events[0]["name"] == "exception"
    assert agent.service_name == "review-agent"
    assert agent.actor == "agent:otel-agent"


def test_tool_and_agent_spans_become_hook_events_and_metrics_once(client, token):
    session = make_session("running")
    before = scrape()
    body = protobuf_body(agent_spans(session.session_id, failing_tool=True))
    answer(send(client, token, body))
    trail = AuditEvent.objects.filter(session_id=session.session_id, actor="agent:otel-agent")
    tool_events = trail.filter(event_type="tool")
    assert sorted(tool_events.values_list("action", flat=True)) == [
        "post_tool",
        "post_tool",
        "pre_tool",
        "pre_tool",
    ]
    failed = tool_events.get(action="post_tool", metadata__has_key="error_type")
    assert failed.metadata["error_type"] == "TimeoutError"
    assert failed.metadata["source"] == "otlp"
    task = trail.get(event_type="task", action="post_task")
    assert task.resource == "task:crm-reviewer"
    labels = {"tool_name": "crm.get_account", "agent_name": "otel-agent"}
    after = scrape()
    calls = "orchestrator_tool_invocations_total"
    assert value(after, calls, **labels) - value(before, calls, **labels) == 2
    errors = "orchestrator_tool_errors_total"
    error_labels = {**labels, "error_type": "TimeoutError"}
    assert value(after, errors, **error_labels) - value(before, errors, **error_labels) == 1
    tasks = "orchestrator_task_executions_total"
    task_labels = {"task_type": "crm-reviewer", "agent_name": "otel-agent"}
    assert value(after, tasks, **task_labels) - value(before, tasks, **task_labels) == 1


def test_a_resent_export_is_stored_once_and_counts_once(client, token):
    session = make_session("running")
    body = protobuf_body(agent_spans(session.session_id))
    answer(send(client, token, body))
    events, before = AuditEvent.objects.count(), scrape()
    metrics = metrics_of(session.session_id)
    resent = answer(send(client, token, body))
    assert not resent.HasField("partial_success")
    assert Span.objects.filter(session_id=session.session_id).count() == 4
    assert AuditEvent.objects.count() == events  # no hook event, no usage event
    assert metrics_of(session.session_id) == metrics
    labels = {"tool_name": "crm.get_account", "agent_name": "otel-agent"}
    calls = "orchestrator_tool_invocations_total"
    assert value(scrape(), calls, **labels) == value(before, calls, **labels)
    duplicates = "sergas_trace_spans_total"
    assert (
        value(scrape(), duplicates, outcome="duplicate")
        - value(before, duplicates, outcome="duplicate")
        == 4
    )


def test_model_usage_and_its_cost_are_summed_into_the_sessions_metrics(client, token):
    session = make_session("running")
    answer(send(client, token, protobuf_body(agent_spans(session.session_id))))
    answer(send(client, token, protobuf_body(agent_spans(session.session_id, output_tokens=0))))
    metrics = metrics_of(session.session_id)
    assert (metrics.input_tokens, metrics.output_tokens) == (2000, 200)
    assert metrics.cost_usd == Decimal("0.009000")
    usage = AuditEvent.objects.filter(session_id=session.session_id, action="record_usage")
    assert usage.count() == 2
    assert usage.first().metadata["cost_usd"] in ("0.006000", "0.003000")


def test_a_model_without_a_price_counts_its_tokens_at_cost_zero_and_is_named(client, token):
    session = make_session("running")
    spans = agent_spans(session.session_id, model="mystery-1", tools=0)
    result = answer(send(client, token, protobuf_body(spans)))
    assert result.partial_success.rejected_spans == 0
    assert "mystery-1" in result.partial_success.error_message
    metrics = metrics_of(session.session_id)
    assert (metrics.input_tokens, metrics.cost_usd) == (1000, Decimal(0))
    event = AuditEvent.objects.get(session_id=session.session_id, action="record_usage")
    assert event.metadata["unpriced_models"] == ["mystery-1"]


def test_a_finished_sessions_late_spans_still_count(client, token):
    session = make_session("completed")
    answer(send(client, token, protobuf_body(agent_spans(session.session_id, tools=0))))
    stored = AgentSession.objects.get(pk=session.session_id)
    assert stored.status == "completed"
    assert metrics_of(session.session_id).input_tokens == 1000


def test_the_session_may_be_named_on_each_span_instead_of_the_resource(client, token):
    session = make_session("running")
    body = protobuf_body(agent_spans(session.session_id, on_span=True))
    answer(send(client, token, body))
    assert Span.objects.filter(session_id=session.session_id).count() == 4


def test_a_json_export_is_read_and_answered_in_json(client, token):
    session = make_session("running")
    spans = agent_spans(session.session_id)
    response = send(client, token, json_body(spans), content_type="application/json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {}
    stored = Span.objects.filter(session_id=session.session_id)
    assert sorted(s.span_id for s in stored) == sorted(f"{s.context.span_id:016x}" for s in spans)
    # The same spans as protobuf are duplicates: the two encodings decode alike.
    answer(send(client, token, protobuf_body(spans)))
    assert stored.count() == 4


def test_a_gzip_body_is_read(client, token):
    session = make_session("running")
    body = gzip.compress(protobuf_body(agent_spans(session.session_id)))
    answer(send(client, token, body, content_encoding="gzip"))
    json_gzip = gzip.compress(json_body(agent_spans(session.session_id)))
    response = send(
        client, token, json_gzip, content_type="application/json", content_encoding="gzip"
    )
    assert response.status_code == 200
    assert Span.objects.filter(session_id=session.session_id).count() == 8


def test_spans_without_a_known_session_are_refused_with_a_partial_success(client, token):
    session = make_session("running")
    spans = (
        agent_spans(session.session_id, tools=1)
        + agent_spans(None, tools=1)
        + agent_spans("session_nobody_0000", tools=0)
    )
    result = answer(send(client, token, protobuf_body(spans)))
    assert result.partial_success.rejected_spans == 5
    message = result.partial_success.error_message
    assert message.startswith("5 of 8 spans rejected: ")
    assert f"3 {Refusal.NO_SESSION}" in message
    assert f"2 {Refusal.UNKNOWN_SESSION}" in message
    assert Span.objects.count() == 3


def test_the_partial_success_is_answered_in_json_for_a_json_request(client, token):
    response = send(
        client, token, json_body(agent_spans(None, tools=0)), content_type="application/json"
    )
    assert response.status_code == 200
    partial = json.loads(response.content)["partialSuccess"]
    assert partial["rejectedSpans"] == "2"  # int64 as a string, proto3's JSON mapping
    assert Refusal.NO_SESSION in partial["errorMessage"]


def test_a_token_confined_to_its_sessions_cannot_report_spans_of_others(client):
    confined = agent_token_create(name="confined", scopes=["write"], own_sessions_only=True)
    own = make_session("running", actor="agent:confined")
    other = make_session("running")
    spans = agent_spans(own.session_id, tools=0) + agent_spans(other.session_id, tools=0)
    result = answer(send(client, confined.secret, protobuf_body(spans)))
    assert result.partial_success.rejected_spans == 2
    assert Refusal.UNKNOWN_SESSION in result.partial_success.error_message
    assert set(Span.objects.values_list("session_id", flat=True)) == {own.session_id}


def test_spans_older_than_the_retention_are_refused(client, token, settings):
    settings.SERGAS_TRACES = {**settings.SERGAS_TRACES, "RETENTION_DAYS": 0}
    session = make_session("running")
    result = answer(send(client, token, protobuf_body(agent_spans(session.session_id))))
    assert result.partial_success.rejected_spans == 4
    assert Refusal.TOO_OLD in result.partial_success.error_message


def status_of(response) -> status_pb2.Status:
    status = status_pb2.Status()
    status.ParseFromString(response.content)
    return status


def test_an_undecodable_body_is_400_with_a_status(client, token):
    response = send(client, token, b"\xff\xff\xff not protobuf")
    assert response.status_code == 400
    assert response["Content-Type"] == PROTOBUF
    status = status_of(response)
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert "protobuf" in status.message
    response = send(client, token, b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert json.loads(response.content)["code"] == code_pb2.INVALID_ARGUMENT
    response = send(client, token, b"not gzip", content_encoding="gzip")
    assert (response.status_code, status_of(response).code) == (400, code_pb2.INVALID_ARGUMENT)


def test_other_media_types_and_encodings_are_415(client, token):
    response = send(client, token, b"hello", content_type="text/plain")
    assert response.status_code == 415
    response = send(client, token, b"hello", content_encoding="br")
    assert response.status_code == 415
    assert "gzip" in status_of(response).message


def test_without_a_token_the_answer_is_a_401_status(client):
    response = send(client, None, protobuf_body(agent_spans("s", tools=0)))
    assert response.status_code == 401
    assert status_of(response).code == code_pb2.UNAUTHENTICATED
    read_only = agent_token_create(name="reader", scopes=["read"]).secret
    response = send(client, read_only, protobuf_body(agent_spans("s", tools=0)))
    assert (response.status_code, status_of(response).code) == (403, code_pb2.PERMISSION_DENIED)


def test_a_body_over_the_limits_is_413_compressed_or_not(client, token, settings):
    settings.SERGAS_ACCESS = {**settings.SERGAS_ACCESS, "MAX_BODY_BYTES": 2000}
    session = make_session("running")
    body = protobuf_body(agent_spans(session.session_id, tools=20))
    assert len(body) > 2000
    response = send(client, token, body)
    assert (response.status_code, status_of(response).code) == (413, code_pb2.RESOURCE_EXHAUSTED)
    # Compressed it passes the API's limit; decompressed it must pass the traces' one.
    settings.SERGAS_TRACES = {**settings.SERGAS_TRACES, "MAX_DECODED_BYTES": 2000}
    bomb = gzip.compress(body + b"\x00" * 100_000)
    assert len(bomb) < 2000
    response = send(client, token, bomb, content_encoding="gzip")
    assert response.status_code == 413
    assert Span.objects.count() == 0
