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
