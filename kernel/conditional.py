"""Optimistic concurrency over HTTP: the version a write expects, from ``If-Match`` or the
body's ``expected_version`` (the services refuse with 409 when the row moved on)."""

import re
from typing import Annotated, Protocol

from pydantic import WithJsonSchema

from kernel.errors import ValidationFailed

INVALID_IF_MATCH = 'If-Match must be one version number, e.g. "7".'
VERSIONS_DISAGREE = "If-Match says version {header} but expected_version says {body}."
_ETAG = re.compile(r'^\s*(?:W/)?"?(\d{1,18})"?\s*$')

# The header's value as the OpenAPI schema documents it (a version, quoted or not, or "*");
# expected_version() checks it and answers 422 invalid_if_match otherwise.
IfMatchValue = Annotated[
    str, WithJsonSchema({"type": "string", "pattern": r'^\s*(\*|(W/)?"?\d{1,18}"?)\s*$'})
]


class InvalidIfMatch(ValidationFailed):
    code = "invalid_if_match"

    def __init__(self) -> None:
        super().__init__(INVALID_IF_MATCH, field="If-Match")


class VersionsDisagree(ValidationFailed):
    code = "versions_disagree"

    def __init__(self, header: int, body: int) -> None:
        super().__init__(VERSIONS_DISAGREE.format(header=header, body=body), field="If-Match")


class _Versioned(Protocol):
    expected_version: int | None


def expected_version(if_match: str | None, payload: _Versioned | None) -> int | None:
    """The expected version, or None (no precondition). ``*`` means "any version"."""
    body = payload.expected_version if payload is not None else None
    if if_match is None or if_match.strip() == "*":
        return body
    match = _ETAG.match(if_match)
    if match is None:
        raise InvalidIfMatch
    header = int(match.group(1))
    if body is not None and body != header:
        raise VersionsDisagree(header, body)
    return header
