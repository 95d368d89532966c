"""Keyset (cursor) pagination for the list selectors of every app.

A list is ordered by a fixed tuple of columns whose last one is unique (for example
``-created_at, -session_id``); a cursor is the last row's values of those columns,
encoded as opaque base64url JSON together with the ordering it belongs to. Unlike OFFSET,
a page costs the same at any depth and never skips or repeats rows while new rows arrive.
"""

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.core.exceptions import ValidationError
from django.db.models import Model, Q, QuerySet

from kernel.errors import ValidationFailed

M = TypeVar("M", bound=Model)

MAX_PAGE_SIZE = 500
INVALID_CURSOR = "The cursor is not one this list issued; start again without a cursor."


class InvalidCursor(ValidationFailed):
    code = "invalid_cursor"

    def __init__(self) -> None:
        super().__init__(INVALID_CURSOR, field="cursor")


@dataclass(frozen=True)
class Page(Generic[M]):
    items: list[M]
    next_cursor: str | None


def keyset_page(
    queryset: QuerySet[M], *, ordering: Sequence[str], cursor: str | None, limit: int
) -> Page[M]:
    """One page of ``queryset`` in ``ordering``, starting after ``cursor``."""
    names = [name.lstrip("-") for name in ordering]
    if cursor:
        queryset = queryset.filter(_after(ordering, _decode(cursor, queryset.model, ordering)))
    rows = list(queryset.order_by(*ordering)[: limit + 1])
    if len(rows) <= limit:
        return Page(items=rows, next_cursor=None)
    rows = rows[:limit]
    last = [getattr(rows[-1], name) for name in names]
    return Page(items=rows, next_cursor=_encode(ordering, last))


def _after(ordering: Sequence[str], values: list[Any]) -> Q:
    """Rows strictly after ``values``: the first column beyond it, or equal and the rest
    beyond (the row-value comparison, spelled out so mixed directions work)."""
    after, equal = Q(), Q()
    for name, value in zip(ordering, values, strict=True):
        column = name.lstrip("-")
        beyond = Q(**{f"{column}__{'lt' if name.startswith('-') else 'gt'}": value})
        after |= equal & beyond
        equal &= Q(**{column: value})
    return after


def _encode(ordering: Sequence[str], values: list[Any]) -> str:
    payload = {"o": ",".join(ordering), "k": [_plain(value) for value in values]}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _decode(cursor: str, model: type[Model], ordering: Sequence[str]) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        if payload["o"] != ",".join(ordering) or len(payload["k"]) != len(ordering):
            raise InvalidCursor
        return [
            model._meta.get_field(name.lstrip("-")).to_python(value)
            for name, value in zip(ordering, payload["k"], strict=True)
        ]
    except (ValueError, TypeError, KeyError, binascii.Error, ValidationError):
        raise InvalidCursor from None
