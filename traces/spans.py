"""From OTLP spans to ours: attributes as JSON, the session each names, what each span
was (GenAI semantic conventions) and what it used.

The mapping (docs/api.md, "OpenTelemetry traces"), by ``gen_ai.operation.name``:

- ``execute_tool``: a tool span (``gen_ai.tool.name``); a tool event in the audit trail
  and Prometheus: pre_tool at its start, post_tool at its end;
- ``invoke_agent``, ``create_agent``: an agent span (``gen_ai.agent.name``); a task event
  of that task type;
- any span carrying ``sergas.task.type``: a task span, a task event of that type;
- ``chat``, ``text_completion``, ``generate_content``, ``embeddings``: a model span; no
  event, its tokens and cost only;
- anything else: other, stored and shown only.

Tokens (``gen_ai.usage.input_tokens``/``output_tokens``) are summed from model spans
only: an agent span may repeat its calls' usage, which would count it twice.
"""

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan

from traces.models import SpanKind, SpanStatus
from traces.pricing import cost_of

SESSION_ATTRIBUTE = "sergas.session_id"
TASK_ATTRIBUTE = "sergas.task.type"
OPERATION = "gen_ai.operation.name"
MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
AGENT_OPERATIONS = frozenset({"invoke_agent", "create_agent"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TEXT_LIMITS = {"name": 255, "subject": 255, "model": 128, "service_name": 255, "operation": 64}


class Refusal:
    """Why a span was refused, as the partial success's message says it."""

    NO_SESSION = f"without a {SESSION_ATTRIBUTE} attribute (on the span or its resource)"
    UNKNOWN_SESSION = "naming a session that does not exist (or is not this token's)"
    BAD_IDS = "without a valid trace_id, span_id or start time"
    TOO_OLD = "starting before the traces' retention"
    IN_FUTURE = "stamped in the future"


@dataclass
class IncomingSpan:
    """One span as it will be stored, with what it means for the session."""

    trace_id: str
    span_id: str
    parent_span_id: str
    session_id: str
    name: str
    kind: SpanKind
    operation: str
    subject: str
    model: str
    start_time: datetime
    end_time: datetime
    status_code: int
    status_message: str
    service_name: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    events: list[dict[str, Any]]
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: Decimal | None = None
    unpriced_model: str | None = None  # a model call whose model the price table lacks
    error_type: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.trace_id, self.span_id)

    @property
    def duration_seconds(self) -> float:
        return max((self.end_time - self.start_time).total_seconds(), 0.0)

    @property
    def failed(self) -> bool:
        return self.status_code == SpanStatus.ERROR

    def row(self, *, actor: str, received_at: datetime) -> dict[str, Any]:
        """The ``Span`` fields of this span."""
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "parent_span_id": self.parent_span_id,
            "session_id": self.session_id,
            "name": self.name,
            "kind": str(self.kind),
            "operation": self.operation,
            "subject": self.subject,
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "status_code": self.status_code,
            "status_message": self.status_message,
            "service_name": self.service_name,
            "attributes": self.attributes,
            "resource": self.resource,
            "events": self.events,
            "actor": actor,
            "received_at": received_at,
        }


@dataclass
class Decoded:
    spans: list[IncomingSpan] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)  # reason -> spans

    def refuse(self, reason: str, count: int = 1) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + count


def spans_decode(request: ExportTraceServiceRequest) -> Decoded:
    """Every span of ``request`` as an ``IncomingSpan``, or refused for a reason the data
    itself shows (no session, invalid ids); sessions and times are checked later."""
    decoded = Decoded()
    for resource_spans in request.resource_spans:
        resource = attributes_of(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                incoming = _span(span, resource)
                if isinstance(incoming, str):
                    decoded.refuse(incoming)
                else:
                    decoded.spans.append(incoming)
    return decoded


def _span(span: OtlpSpan, resource: dict[str, Any]) -> IncomingSpan | str:
    attributes = attributes_of(span.attributes)
    session_id = attributes.get(SESSION_ATTRIBUTE) or resource.get(SESSION_ATTRIBUTE)
    if not isinstance(session_id, str) or not session_id.strip():
        return Refusal.NO_SESSION
    if (
        len(span.trace_id) != 16
        or len(span.span_id) != 8
        or not any(span.trace_id)
        or not any(span.span_id)
        or not span.start_time_unix_nano
    ):
        return Refusal.BAD_IDS
    start = _time(span.start_time_unix_nano)
    end = _time(span.end_time_unix_nano) if span.end_time_unix_nano else start
    events = [
        {
            "name": _text(event.name),
            "time": _time(event.time_unix_nano).isoformat(),
            "attributes": attributes_of(event.attributes),
        }
        for event in span.events
    ]
    kind, subject = _classify(span.name, attributes)
    model = attributes.get("gen_ai.response.model") or attributes.get("gen_ai.request.model")
    model = str(model or "")
    incoming = IncomingSpan(
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex() if len(span.parent_span_id) == 8 else "",
        session_id=session_id.strip()[:128],
        name=_text(span.name)[: _TEXT_LIMITS["name"]] or "(unnamed)",
        kind=kind,
        operation=str(attributes.get(OPERATION) or "")[: _TEXT_LIMITS["operation"]],
        subject=subject[: _TEXT_LIMITS["subject"]],
        model=model[: _TEXT_LIMITS["model"]],
        start_time=start,
        end_time=max(end, start),
        status_code=span.status.code if span.status.code in SpanStatus.values else 0,
        status_message=_text(span.status.message),
        service_name=str(resource.get("service.name") or "")[: _TEXT_LIMITS["service_name"]],
        attributes=attributes,
        resource=resource,
        events=events,
    )
    if incoming.failed:
        incoming.error_type = _error_type(attributes, events)
    if kind == SpanKind.MODEL:
        _usage(incoming, attributes)
    return incoming


def _classify(name: str, attributes: dict[str, Any]) -> tuple[SpanKind, str]:
    operation = attributes.get(OPERATION)
    if attributes.get(TASK_ATTRIBUTE):
        return SpanKind.TASK, str(attributes[TASK_ATTRIBUTE])
    if operation == "execute_tool":
        return SpanKind.TOOL, str(attributes.get("gen_ai.tool.name") or name)
    if operation in AGENT_OPERATIONS:
        return SpanKind.AGENT, str(attributes.get("gen_ai.agent.name") or name)
    if operation in MODEL_OPERATIONS:
        model = attributes.get("gen_ai.response.model") or attributes.get("gen_ai.request.model")
        return SpanKind.MODEL, str(model or name)
    return SpanKind.OTHER, ""


def _usage(incoming: IncomingSpan, attributes: dict[str, Any]) -> None:
    input_tokens = _count(attributes.get("gen_ai.usage.input_tokens"))
    output_tokens = _count(attributes.get("gen_ai.usage.output_tokens"))
    if input_tokens is None and output_tokens is None:
        return
    incoming.input_tokens, incoming.output_tokens = input_tokens or 0, output_tokens or 0
    models = (
        str(attributes.get("gen_ai.response.model") or ""),
        str(attributes.get("gen_ai.request.model") or ""),
    )
    cost = cost_of(models, incoming.input_tokens, incoming.output_tokens)
    incoming.cost_usd = cost.usd
    if not cost.priced:
        incoming.unpriced_model = incoming.model or "(no model named)"


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(int(value), 0)


def _error_type(attributes: dict[str, Any], events: list[dict[str, Any]]) -> str:
    if attributes.get("error.type"):
        return str(attributes["error.type"])
    for event in events:
        if event["name"] == "exception" and event["attributes"].get("exception.type"):
            return str(event["attributes"]["exception.type"])
    return "SpanError"


def _time(unix_nano: int) -> datetime:
    return _EPOCH + timedelta(microseconds=unix_nano // 1000)


def _text(value: str) -> str:
    # PostgreSQL text cannot hold NUL; protobuf strings can.
    return value.replace("\x00", "\ufffd")


def attributes_of(pairs: Any) -> dict[str, Any]:
    """OTLP ``KeyValue``s as a JSON object (a repeated key keeps its last value)."""
    return {_text(pair.key): _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "string_value":
        return _text(value.string_value)
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_of(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def keyvalues(attributes: dict[str, Any]) -> Iterator[KeyValue]:
    """JSON attributes back to OTLP ``KeyValue``s (the bench builds requests with it)."""
    for key, item in attributes.items():
        pair = KeyValue(key=key)
        if isinstance(item, bool):
            pair.value.bool_value = item
        elif isinstance(item, int):
            pair.value.int_value = item
        elif isinstance(item, float):
            pair.value.double_value = item
        else:
            pair.value.string_value = str(item)
        yield pair
