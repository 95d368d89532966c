"""What the API accepts before any handler runs: size, JSON shape, and text PostgreSQL
can store.

``guard_request`` wraps every API view (``api.add_decorator(..., mode="view")``):

1. a body over ``API_MAX_BODY_BYTES`` is refused from its ``Content-Length``, unread (413);
2. a body is parsed once, here: invalid JSON or UTF-8 is 400 ``bad_request``, nesting
   deeper than ``API_MAX_JSON_DEPTH`` is 422 ``json_too_deep`` (Python's parser and
   pydantic would otherwise fail deep inside with a 500);
3. text PostgreSQL cannot store (NUL characters, lone UTF-16 surrogates) is 422
   ``invalid_text`` naming the field, in the body and in the query string; in a path it
   names nothing that can exist, so it is 404.

``GuardedParser`` hands ninja the body parsed in step 2, so it is parsed once.
"""

import functools
import json
import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from ninja import Schema
from ninja.parser import Parser
from ninja.schema import DjangoGetter
from pydantic import BeforeValidator, ValidationInfo, WithJsonSchema, model_validator

from access import conf as agents_conf
from access.exceptions import BodyTooLarge
from kernel.errors import DomainError, NotFound, ValidationFailed

MALFORMED_BODY = "The request body is not valid JSON in UTF-8: {reason}."
JSON_TOO_DEEP = "The request body nests deeper than {limit} levels (at {field})."
INVALID_TEXT = "{field} holds a character that cannot be stored (NUL or a lone surrogate)."
PATH_NOT_FOUND = "Not found."
# Text with a character other than a space and no NUL (refused anywhere in a request): the
# pattern of names the services strip.
NOT_BLANK = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
NOT_A_JSON_OBJECT = 'must be a JSON object, e.g. {"region": "emea"}'

# NUL cannot be stored in PostgreSQL text or jsonb; lone surrogates cannot be encoded.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# In a JSON text they can only arrive escaped (a raw NUL is invalid JSON, a raw surrogate
# invalid UTF-8); an escaped backslash before "u0000" is a harmless false alarm.
_ESCAPED_UNSTORABLE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_PARSED = "_sergas_parsed_body"


class MalformedBody(DomainError):
    code = "bad_request"

    def __init__(self, reason: str) -> None:
        super().__init__(MALFORMED_BODY.format(reason=reason))


class JSONTooDeep(ValidationFailed):
    code = "json_too_deep"

    def __init__(self, field: str, limit: int) -> None:
        field = _printable(field) or "body"
        super().__init__(JSON_TOO_DEEP.format(field=field, limit=limit), field=field)


class InvalidText(ValidationFailed):
    code = "invalid_text"

    def __init__(self, field: str) -> None:
        field = _printable(field) or "body"
        super().__init__(INVALID_TEXT.format(field=field), field=field)


class UnstorablePath(NotFound):
    code = "not_found"

    def __init__(self) -> None:
        super().__init__(PATH_NOT_FOUND)


def _printable(field: str) -> str:
    """The field's name as the client wrote it, its unstorable characters shown as '?'."""
    return _UNSTORABLE.sub("?", field)


def unstorable(text: str) -> bool:
    return _UNSTORABLE.search(text) is not None


def check_json(data: Any, *, max_depth: int, prefix: str = "", raw: bytes | None = None) -> None:
    """Raise ``JSONTooDeep`` or ``InvalidText`` (naming the field as ``a.b.3.c``) for a
    parsed JSON document; iterative, so depth itself cannot exhaust the stack.

    Given the ``raw`` bytes it was parsed from, the common case costs one scan of the
    containers: a string can only hold NUL or a surrogate through a ``\\u`` escape,
    and the walk that names the field runs only when there is something to name."""
    if raw is not None and not _ESCAPED_UNSTORABLE.search(raw) and not _too_deep(data, max_depth):
        return
    for path, value, depth in _walk(data, prefix):
        if depth > max_depth:
            raise JSONTooDeep(path, max_depth)
        if isinstance(value, str) and unstorable(value):
            raise InvalidText(path)


def _too_deep(data: Any, max_depth: int) -> bool:
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if not isinstance(value, dict | list):
            continue
        children = list(value.values()) if isinstance(value, dict) else value
        if children and depth + 1 > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _walk(data: Any, prefix: str) -> Iterator[tuple[str, Any, int]]:
    stack: list[tuple[str, Any, int]] = [(prefix, data, 0)]
    while stack:
        path, value, depth = stack.pop()
        yield path, value, depth
        if isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                if unstorable(key):
                    raise InvalidText(child)
                stack.append((child, item, depth + 1))
        elif isinstance(value, list):
            stack.extend(
                (f"{path}.{index}" if path else str(index), item, depth + 1)
                for index, item in enumerate(value)
            )


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


def guard_request(run: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The checks above, before authentication and parsing; errors take the API's form."""
    from sergas.api import api

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
            if request.body:
                _parse(request)
        except DomainError as exc:
            return api.on_exception(request, exc)
        return run(request, *args, **kwargs)

    return guarded


class GuardedParser(Parser):
    """ninja's parser, reusing the body ``guard_request`` parsed and checked."""

    def parse_body(self, request: HttpRequest) -> Any:
        if hasattr(request, _PARSED):
            return getattr(request, _PARSED)
        return super().parse_body(request)


class InputSchema(Schema):
    """Base of the API's request bodies: a JSON object and nothing else. (ninja's Schema
    reads attributes off any value, so a list or a number would pass as an object whose
    fields are all missing.)"""

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, data: Any) -> Any:
        given = data._obj if isinstance(data, DjangoGetter) else data
        if not isinstance(given, dict):
            raise ValueError("must be a JSON object")
        return data


def _json_object_text(value: Any, info: ValidationInfo) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ValueError(NOT_A_JSON_OBJECT)
    check_json(parsed, max_depth=agents_conf.max_json_depth(), prefix=info.field_name or "")
    return parsed


# A query parameter holding a JSON object (URL-encoded), e.g. ?context={"region":"emea"}:
# parsed here, and documented in OpenAPI as a parameter of content application/json
# (sergas.openapi turns contentMediaType into that form).
JsonObjectQuery = Annotated[
    dict[str, Any],
    BeforeValidator(_json_object_text),
    WithJsonSchema(
        {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"type": "object"},
        }
    ),
]
