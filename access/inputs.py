"""What the API accepts before any handler runs: size, JSON shape, and text PostgreSQL
can store (the checks themselves are ``kernel.schemas``, shared with the schemas).

``request_guard(api.on_exception)`` wraps every API view (``api.add_decorator(...,
mode="view")``):

1. a body over ``API_MAX_BODY_BYTES`` is refused from its ``Content-Length``, unread (413);
   an operation that decodes its own body (``reads_raw_body``: OTLP's protobuf or gzip,
   traces/api.py) gets only this check, and bounds what it decodes itself;
2. any other body is parsed once, here: invalid JSON or UTF-8 is 400 ``bad_request``, nesting
   deeper than ``API_MAX_JSON_DEPTH`` is 422 ``json_too_deep`` (Python's parser and
   pydantic would otherwise fail deep inside with a 500);
3. text PostgreSQL cannot store (NUL characters, lone UTF-16 surrogates) is 422
   ``invalid_text`` naming the field, in the body and in the query string; in a path it
   names nothing that can exist, so it is 404.

``GuardedParser`` hands ninja the body parsed in step 2, so it is parsed once.
"""

import functools
import json
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja.parser import Parser

from access import conf as agents_conf
from access.exceptions import BodyTooLarge
from kernel.errors import DomainError, NotFound
from kernel.schemas import InvalidText, JSONTooDeep, check_json, unstorable

MALFORMED_BODY = "The request body is not valid JSON in UTF-8: {reason}."
PATH_NOT_FOUND = "Not found."
_PARSED = "_sergas_parsed_body"
# Set (``reads_raw_body``) by an operation that decodes its own body, such as OTLP's
# protobuf or gzip: the guard checks its size, and leaves its content to the operation.
RAW_BODY = "_sergas_raw_body"
# Set (``answers_errors_with``) by an operation that speaks another protocol (OTLP/HTTP: a
# google.rpc.Status): ``sergas.api.error_response`` renders the error through it.
ERROR_FORM = "_sergas_error_form"


class MalformedBody(DomainError):
    code = "bad_request"

    def __init__(self, reason: str) -> None:
        super().__init__(MALFORMED_BODY.format(reason=reason))


class UnstorablePath(NotFound):
    code = "not_found"

    def __init__(self) -> None:
        super().__init__(PATH_NOT_FOUND)


def _parse(request: HttpRequest) -> None:
    try:
        data = json.loads(request.body)
    except RecursionError:
        raise JSONTooDeep("body", agents_conf.max_json_depth()) from None
    except UnicodeDecodeError:
        raise MalformedBody("it is not UTF-8") from None
    except ValueError as exc:
        raise MalformedBody(str(exc).split(":")[0].lower()) from None
    check_json(data, max_depth=agents_conf.max_json_depth(), raw=request.body)
    setattr(request, _PARSED, data)


def reads_raw_body(request: HttpRequest) -> None:
    """Mark ``request`` as one whose body its operation decodes (call before the guard)."""
    setattr(request, RAW_BODY, True)


def answers_errors_with(
    request: HttpRequest, render: Callable[[int, str, str], HttpResponse]
) -> None:
    """Have ``request``'s errors rendered by ``render(status, code, detail)``."""
    setattr(request, ERROR_FORM, render)


ErrorAnswer = Callable[[HttpRequest, Exception], HttpResponse]
ViewDecorator = Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]


def request_guard(answer: ErrorAnswer) -> ViewDecorator:
    """The checks above as a view decorator, before authentication and parsing; a refusal
    is answered by ``answer``: the API's ``on_exception``, so errors take the API's form
    (the API hands it down: this module cannot import the API that imports it)."""

    def guard(run: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        return _guarded(run, answer)

    return guard


def _guarded(run: Callable[..., HttpResponse], answer: ErrorAnswer) -> Callable[..., HttpResponse]:
    @functools.wraps(run)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            size = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            size = 0
        limit = agents_conf.max_body_bytes()
        try:
            if size > limit:
                raise BodyTooLarge(size, limit)
            if any(isinstance(value, str) and unstorable(value) for value in kwargs.values()):
                raise UnstorablePath
            for key, values in request.GET.lists():
                if unstorable(key) or any(unstorable(value) for value in values):
                    raise InvalidText(key)
            if request.body and not getattr(request, RAW_BODY, False):
                _parse(request)
        except DomainError as exc:
            return answer(request, exc)
        return run(request, *args, **kwargs)

    return guarded


class GuardedParser(Parser):
    """ninja's parser, reusing the body ``request_guard`` parsed and checked."""

    def parse_body(self, request: HttpRequest) -> Any:
        if hasattr(request, _PARSED):
            return getattr(request, _PARSED)
        return super().parse_body(request)
