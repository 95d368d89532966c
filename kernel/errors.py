"""The base classes of every domain error.

Apps subclass these in their own ``exceptions`` module; the API and the views map the
base classes to HTTP statuses in one place each, so a new error needs no new handler.
"""

from typing import Any, ClassVar


class DomainError(Exception):
    """An expected failure a caller can act on, with a stable machine ``code``."""

    code: ClassVar[str] = "error"

    def __init__(self, detail: str, **context: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context = context


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    """The request is valid but the current state forbids it (HTTP 409)."""

    code = "conflict"


class ValidationFailed(DomainError):
    """Input that can never succeed as given (HTTP 422); ``field`` names the culprit."""

    code = "validation_error"

    def __init__(self, detail: str, *, field: str | None = None, **context: Any) -> None:
        super().__init__(detail, field=field, **context)
        self.field = field


class NotAuthenticated(DomainError):
    """No credentials, or credentials that identify nobody (HTTP 401)."""

    code = "not_authenticated"


class PermissionDenied(DomainError):
    """Known caller, but not allowed to do this (HTTP 403)."""

    code = "permission_denied"


class PayloadTooLarge(DomainError):
    """The request is bigger than a stated limit (HTTP 413); ``limit`` says how big."""

    code = "payload_too_large"

    def __init__(self, detail: str, *, limit: int, unit: str, **context: Any) -> None:
        super().__init__(detail, limit=limit, unit=unit, **context)
        self.limit = limit


class UnsupportedMediaType(DomainError):
    """A body in a media type or content encoding the operation does not read (HTTP 415)."""

    code = "unsupported_media_type"


class RateLimited(DomainError):
    """Too many requests for the caller's rate (HTTP 429); ``retry_after`` in seconds."""

    code = "throttled"

    def __init__(self, detail: str, *, retry_after: int, **context: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **context)
        self.retry_after = retry_after


class ServiceUnavailable(DomainError):
    """A backing service (PostgreSQL) is down (HTTP 503); ``retry_after`` in seconds."""

    code = "service_unavailable"

    def __init__(self, detail: str, *, retry_after: int, **context: Any) -> None:
        super().__init__(detail, **context)
        self.retry_after = retry_after
