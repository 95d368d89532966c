"""Errors of the OTLP endpoint; the API maps their base classes (sergas/api.py)."""

from kernel.errors import DomainError, PayloadTooLarge, UnsupportedMediaType

UNDECODABLE = "The body is not an OTLP ExportTraceServiceRequest in {encoding}: {reason}."
MEDIA_TYPE = "OTLP/HTTP traces are application/x-protobuf or application/json, not {media_type!r}."
ENCODING = "Content-Encoding {encoding!r} is not supported: send gzip or none."
TOO_LARGE_DECODED = "The body is larger than {limit} bytes once decompressed."


class OtlpUndecodable(DomainError):
    code = "otlp_undecodable"

    def __init__(self, encoding: str, reason: str) -> None:
        super().__init__(UNDECODABLE.format(encoding=encoding, reason=reason))


class OtlpMediaType(UnsupportedMediaType):
    code = "unsupported_media_type"

    def __init__(self, media_type: str) -> None:
        super().__init__(MEDIA_TYPE.format(media_type=media_type))


class OtlpEncoding(UnsupportedMediaType):
    code = "unsupported_content_encoding"

    def __init__(self, encoding: str) -> None:
        super().__init__(ENCODING.format(encoding=encoding))


class OtlpTooLarge(PayloadTooLarge):
    code = "payload_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(TOO_LARGE_DECODED.format(limit=limit), limit=limit, unit="bytes")
