"""Spans made by the real OpenTelemetry SDK, as an instrumented agent makes them, and the
bodies its OTLP/HTTP exporter sends (protobuf; the JSON mapping for the JSON tests)."""

import base64
import json
from collections.abc import Sequence

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

MODEL = "claude-test"
PRICES = {MODEL: {"input": "3.00", "output": "15.00"}}  # USD per million tokens


def agent_spans(
    session_id: str | None,
    *,
    tools: int = 2,
    failing_tool: bool = False,
    model: str = MODEL,
    input_tokens: int = 1000,
    output_tokens: int = 200,
    on_span: bool = False,
) -> list[ReadableSpan]:
    """One agent invocation: a chat call and ``tools`` tool calls under it. The session
    is named on the resource (or, ``on_span``, on each span)."""
    exporter = InMemorySpanExporter()
    resource = {"service.name": "review-agent"}
    if session_id and not on_span:
        resource["sergas.session_id"] = session_id
    provider = TracerProvider(resource=Resource.create(resource))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.traces")
    own = {"sergas.session_id": session_id} if session_id and on_span else {}
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "crm-reviewer"}
    with tracer.start_as_current_span("invoke_agent crm-reviewer", attributes={**agent, **own}):
        with tracer.start_as_current_span(
            f"chat {model}",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": model,
                "gen_ai.usage.input_tokens": input_tokens,
                "gen_ai.usage.output_tokens": output_tokens,
                **own,
            },
        ):
            pass
        for number in range(tools):
            with tracer.start_as_current_span(
                "execute_tool crm.get_account",
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "crm.get_account",
                    "account_id": f"acct_{number}",
                    **own,
                },
            ) as span:
                if failing_tool and number == tools - 1:
                    span.record_exception(TimeoutError("CRM did not answer"))
                    span.set_status(Status(StatusCode.ERROR, "CRM did not answer"))
    provider.shutdown()
    return list(exporter.get_finished_spans())


def protobuf_body(spans: Sequence[ReadableSpan]) -> bytes:
    return encode_spans(spans).SerializeToString()


def json_body(spans: Sequence[ReadableSpan]) -> bytes:
    """The OTLP JSON mapping: camelCase names, ids in hex (not protobuf's base64)."""
    data = json_format.MessageToDict(encode_spans(spans))
    for resource_spans in data["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for name in ("traceId", "spanId", "parentSpanId"):
                    if name in span:
                        span[name] = base64.b64decode(span[name]).hex()
    return json.dumps(data).encode()
