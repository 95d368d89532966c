"""Keyset pages in the dashboard's lists (``kernel.pagination`` cursors in the URL)."""

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib import messages
from django.http import HttpRequest

from dashboard import conf
from kernel.pagination import InvalidCursor, Page

P = TypeVar("P", bound=Page)


def cursor_page(request: HttpRequest, fetch: Callable[[str | None], P]) -> P:
    """``fetch(cursor)`` with the request's ``cursor``; a cursor the list did not issue
    (edited by hand, or from another filter) restarts at the first page with a warning."""
    try:
        return fetch(request.GET.get("cursor") or None)
    except InvalidCursor as exc:
        messages.warning(request, exc.detail)
        return fetch(None)


def has_filters(data: dict) -> bool:
    """Whether a list's query string filters anything (the cursor does not count)."""
    return any(value for key, value in data.items() if key != "cursor")


def filtered_page(
    request: HttpRequest, form: Any, fetch: Callable[..., P], *args: Any, **fixed: Any
) -> P | None:
    """A list's page: ``fetch(*args, **filters, **fixed, cursor=..., limit=page size)``
    with the filters of ``form`` (a filter form with ``selector_filters``), or None while
    the form is invalid (the page shows its errors instead)."""
    if not form.is_valid():
        return None
    filters = form.selector_filters()
    return cursor_page(
        request,
        lambda cursor: fetch(*args, **filters, **fixed, cursor=cursor, limit=conf.page_size()),
    )
