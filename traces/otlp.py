"""OTLP/HTTP, the wire: request bodies in, answers out (the OTLP specification,
"OTLP/HTTP").

- A body is ``application/x-protobuf`` (binary protobuf) or ``application/json`` (the
  OTLP JSON mapping: lowerCamelCase or original field names, trace and span ids as hex,
  enums as integers), optionally ``Content-Encoding: gzip``; it decodes to an
  ``ExportTraceServiceRequest`` with ``opentelemetry-proto``'s classes.
- The answer is in the request's encoding: an ``ExportTraceServiceResponse``, with
  ``partial_success`` when spans were refused (or, with 0 rejected, a warning); an error
  is a ``google.rpc.Status`` with its HTTP status (400 for a body that does not decode).
"""

import base64
import binascii
import json
import zlib
from enum import Enum
from typing import Any

from django.http import HttpResponse
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from traces import conf
from traces.exceptions import OtlpEncoding, OtlpMediaType, OtlpTooLarge, OtlpUndecodable


class Encoding(Enum):
    PROTOBUF = "application/x-protobuf"
    JSON = "application/json"


_MEDIA_TYPES = {
    "application/x-protobuf": Encoding.PROTOBUF,
    "application/protobuf": Encoding.PROTOBUF,
    "application/json": Encoding.JSON,
}
_ID_FIELDS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")
# HTTP status -> the gRPC code a google.rpc.Status carries.
_RPC_CODE = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    404: code_pb2.NOT_FOUND,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    422: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    503: code_pb2.UNAVAILABLE,
}


def encoding_of(content_type: str) -> Encoding:
    """The encoding a ``Content-Type`` names (parameters such as charset ignored)."""
    media_type = content_type.split(";")[0].strip().lower()
    try:
        return _MEDIA_TYPES[media_type]
    except KeyError:
        raise OtlpMediaType(media_type) from None


def answer_encoding(content_type: str) -> Encoding:
    """The encoding of an answer: the request's, JSON where it named none we read."""
    try:
        return encoding_of(content_type)
    except OtlpMediaType:
        return Encoding.JSON


def request_decode(
    body: bytes, *, content_type: str, content_encoding: str
) -> tuple[ExportTraceServiceRequest, Encoding]:
    encoding = encoding_of(content_type)
    body = _decompressed(body, content_encoding.strip().lower())
    if encoding is Encoding.PROTOBUF:
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except (DecodeError, RecursionError) as exc:
            raise OtlpUndecodable("protobuf", str(exc) or type(exc).__name__) from None
        return request, encoding
    return _from_json(body), encoding


def _decompressed(body: bytes, content_encoding: str) -> bytes:
    limit = conf.max_decoded_bytes()
    if content_encoding in ("", "identity"):
        if len(body) > limit:
            raise OtlpTooLarge(limit)
        return body
    if content_encoding != "gzip":
        raise OtlpEncoding(content_encoding)
    # Bounded: a small gzip body may inflate to gigabytes.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise OtlpUndecodable("gzip", str(exc)) from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise OtlpTooLarge(limit)
    if not inflater.eof:
        raise OtlpUndecodable("gzip", "the stream is truncated")
    return data


def _from_json(body: bytes) -> ExportTraceServiceRequest:
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("the body is not a JSON object")
        for resource_spans in _items(data, "resourceSpans", "resource_spans"):
            for scope_spans in _items(resource_spans, "scopeSpans", "scope_spans"):
                for span in _items(scope_spans, "spans"):
                    _ids_to_base64(span)
                    for link in _items(span, "links"):
                        _ids_to_base64(link)
        return json_format.ParseDict(data, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except RecursionError:
        raise OtlpUndecodable("JSON", "it nests too deep") from None
    except (ValueError, TypeError, AttributeError, json_format.ParseError) as exc:
        raise OtlpUndecodable("JSON", str(exc).splitlines()[0] if str(exc) else "invalid") from None


def _items(data: Any, *names: str) -> list[Any]:
    if not isinstance(data, dict):
        raise ValueError("expected an object")
    for name in names:
        if name in data:
            value = data[name]
            if not isinstance(value, list):
                raise ValueError(f"{name} must be a list")
            return value
    return []


def _ids_to_base64(span: Any) -> None:
    """OTLP JSON spells ids in hex; protobuf's JSON mapping reads bytes as base64."""
    if not isinstance(span, dict):
        raise ValueError("a span must be an object")
    for name in _ID_FIELDS:
        value = span.get(name)
        if isinstance(value, str) and value:
            try:
                span[name] = base64.b64encode(bytes.fromhex(value)).decode()
            except (ValueError, binascii.Error):
                raise ValueError(f"{name} {value[:40]!r} is not hex") from None


def success_answer(encoding: Encoding, *, rejected: int, message: str) -> HttpResponse:
    """200 with an ``ExportTraceServiceResponse``; ``partial_success`` set when spans were
    refused or there is something to say."""
    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    return _render(response, encoding, 200)


def error_answer(encoding: Encoding, http_status: int, detail: str) -> HttpResponse:
    """An error as OTLP/HTTP wants it: a ``google.rpc.Status`` body."""
    status = status_pb2.Status(code=_RPC_CODE.get(http_status, code_pb2.UNKNOWN), message=detail)
    return _render(status, encoding, http_status)


def _render(message: Any, encoding: Encoding, http_status: int) -> HttpResponse:
    if encoding is Encoding.PROTOBUF:
        body = message.SerializeToString()
    else:
        body = json_format.MessageToJson(message, indent=None).encode()
    return HttpResponse(body, status=http_status, content_type=encoding.value)
