"""The log context: ids that say what the current request or task is about.

One context variable holds an immutable mapping, replaced (never changed in place) on
each bind, so a thread or a task sees only its own. Binding costs a dict copy and no I/O;
nothing is looked up to fill it. The fields: ``request_id``, ``actor`` (``agent:<name>``
with ``token_prefix``, or ``staff:<username>``), ``session_id``, ``review_id``,
``execution_id``, ``batch_id``, ``task_id``.
"""

import logging
from collections.abc import Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, str] = MappingProxyType({})
_context: ContextVar[Mapping[str, str]] = ContextVar("sergas_log_context", default=_EMPTY)


def current() -> Mapping[str, str]:
    return _context.get()


def request_id() -> str | None:
    """The request id in force: the request's, or the one a task was enqueued with."""
    return _context.get().get("request_id")


def bind(**fields: Any) -> None:
    """Add ids to the context in force (``None`` values are left out)."""
    given = {key: str(value) for key, value in fields.items() if value is not None}
    if given:
        _context.set(MappingProxyType({**_context.get(), **given}))


def replace(fields: Mapping[str, Any]) -> Token[Mapping[str, str]]:
    """Start a new context (a request, a task); ``reset`` with the token restores the old."""
    return _context.set(
        MappingProxyType({key: str(value) for key, value in fields.items() if value is not None})
    )


def reset(token: Token[Mapping[str, str]]) -> None:
    _context.reset(token)


def clear() -> None:
    _context.set(_EMPTY)


class ContextFilter(logging.Filter):
    """Copies the context onto each record the handler writes: as attributes, which the
    JSON formatter writes as fields (an ``extra`` of the same name wins), or, for the text
    format, as ``log_context``, a `` [key=value ...]`` suffix (empty without context)."""

    def __init__(self, text: bool = False) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _context.get()
        if self.text:
            record.log_context = (
                " [" + " ".join(f"{key}={value}" for key, value in fields.items()) + "]"
                if fields
                else ""
            )
        else:
            for key, value in fields.items():
                record.__dict__.setdefault(key, value)
        return True
